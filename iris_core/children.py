"""What Iris started and has not reaped yet (``children.db``), so a crash's leftovers die at the next start.

Each Claude Code process gets a random marker in its environment (``IRIS_CLAUDE_PROCESS``), which everything
it starts inherits (its tools, its stdio MCP servers), and a row: marker, pid, the pid's start time (from
``/proc/<pid>/stat``, so a reused pid is never mistaken for it), the pair, and the Iris that started it. The
row is written before the process starts (its pid once known) and deleted once the process is reaped and
whatever it left is killed.

At start, ``reap_leftovers`` kills every recorded process that is still alive as itself (same pid, same start
time), and every process carrying a recorded marker, unless the Iris that recorded it is still running;
it waits until they are gone and logs one line each. The parent-death signal (``deathsig.py``) should have
killed the Claude processes already; what it cannot reach (their own children, or a run where it did not
apply) is reaped here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARKER_ENV", "ChildRegistry", "Leftover", "start_time"]

logger = logging.getLogger(__name__)

MARKER_ENV = "IRIS_CLAUDE_PROCESS"
"""Environment variable naming a Claude Code process's marker; inherited by everything it starts."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS children (
    marker TEXT PRIMARY KEY,
    pid INTEGER,
    start_time INTEGER,
    pair TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_start_time INTEGER NOT NULL
);
"""
_GONE_WITHIN_S = 5.0
"""How long killed leftovers may take to disappear (SIGKILL takes milliseconds)."""


def start_time(pid: int) -> int | None:
    """Return the start time of ``pid`` (clock ticks after boot), or None if it is not alive (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive_as(pid: int | None, started: int | None) -> bool:
    return pid is not None and started is not None and start_time(pid) == started


def _marked(marker: str) -> dict[int, int]:
    """Return {pid: start time} of every live process whose environment carries ``marker``."""
    entry = f"{MARKER_ENV}={marker}".encode()
    found: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if entry not in environ.read().split(b"\0"):
                    continue
        except OSError:
            continue
        started = start_time(int(name))
        if started is not None:
            found[int(name)] = started
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass(frozen=True, slots=True)
class Leftover:
    """A process a previous run left, killed at start."""

    pid: int
    started: int
    description: str


class ChildRegistry:
    """The ``children`` table of ``home/children.db``. Synchronous: one small write per start and per reap."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._owner = (os.getpid(), start_time(os.getpid()) or 0)

    def close(self) -> None:
        """Close the file (rows of processes not yet reaped stay, for the next start)."""
        self._db.close()

    def new(self, pair: str) -> str:
        """Record a process about to start for ``pair``; return the marker to put in its environment."""
        marker = uuid.uuid4().hex
        self._db.execute(
            "INSERT INTO children (marker, pair, owner_pid, owner_start_time) VALUES (?, ?, ?, ?)",
            (marker, pair, *self._owner),
        )
        return marker

    def started(self, marker: str, pid: int) -> None:
        """Record the pid (and its start time) of the process started under ``marker``."""
        self._db.execute(
            "UPDATE children SET pid = ?, start_time = ? WHERE marker = ?", (pid, start_time(pid), marker)
        )

    async def release(self, marker: str) -> None:
        """Kill whatever the (reaped) process under ``marker`` left running, then forget the process."""
        left = await asyncio.to_thread(_kill_marked, marker)
        for pid, command in left:
            logger.info("killed process %s (%s) left running by a stopped Claude Code process", pid, command)
        self._db.execute("DELETE FROM children WHERE marker = ?", (marker,))

    async def reap_leftovers(self) -> list[Leftover]:
        """Kill, and wait for, what a previous run recorded and left alive; forget its rows; log each.

        A recorded pid now belonging to another process (its start time differs) is left alone. Rows of an
        Iris still running with this home are left alone too.
        """
        rows = self._db.execute(
            "SELECT marker, pid, start_time, pair, owner_pid, owner_start_time FROM children"
        ).fetchall()
        doomed: dict[int, Leftover] = {}
        done: list[str] = []
        for marker, pid, started, pair, owner_pid, owner_started in rows:
            if owner_pid != self._owner[0] and _alive_as(owner_pid, owner_started):
                logger.warning(
                    "Iris %s also uses this home; its Claude Code process %s is left alone", owner_pid, pid
                )
                continue
            done.append(marker)
            if _alive_as(pid, started):
                doomed[pid] = Leftover(pid, started, f"Claude Code process {pid} of {pair}")
            elif pid is not None and start_time(pid) is not None:
                logger.info(
                    "recorded Claude Code process %s of %s is gone (its pid is reused): left alone", pid, pair
                )
            for other, other_started in (await asyncio.to_thread(_marked, marker)).items():
                if other not in doomed:
                    by = f"Claude Code process {pid}" if pid is not None else "the Claude Code process"
                    what = f"process {other} ({_command(other)}) started by {by} of {pair}"
                    doomed[other] = Leftover(other, other_started, what)
        for leftover in doomed.values():
            _kill(leftover.pid)
        deadline = time.monotonic() + _GONE_WITHIN_S
        while time.monotonic() < deadline:
            if not any(_alive_as(d.pid, d.started) for d in doomed.values()):
                break
            await asyncio.sleep(0.02)
        for leftover in doomed.values():
            if _alive_as(leftover.pid, leftover.started):
                logger.error("orphan %s left by a previous run survived SIGKILL", leftover.description)
            else:
                logger.warning("reaped orphan %s left by a previous run", leftover.description)
        self._db.executemany("DELETE FROM children WHERE marker = ?", [(m,) for m in done])
        return list(doomed.values())


def _kill_marked(marker: str) -> list[tuple[int, str]]:
    """SIGKILL every live process carrying ``marker`` (again, for any that forked meanwhile); return them."""
    killed: dict[int, str] = {}
    for _ in range(3):
        found = _marked(marker)
        if not found:
            break
        for pid in found:
            killed.setdefault(pid, _command(pid))
            _kill(pid)
    return list(killed.items())
