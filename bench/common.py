"""What every benchmark of ``make bench`` shares: summaries of samples, timing, and children it starts."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["spawn_logged", "stop", "summary", "timed"]


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50": statistics.median(ordered), "p95": p95, "min": ordered[0]}


async def timed(n: int, action: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def spawn_logged(
    work: Path, name: str, pattern: bytes, *args: str
) -> tuple[asyncio.subprocess.Process, bytes]:
    """Start a child logging to a file; wait (bounded) for ``pattern`` there and return its first group."""
    log = work / f"{name}.log"
    with log.open("wb") as sink:
        child = await asyncio.create_subprocess_exec(*args, stderr=sink, env={**os.environ})
    async with asyncio.timeout(30):
        while not (match := re.search(pattern, log.read_bytes())):
            if child.returncode is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()}")
            await asyncio.sleep(0.05)
    return child, match[1]


async def stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.terminate()
    async with asyncio.timeout(30):
        await child.wait()


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in ms, from /proc (its children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_running(module: str) -> list[int]:
    """Pids of this process's children that run ``python -m <module>``."""
    mine = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if parent == mine and module.encode() in argv:
            found.append(int(stat.parent.name))
    return found
