"""Warm spares (``warmSpares``): started ahead of need, taken by a new pair's first message or a reboot,
counted toward maxProcesses, evicted first, refilled in the background, stopped by idleTimeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, live_processes_in, process_alive, send, start_iris, status_of, write_config


async def processes_in(folder: Path, count: int, within_s: float = 30) -> list[int]:
    """Wait (bounded) until exactly ``count`` live Claude Code processes work in ``folder``; return them."""
    async with asyncio.timeout(within_s):
        while len(found := sorted(live_processes_in(folder))) != count:
            await asyncio.sleep(0.05)
    return found


@pytest.fixture
async def spared(tmp_path: Path) -> AsyncIterator[Iris]:
    """An Iris whose team alpha keeps one warm spare and asks before tools; beta and gamma keep none."""
    config = write_config(
        tmp_path,
        settings={"maxProcesses": 3},
        teams={"alpha": {"warmSpares": 1, "grantPermission": "ask"}},
    )
    async with start_iris(tmp_path, config) as iris:
        yield iris


async def test_a_new_pair_takes_the_spare_and_another_is_started_behind_it(spared: Iris) -> None:
    alpha = spared.config.teams["alpha"].path
    [spare] = await processes_in(alpha, 1)  # started with Iris, before any message

    reply = await send(spared, "remember plum", frm="first")

    assert reply.status == "completed" and reply.response
    model = spared.running.offline_model
    assert model is not None
    [request] = model.requests  # the spare called no model before, and the turn sends nothing but the prompt
    assert "local-command" not in json.dumps(request["messages"])
    assert (await status_of(spared, "alpha", "first")).pid == spare  # the spare answered: no start
    refilled = await processes_in(alpha, 2)
    assert spare in refilled
    second = await send(spared, "recall", frm="second")  # takes the refilled spare
    assert (await status_of(spared, "alpha", "second")).pid in set(refilled) - {spare}
    assert "plum" not in second.response  # each spare started under its own session: nothing is shared
    recalled = await send(spared, "recall", frm="first")
    assert recalled.response == "you told me: plum"


async def test_a_reboot_takes_a_spare(spared: Iris) -> None:
    alpha = spared.config.teams["alpha"].path
    await processes_in(alpha, 1)
    await send(spared, "remember fig", frm="first")
    first = (await status_of(spared, "alpha", "first")).pid
    [spare] = set(await processes_in(alpha, 2)) - {first}

    rebooted = await spared.stub.SessionReboot(pb.SessionRebootRequest(from_team="first", to_team="alpha"))
    reply = await send(spared, "recall", frm="first")

    assert rebooted.new_session_id and rebooted.new_session_id != rebooted.old_session_id
    assert (await status_of(spared, "alpha", "first")).pid == spare
    assert "fig" not in reply.response


async def test_a_spare_hands_permission_requests_to_the_pair_that_took_it(spared: Iris) -> None:
    alpha = spared.config.teams["alpha"].path
    await processes_in(alpha, 1)
    command = json.dumps({"command": "echo spared > spared.txt", "description": "write a file"})
    requests: list[pb.TellPermissionRequest] = []

    async with asyncio.timeout(60):
        events = []
        async for event in spared.stub.Tell(
            pb.TellRequest(from_team="asker", to_team="alpha", message=f"tool Bash {command}")
        ):
            events.append(event)
            if event.WhichOneof("event") == "permission_request":
                requests.append(event.permission_request)
                await spared.stub.PermissionsApprove(
                    pb.PermissionsApproveRequest(
                        request_id=event.permission_request.request_id, decision="allow", from_team="asker"
                    )
                )

    assert [r.tool for r in requests] == ["Bash"]
    assert events[-1].complete.status == "completed"
    assert (alpha / "spared.txt").read_text().strip() == "spared"


async def test_spares_count_toward_max_processes_and_are_evicted_before_idle_pairs(spared: Iris) -> None:
    alpha = spared.config.teams["alpha"].path
    [spare] = await processes_in(alpha, 1)
    await send(spared, "hello", to="beta")
    await send(spared, "hello", to="gamma")  # three processes: the spare, beta's and gamma's

    beta_pid = (await status_of(spared, "beta")).pid
    await spared.stub.TeamWake(pb.TeamWakeRequest(team="beta", from_team="other"))  # a fourth: room is made

    assert not process_alive(spare)  # the spare went first
    assert (await status_of(spared, "beta")).pid == beta_pid  # the idle pairs kept their processes
    assert (await status_of(spared, "gamma")).pid
    teams = alpha.parent
    assert len(live_processes_in(teams)) == 3  # maxProcesses: the evicted spare was reaped before the start


async def test_idle_timeout_stops_a_spare_and_the_next_new_pair_brings_spares_back(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"warmSpares": 1, "idleTimeout": 1500}})
    async with start_iris(tmp_path, config) as iris:
        alpha = iris.config.teams["alpha"].path
        [spare] = await processes_in(alpha, 1)
        await processes_in(alpha, 0)  # idle past idleTimeout: stopped, and not started again

        assert not process_alive(spare)
        reply = await send(iris, "hello", frm="late")  # demand is back: started cold, and a spare behind it
        assert reply.status == "completed"
        assert len(await processes_in(alpha, 2)) == 2
