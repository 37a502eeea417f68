"""No orphans, ever: Claude Code dies with Iris however Iris dies, and a new Iris reaps what a crash left."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.children import MARKER_ENV, ChildRegistry, start_time
from iris_core.config import load_config
from iris_core.deathsig import real_cli
from iris_core.service import CHILDREN_FILE, IrisService
from tests.harness import Served, iris_serve, live_processes_in, send, start_iris, status_of, write_config

_GONE_WITHIN_S = 15.0
"""How long the children of a killed Iris may take to die (the kernel's death signal takes milliseconds)."""


async def wait_until_running(stub: iris_pb2_grpc.IrisAsyncStub, team: str) -> None:
    async with asyncio.timeout(30):
        while True:
            report = await stub.SessionReport(
                pb.SessionReportRequest(team=team, from_team="caller"), timeout=10
            )
            if [e.status for e in report.entries] == ["running"]:
                return
            await asyncio.sleep(0.05)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_kill_9_of_iris_during_a_turn_leaves_no_claude_process(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    teams = tmp_path / "teams"
    try:
        async with iris_serve(tmp_path, config) as served:
            await served.stub.TeamWake(pb.TeamWakeRequest(from_team="caller", team="beta"), timeout=60)
            await served.stub.SendMessage(
                pb.SendMessageRequest(
                    from_team="caller", to_team="alpha", message="slow 200 100", timeout=-1
                ),
                timeout=30,
            )
            # A tool the CLI runs in its own process (a child of Claude Code, not of Iris), still running.
            tail = "tool Bash " + json.dumps({"command": "tail -f /dev/null", "description": "wait"})
            await served.stub.SendMessage(
                pb.SendMessageRequest(from_team="caller", to_team="gamma", message=tail, timeout=-1),
                timeout=30,
            )
            await wait_until_running(served.stub, "alpha")
            await wait_until_running(served.stub, "gamma")
            async with asyncio.timeout(30):
                while not any(_command(pid) == "tail" for pid in live_processes_in(teams / "gamma")):
                    await asyncio.sleep(0.05)
            assert len(claude_processes_in(teams)) == 3
            served.process.kill()
            await served.process.wait()
        try:
            async with asyncio.timeout(_GONE_WITHIN_S):
                while claude_processes_in(teams):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pass
        left = claude_processes_in(teams)
        assert left == [], f"Claude Code left running after kill -9 of Iris: {[_describe(p) for p in left]}"
        # The tool's processes do not die with Claude Code; the next start reaps them from the record.
        assert {_command(pid) for pid in live_processes_in(teams)} >= {"tail"}
        async with iris_serve(tmp_path, config) as again:
            assert live_processes_in(teams) == []
            reaped = [line for line in again.stderr if b"reaped orphan" in line]
            assert any(b"(tail) started by Claude Code process" in line for line in reaped), reaped
            await stop(again)
    finally:
        kill_all(live_processes_in(teams))


async def stop(served: Served) -> None:
    """SIGTERM, then wait (bounded) for a clean exit."""
    served.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        assert await served.process.wait() == 0


def claude_processes_in(folder: Path) -> list[int]:
    """Live Claude Code processes (the CLI itself, not its tools) whose cwd is inside ``folder``."""
    return [pid for pid in live_processes_in(folder) if _cli(pid)]


def _cli(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == real_cli()
    except OSError:
        return False


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def _describe(pid: int) -> str:
    try:
        return f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}"
    except OSError:
        return f"{pid} (gone)"


async def test_open_reaps_what_a_crashed_run_recorded_and_leaves_a_reused_pid_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "iris-home"
    ChildRegistry(home / CHILDREN_FILE).close()  # the table, as a previous run made it
    gone = await asyncio.create_subprocess_exec("true")  # the previous Iris: a process that has exited
    await gone.wait()
    leftover = await asyncio.create_subprocess_exec("sleep", "300")  # its Claude Code process
    tool = await asyncio.create_subprocess_exec("sleep", "301", env={**os.environ, MARKER_ENV: "m-tool"})
    reused = await asyncio.create_subprocess_exec("sleep", "302")  # not what was recorded under its pid
    children = [leftover, tool, reused]
    try:
        rows = [
            ("m-claude", leftover.pid, start_time(leftover.pid), "caller->alpha"),
            ("m-tool", None, None, "caller->beta"),  # recorded, killed before its pid was written
            ("m-reused", reused.pid, (start_time(reused.pid) or 0) - 1, "caller->gamma"),
        ]
        with closing(sqlite3.connect(home / CHILDREN_FILE)) as db, db:
            db.executemany(
                "INSERT INTO children VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, gone.pid, 1) for row in rows],
            )
        caplog.set_level(logging.INFO, logger="iris_core.children")
        config = load_config(write_config(tmp_path))
        async with await IrisService.open(config, home):
            pass
        async with asyncio.timeout(10):
            assert await leftover.wait() == -signal.SIGKILL
            assert await tool.wait() == -signal.SIGKILL
        assert reused.returncode is None and start_time(reused.pid) is not None
        reaped = [r.getMessage() for r in caplog.records if "reaped orphan" in r.getMessage()]
        assert sorted(reaped) == sorted(
            [
                f"reaped orphan Claude Code process {leftover.pid} of caller->alpha left by a previous run",
                f"reaped orphan process {tool.pid} (sleep) started by the Claude Code process of caller->beta"
                " left by a previous run",
            ]
        )
        assert any(
            f"{reused.pid} of caller->gamma is gone (its pid is reused)" in r.getMessage()
            for r in caplog.records
        )
        with closing(sqlite3.connect(home / CHILDREN_FILE)) as db:
            assert db.execute("SELECT count(*) FROM children").fetchone() == (0,)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()


async def test_a_started_process_is_recorded_until_it_is_reaped(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        await send(iris, "say hi")
        pid = (await status_of(iris)).pid
        with closing(sqlite3.connect(iris.home / CHILDREN_FILE)) as db:
            rows = db.execute("SELECT pid, start_time, pair FROM children").fetchall()
        assert rows == [(pid, start_time(pid), "caller->alpha")]
        assert any(entry.startswith(f"{MARKER_ENV}=".encode()) for entry in _environ(pid))
    with closing(sqlite3.connect(iris.home / CHILDREN_FILE)) as db:
        assert db.execute("SELECT count(*) FROM children").fetchone() == (0,)
