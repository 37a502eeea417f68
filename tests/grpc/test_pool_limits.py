"""maxProcesses: LRU eviction of idle processes, and refusal when every slot is busy."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    error_reason,
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


async def test_with_every_process_busy_a_new_pair_is_refused_with_pool_limit(tmp_path: Path) -> None:
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxProcesses": 2})) as iris:
        for team in ("alpha", "beta"):
            await iris.stub.SendMessage(
                pb.SendMessageRequest(from_team="c", to_team=team, message="slow 100 100", timeout=-1)
            )
            await wait_until_running(iris, team, "c")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await iris.stub.SendMessage(
                pb.SendMessageRequest(from_team="c", to_team="gamma", message="say g")
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(refused.value) == "ProcessPoolLimitError"
        report = await iris.stub.SessionReport(pb.SessionReportRequest(team="gamma", from_team="c"))
        assert not report.has_cache, "a refused message must not be recorded"
        with pytest.raises(grpc.aio.AioRpcError) as wake_refused:
            await iris.stub.TeamWake(pb.TeamWakeRequest(team="gamma", from_team="c"))
        assert wake_refused.value.code() == grpc.StatusCode.UNAVAILABLE
        for team in ("alpha", "beta"):
            await iris.stub.SessionCancel(pb.SessionCancelRequest(team=team, from_team="c"))
