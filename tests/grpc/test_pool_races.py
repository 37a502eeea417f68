"""The pool under races, driven over gRPC with real Claude Code against the offline model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import (
    Iris,
    error_details,
    error_reason,
    live_processes_in,
    report_of,
    send,
    start_iris,
    status_of,
    wait_until_running,
    with_key,
    write_config,
)

CALLER = "c"

T = TypeVar("T")


def live_claude_pids(root: Path) -> list[int]:
    return live_processes_in(root / "teams")


def transcripts(root: Path, session_id: str) -> list[Path]:
    return sorted((root / "claude-home" / ".claude" / "projects").glob(f"*/{session_id}.jsonl"))


async def process_count(iris: Iris) -> int:
    """Slots in use, as GetStatus reports them (processes starting, alive, or not yet reaped)."""
    return int((await iris.stub.GetStatus(pb.GetStatusRequest())).processes.total)


async def wait_for_state(iris: Iris, team: str, state: str, within_s: float = 30) -> None:
    """Wait (bounded) until the (CALLER, team) pair's TeamStatus state is ``state``."""
    async with asyncio.timeout(within_s):
        while (await status_of(iris, team, CALLER)).state != state:
            await asyncio.sleep(0.005)


async def in_a_task(call: Awaitable[T]) -> T:
    """Await a gRPC call (a call object is no coroutine, so ``create_task`` needs this wrapper)."""
    return await call


def refused_for_the_pool_limit(outcome: object) -> bool:
    return (
        isinstance(outcome, grpc.aio.AioRpcError)
        and outcome.code() == grpc.StatusCode.UNAVAILABLE
        and error_reason(outcome) == "ProcessPoolLimitError"
    )


async def test_a_message_while_a_sleep_stops_the_process_starts_a_new_one(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        await send(iris, "remember lime", frm=CALLER)
        sleeping = asyncio.create_task(
            in_a_task(iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER)))
        )
        await wait_for_state(iris, "alpha", "stopping")  # the sleep holds the pair: its process is stopping
        reply = await send(iris, "recall", frm=CALLER)
        assert (await sleeping).status == "asleep"
        assert reply.status == "completed" and reply.response == "you told me: lime"


async def test_max_processes_bounds_live_claude_processes_under_a_burst_of_pairs(tmp_path: Path) -> None:
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxProcesses": 1})) as iris:
        peak = 0
        stop = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, len(live_claude_pids(tmp_path)))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        await send(iris, "say a", frm=CALLER)
        outcomes = await asyncio.gather(
            *(
                send(iris, f"say {team} {i}", to=team, frm=CALLER)
                for i in range(3)
                for team in ("beta", "alpha", "gamma")
            ),
            return_exceptions=True,
        )
        stop.set()
        await watcher
        answered = [o for o in outcomes if isinstance(o, pb.SendMessageResponse)]
        assert len(answered) == len(outcomes), outcomes  # each waited its turn for the one slot
        assert all(o.status == "completed" for o in answered)
        assert peak == 1
        assert await process_count(iris) == 1
        assert len(live_claude_pids(tmp_path)) == 1


async def test_with_every_slot_busy_past_the_admission_bound_the_message_fails_with_a_retry_hint(
    tmp_path: Path,
) -> None:
    settings = {"maxProcesses": 1, "admissionTimeout": 1500}
    async with start_iris(tmp_path, write_config(tmp_path, settings=settings)) as iris:
        await send(iris, "slow 100 100", frm=CALLER, timeout_ms=-1)
        await wait_until_running(iris, "alpha", CALLER)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send(iris, "say b", to="beta", frm=CALLER, timeout_ms=0)
        assert refused_for_the_pool_limit(refused.value)
        assert int(error_details(refused.value)["retryAfterMs"]) > 0
        entry = (await report_of(iris, "beta", CALLER)).entries[0]
        assert (entry.status, entry.started_at) == ("error", 0)  # recorded, and it never ran
        await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team=CALLER))


async def test_shutdown_during_cold_starts_leaves_no_claude_process(tmp_path: Path) -> None:
    async with AsyncExitStack() as outlives_the_server:
        async with start_iris(tmp_path) as iris:
            # A channel of the test's own, open past the shutdown, so the wake's reply is the server's.
            own = await outlives_the_server.enter_async_context(
                grpc.aio.insecure_channel(iris.target, interceptors=with_key(iris.admin_key))
            )
            stub = iris_pb2_grpc.IrisStub(own)
            await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team=CALLER))
            await send(iris, "say hi", to="beta", frm=CALLER, timeout_ms=-1)  # its process is starting
            waking = asyncio.create_task(
                in_a_task(stub.TeamWake(pb.TeamWakeRequest(team="gamma", from_team=CALLER)))
            )
            await wait_for_state(iris, "gamma", "starting")  # the wake's start really began
        assert live_claude_pids(tmp_path) == []
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await waking
        assert refused_for_the_pool_limit(refused.value)


async def test_reboot_during_a_cold_start_leaves_no_trace_of_the_old_session(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        await send(iris, "remember old", frm=CALLER, timeout_ms=0)
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER))
        first = await send(iris, "say starting", frm=CALLER, timeout_ms=-1)  # a new process is starting
        reboot = await iris.stub.SessionReboot(pb.SessionRebootRequest(to_team="alpha", from_team=CALLER))
        assert reboot.old_session_id == first.session_id != reboot.new_session_id
        # The reboot woke the new session's process: the next message has nothing to wait for.
        async with asyncio.timeout(3):
            after = await send(iris, "recall", frm=CALLER)
        assert after.session_id == reboot.new_session_id
        assert after.response == "you told me: nothing"
        assert transcripts(tmp_path, first.session_id) == []
        report = await report_of(iris, "alpha", CALLER)
        assert [e.request for e in report.entries] == ["recall"]


async def test_persisted_turns_beyond_max_processes_wait_for_a_slot_after_restart(tmp_path: Path) -> None:
    teams = ("alpha", "beta", "gamma")
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxProcesses": 3})) as iris:
        for team in teams:
            await iris.stub.SendMessage(
                pb.SendMessageRequest(
                    from_team=CALLER, to_team=team, message="slow 30 100", timeout=-1, persist=True
                )
            )
        for team in teams:
            await wait_until_running(iris, team, CALLER)
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxProcesses": 1})) as iris:

        async def all_completed() -> bool:
            reports = [await report_of(iris, team, CALLER) for team in teams]
            return all(r.entries[0].status == "completed" for r in reports)

        async with asyncio.timeout(60):
            while not await all_completed():
                await asyncio.sleep(0.02)
        assert await process_count(iris) <= 1


async def test_sleep_without_force_refuses_when_a_message_was_queued_during_a_start(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        queued = await send(iris, "say queued first", frm=CALLER, timeout_ms=-1)
        status = await status_of(iris, "alpha", CALLER)
        assert (status.state, status.notifications.pending) == ("starting", 1)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team=CALLER))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(refused.value) == "PreconditionFailedError"
        async with asyncio.timeout(30):
            while (entry := (await report_of(iris, "alpha", CALLER)).entries[0]).status in (
                "queued",
                "running",
            ):
                await asyncio.sleep(0.02)
        assert entry.message_id == queued.message_id
        assert (entry.status, entry.response) == ("completed", "queued first")
