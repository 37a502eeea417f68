"""maxProcesses: LRU eviction of idle processes, and refusal when every slot is busy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    Iris,
    error_reason,
    send,
    start_iris,
    status_of,
    wait_until_gone,
    wait_until_running,
    write_config,
)


async def test_the_least_recently_used_idle_process_is_evicted_for_a_third_pair(tmp_path: Path) -> None:
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxProcesses": 2})) as iris:
        first = await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="c", to_team="alpha", message="remember one")
        )
        await iris.stub.SendMessage(pb.SendMessageRequest(from_team="c", to_team="beta", message="say b"))
        alpha_pid = (await status_of(iris, "alpha", "c")).pid
        beta_pid = (await status_of(iris, "beta", "c")).pid
        await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="c", to_team="beta", message="say b again")
        )
        third = await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="c", to_team="gamma", message="say g")
        )
        assert third.response == "g"
        assert not (await status_of(iris, "alpha", "c")).awake
        assert (await status_of(iris, "beta", "c")).pid == beta_pid
        await wait_until_gone(alpha_pid)
        assert (await iris.stub.GetStatus(pb.GetStatusRequest())).processes.total == 2
        # The evicted pair kept its session: its next message resumes it (evicting beta, now the LRU).
        again = await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="c", to_team="alpha", message="recall")
        )
        assert again.response == "you told me: one" and again.session_id == first.session_id


async def test_with_every_process_busy_a_new_pair_waits_for_a_slot_while_a_wake_is_refused(
    tmp_path: Path,
) -> None:
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxProcesses": 2})) as iris:
        for team in ("alpha", "beta"):
            await iris.stub.SendMessage(
                pb.SendMessageRequest(from_team="c", to_team=team, message="slow 100 100", timeout=-1)
            )
            await wait_until_running(iris, team, "c")
        waiting = asyncio.create_task(send(iris, "say g", to="gamma", frm="c", timeout_ms=0))
        await wait_for_state(iris, "gamma", "c", "stopped")  # accepted, waiting in line for a slot
        with pytest.raises(grpc.aio.AioRpcError) as wake_refused:
            await iris.stub.TeamWake(pb.TeamWakeRequest(team="gamma", from_team="d"))
        assert wake_refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(wake_refused.value) == "ProcessPoolLimitError"
        assert not waiting.done()
        assert (await status_of(iris, "gamma", "c")).notifications.pending == 1
        await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="c"))
        reply = await asyncio.wait_for(waiting, 30)
        assert (reply.status, reply.response) == ("completed", "g")
        await iris.stub.SessionCancel(pb.SessionCancelRequest(team="beta", from_team="c"))


async def wait_for_state(iris: Iris, team: str, frm: str, state: str) -> None:
    async with asyncio.timeout(30):
        while (entry := await status_of(iris, team, frm)).state != state or not entry.notifications.pending:
            await asyncio.sleep(0.02)
