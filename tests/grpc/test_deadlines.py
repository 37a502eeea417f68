"""The deadlines of settings (spawnTimeout, shutdownTimeout, turnTimeout) and the ttlDays of persisted
messages, against real Claude Code and the offline model.

A Claude process that hangs is made with SIGSTOP on the pid TeamStatus reports (or on the new process found in
the team folder while it starts): a stopped process neither answers its handshake nor exits on stdin EOF, and
only SIGKILL ends it, which is exactly the situation the deadlines are for.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    error_reason,
    live_processes_in,
    process_alive,
    report_of,
    send,
    start_iris,
    status_of,
    wait_until_gone,
    wait_until_running,
    write_config,
)

HOUR_MS = 3_600_000


async def wait_for_new_process(folder: Path, within_s: float = 30) -> int:
    """Wait (bounded) until a process runs in ``folder``; return its pid."""
    async with asyncio.timeout(within_s):
        while not (found := live_processes_in(folder)):
            await asyncio.sleep(0.005)
    return found[0]


async def wait_until_no_process_in(folder: Path, within_s: float) -> list[int]:
    """Wait up to ``within_s`` for ``folder`` to have no live process; return the pids still there."""
    try:
        async with asyncio.timeout(within_s):
            while live_processes_in(folder):
                await asyncio.sleep(0.05)
    except TimeoutError:
        pass
    return live_processes_in(folder)


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return ""


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- settings.spawnTimeout ---------------------------------------------------------------------------------


async def test_a_start_that_cannot_finish_within_spawn_timeout_fails_with_process_error_and_frees_its_slot(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, settings={"spawnTimeout": 1, "maxProcesses": 1})
    async with start_iris(tmp_path, config) as iris:
        failures = []
        # Twice on one pair and once on another: with maxProcesses 1, a slot kept by a failed start would
        # turn the later ones into ProcessPoolLimitError.
        for team in ("alpha", "alpha", "beta"):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await send(iris, "say never", to=team, timeout_ms=0)
            failures.append(raised.value)
        with pytest.raises(grpc.aio.AioRpcError) as woken:
            await iris.stub.TeamWake(pb.TeamWakeRequest(team="gamma", from_team="caller"))
        failures.append(woken.value)
        for failed in failures:
            assert failed.code() == grpc.StatusCode.INTERNAL
            assert error_reason(failed) == "ProcessError"
            assert "not ready within" in (failed.details() or "")
        entry = await status_of(iris)
        assert (entry.awake, entry.state, entry.pid) == (False, "stopped", 0)
        system = await iris.stub.GetStatus(pb.GetStatusRequest())
        assert (system.processes.total, system.sessions.active) == (0, 0)
        report = await report_of(iris)
        assert [e.status for e in report.entries] == ["error", "error"]
        assert "not ready within" in report.entries[0].error
        assert await wait_until_no_process_in(tmp_path / "teams", within_s=5) == []


async def test_a_child_that_hangs_in_its_handshake_is_killed_after_spawn_timeout(tmp_path: Path) -> None:
    config = write_config(tmp_path, settings={"spawnTimeout": 3000})
    async with start_iris(tmp_path, config) as iris:
        waiting = asyncio.create_task(send(iris, "say never", timeout_ms=0))
        pid = await wait_for_new_process(tmp_path / "teams" / "alpha")
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await asyncio.wait_for(waiting, 60)
            assert raised.value.code() == grpc.StatusCode.INTERNAL
            assert error_reason(raised.value) == "ProcessError"
            assert "not ready within 3s" in (raised.value.details() or "")
            await wait_until_gone(pid, within_s=30)
            assert live_processes_in(tmp_path / "teams") == []
            assert (await status_of(iris)).state == "stopped"
        finally:
            kill_all([pid] if process_alive(pid) else [])


# --- settings.shutdownTimeout ------------------------------------------------------------------------------


async def test_stopping_iris_kills_a_process_that_does_not_exit_within_shutdown_timeout(
    tmp_path: Path,
) -> None:
    # Without the escalation a stopped child ends only by the SDK's own close: 5 s after stdin EOF it sends
    # SIGTERM (which a stopped process keeps pending) and 5 s later SIGKILL, so at least 10 s.
    config = write_config(tmp_path, settings={"shutdownTimeout": 300})
    loop = asyncio.get_running_loop()
    async with start_iris(tmp_path, config) as iris:
        # Idle: a process stopped mid-turn would be killed by its failing turn, not by the shutdown.
        await send(iris, "say idle now")
        pid = (await status_of(iris)).pid
        os.kill(pid, signal.SIGSTOP)
        stopping_at = loop.time()
    took = loop.time() - stopping_at
    try:
        assert not process_alive(pid)
        assert live_processes_in(tmp_path / "teams") == []
        assert took < 8.0
    finally:
        kill_all([pid] if process_alive(pid) else [])


async def test_a_turn_past_turn_timeout_replaces_the_process_and_the_next_message_is_answered(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, settings={"turnTimeout": 1000})
    async with start_iris(tmp_path, config) as iris:
        await send(iris, "remember olive")
        old_pid = (await status_of(iris)).pid
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await send(iris, "slow 20 300", timeout_ms=0)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error_reason(raised.value) == "TimeoutError"
        await wait_until_gone(old_pid)
        async with asyncio.timeout(10):
            while (timed_out := (await report_of(iris)).entries[-1]).status != "error":
                await asyncio.sleep(0.02)
        assert "turnTimeout" in timed_out.error
        after = await send(iris, "recall")
        assert after.status == "completed" and after.response == "you told me: olive"
        new_pid = (await status_of(iris)).pid
        assert new_pid and new_pid != old_pid
        assert live_processes_in(tmp_path / "teams") == [new_pid]


async def test_the_report_never_shows_a_turn_past_turn_timeout_as_queued_again(tmp_path: Path) -> None:
    config = write_config(tmp_path, settings={"turnTimeout": 1000})
    async with start_iris(tmp_path, config) as iris:
        await send(iris, "say warm")
        seen: list[str] = []

        async def watch_the_report() -> None:
            async with asyncio.timeout(30):
                while not seen or seen[-1] != "error":
                    entries = (await report_of(iris)).entries
                    status = entries[1].status if len(entries) > 1 else "absent"
                    if not seen or seen[-1] != status:
                        seen.append(status)

        watching = asyncio.create_task(watch_the_report())
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await send(iris, "slow 20 300", timeout_ms=0)
        assert error_reason(raised.value) == "TimeoutError"
        await watching
        entry = (await report_of(iris)).entries[1]
    # queued (maybe) and running while it runs, then error: an ended turn is never shown as waiting again.
    assert seen[seen.index("running") :] == ["running", "error"]
    assert "turnTimeout" in entry.error


# --- ttlDays of persisted messages -------------------------------------------------------------------------


def expire_in_the_record(home: Path, message_id: str) -> int:
    """Set-up step: make a persisted turn's ttl run out by moving its expiry (``turns.expires_at``, Unix
    ms) in ``iris.db`` an hour into the past, as if its ttlDays had passed while Iris was down; return the
    rows changed.

    No RPC sets the clock or an expiry directly, and ttlDays is at least 1, so the record is the only way to
    reach an expired message without waiting a day. The outcome is read back only through SessionReport.
    """
    with sqlite3.connect(home / "iris.db") as db:
        changed = db.execute(
            "UPDATE turns SET expires_at = ? WHERE message_id = ? AND persist = 1 AND status = 'queued'",
            (time.time_ns() // 1_000_000 - HOUR_MS, message_id),
        ).rowcount
    return changed


async def test_an_expired_persisted_message_does_not_run_after_restart_while_an_unexpired_one_does(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    async with start_iris(tmp_path, config) as iris:
        await send(iris, "slow 100 100", timeout_ms=-1)
        await wait_until_running(iris)
        request = pb.SendMessageRequest(
            from_team="caller", to_team="alpha", timeout=-1, persist=True, ttl_days=1
        )
        request.message = "remember expired"
        expired = await iris.stub.SendMessage(request)
        request.message = "remember kept"
        kept = await iris.stub.SendMessage(request)
        assert (await status_of(iris)).notifications.pending == 2
    assert expire_in_the_record(tmp_path / "iris-home", expired.message_id) == 1
    async with start_iris(tmp_path, config) as iris:
        async with asyncio.timeout(60):
            while (entry := (await report_of(iris)).entries[2]).status != "completed":
                assert entry.status in ("queued", "running")
                await asyncio.sleep(0.05)
        entries = {e.message_id: e for e in (await report_of(iris)).entries}
        assert entries[kept.message_id].response == "ok, remembering kept"
        dropped = entries[expired.message_id]
        assert dropped.status == "error" and dropped.error == "expired: it waited past its ttlDays"
        assert (dropped.response, dropped.started_at) == ("", 0)
        # It never reached Claude: the conversation has the kept message only.
        assert (await send(iris, "recall")).response == "you told me: kept"
