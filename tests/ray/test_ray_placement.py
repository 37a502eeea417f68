"""Teams placed on a Ray cluster (``placement: {kind: ray}``): the core contract, answered from Ray nodes.

A local cluster (``conftest.ray_cluster``: a head without CPUs and two workers) runs each pair's Claude Code
in an actor on a worker node; these tests talk to Iris exactly as any client does and look at the processes
on the machine to see where they run.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    Iris,
    error_reason,
    iris_serve,
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
from tests.ray.cluster import LocalRayCluster, parent_of
from tests.ray.conftest import ray_config

FULL_SLOW_ANSWER = "".join(f"chunk {i} " for i in range(1, 101))


async def wait_until_answering(iris: Iris, request: str) -> None:
    """Wait (bounded) until the turn of ``request`` has streamed a part of its answer: its prompt is with
    Claude Code (a turn counts as running from before its prompt is sent)."""
    async with asyncio.timeout(30):
        while True:
            entry = (await report_of(iris)).entries[-1]
            if entry.request == request and entry.response:
                return
            await asyncio.sleep(0.02)


async def test_a_message_is_answered_by_claude_code_in_an_actor_on_a_worker_node(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
        reply = await send(iris, "say the whole answer")
        assert (reply.status, reply.response) == ("completed", "the whole answer")
        pid = (await status_of(iris)).pid
        assert process_alive(pid)
        node = ray_cluster.node_of(pid)
        assert node is not None and node.startswith("worker-")
        assert parent_of(pid) != os.getpid()  # a Ray worker's child, not Iris's
        assert (await send(iris, "say again")).response == "again"
        assert (await status_of(iris)).pid == pid  # the same process serves the pair's turns
        worker = parent_of(pid)
    # Iris's stop stopped the process and ended its actor (the actor's worker process is gone too).
    await wait_until_gone(pid)
    await wait_until_gone(worker)


async def test_tell_streams_the_chunks_while_the_turn_still_runs_on_its_node(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
        await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team="caller"))
        events: list[pb.TellResponse] = []
        running_at_first_chunk = -1
        async with asyncio.timeout(60):
            request = pb.TellRequest(from_team="caller", to_team="alpha", message="slow 10 200")
            async for event in iris.stub.Tell(request):
                events.append(event)
                if event.WhichOneof("event") == "chunk" and running_at_first_chunk < 0:
                    running_at_first_chunk = (await status_of(iris)).notifications.running
        # The first chunk came while the two-second turn was still running: streamed, not batched at the end.
        assert running_at_first_chunk == 1
        assert [e.WhichOneof("event") for e in events] == ["start", *["chunk"] * 10, "complete"]
        complete = events[-1].complete
        assert complete.status == "completed"
        assert complete.response == "".join(f"chunk {i} " for i in range(1, 11))
        assert complete.cost_usd > 0


async def test_cancel_interrupts_the_turn_on_its_node_and_keeps_the_process(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
        waiting = asyncio.create_task(send(iris, "slow 100 100", timeout_ms=0))
        await wait_until_running(iris)
        before = await status_of(iris)
        cancel = await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))
        reply = await asyncio.wait_for(waiting, 10)  # the ten-second turn ended early
        assert cancel.cancelled and reply.status == "cancelled"
        assert FULL_SLOW_ANSWER.startswith(reply.response)
        assert reply.response.count("chunk ") < 50
        assert (await send(iris, "say still here")).response == "still here"
        assert (await status_of(iris)).pid == before.pid


async def test_sleep_ends_the_actor_and_the_next_message_resumes_the_conversation(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
        first = await send(iris, "remember plum")
        pid = (await status_of(iris)).pid
        worker = parent_of(pid)  # the actor's Ray worker process
        slept = await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="caller"))
        assert slept.status == "asleep"
        await wait_until_gone(pid)
        await wait_until_gone(worker)  # the actor died with its pair
        reply = await send(iris, "recall")
        assert reply.response == "you told me: plum"
        assert reply.session_id == first.session_id
        assert (await status_of(iris)).pid != pid


async def test_max_processes_bounds_the_actors_and_an_evicted_pair_resumes(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster, maxProcesses=1)) as iris:
        first = await send(iris, "remember one", frm="c1")
        first_pid = (await status_of(iris, frm="c1")).pid
        assert (await send(iris, "say two", frm="c2")).response == "two"
        await wait_until_gone(first_pid)  # evicted (least recently used) to make room for c2's pair
        assert not (await status_of(iris, frm="c1")).awake
        assert (await iris.stub.GetStatus(pb.GetStatusRequest())).processes.total == 1
        again = await send(iris, "recall", frm="c1")
        assert again.response == "you told me: one" and again.session_id == first.session_id
        assert not (await status_of(iris, frm="c2")).awake


async def test_a_permission_question_on_the_node_is_asked_and_answered_through_iris(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    placement = {"kind": "ray", "address": ray_cluster.address, "cpus": 1, "memoryMb": 256}
    config = write_config(
        tmp_path, settings={"placement": placement}, teams={"alpha": {"grantPermission": "ask"}}
    )
    async with start_iris(tmp_path, config) as iris:
        command = {"command": "echo asked-on-ray > allowed.txt", "description": "write a file"}
        request = pb.TellRequest(
            from_team="caller", to_team="alpha", message=f"tool Bash {json.dumps(command)}"
        )
        events: list[pb.TellResponse] = []
        async with asyncio.timeout(60):
            async for event in iris.stub.Tell(request):
                events.append(event)
                if event.WhichOneof("event") == "permission_request":
                    await iris.stub.PermissionsApprove(
                        pb.PermissionsApproveRequest(
                            request_id=event.permission_request.request_id,
                            decision="allow",
                            from_team="caller",
                        )
                    )
        [asked] = [e.permission_request for e in events if e.WhichOneof("event") == "permission_request"]
        assert asked.tool == "Bash" and asked.input["command"] == command["command"]
        assert events[-1].complete.status == "completed"
        assert (iris.config.teams["alpha"].path / "allowed.txt").read_text().strip() == "asked-on-ray"


async def test_a_team_asking_for_more_than_any_node_has_fails_its_start_in_time_and_leaves_no_actor(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    placement = {"kind": "ray", "address": ray_cluster.address, "cpus": 64, "memoryMb": 256}
    config = write_config(tmp_path, settings={"placement": placement, "spawnTimeout": 3000})
    async with start_iris(tmp_path, config) as iris:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await send(iris, "say never")
        assert error_reason(failure.value) == "ProcessError"
        assert "64 CPUs" in (failure.value.details() or "")
        assert (await iris.stub.GetStatus(pb.GetStatusRequest())).processes.total == 0


async def test_a_killed_node_fails_its_pairs_turn_and_the_pair_resumes_on_the_other_node_with_its_context(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    try:
        async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
            first = await send(iris, "remember plum")
            pid = (await status_of(iris)).pid
            node = ray_cluster.node_of(pid)
            assert node is not None and node.startswith("worker-")
            waiting = asyncio.create_task(send(iris, "slow 100 100", timeout_ms=0))
            await wait_until_answering(iris, "slow 100 100")
            ray_cluster.kill_node(node)  # the node's raylet, its workers and Claude Code, as if it died
            assert not process_alive(pid)
            with pytest.raises(grpc.aio.AioRpcError) as failure:  # the turn it was running fails at once
                await asyncio.wait_for(waiting, 30)
            assert error_reason(failure.value) == "ProcessError"
            reply = await send(iris, "recall")
            assert reply.response == "you told me: plum"
            assert reply.session_id == first.session_id
            now = (await status_of(iris)).pid
            assert now != pid and ray_cluster.node_of(now) not in (None, node)
    finally:
        if len(ray_cluster.nodes) < 3:  # the next tests get two workers again
            ray_cluster.add_worker()


async def test_kill_9_of_iris_takes_its_actors_and_their_claude_code_with_it(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    config = ray_config(tmp_path, ray_cluster)
    async with iris_serve(tmp_path, config) as served:
        await served.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="alpha", message="slow 200 100", timeout=-1),
            timeout=30,
        )
        await served.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="beta", message="say idle"), timeout=60
        )
        async with asyncio.timeout(60):
            while (
                await served.stub.TeamStatus(pb.TeamStatusRequest(from_team="caller", team="alpha"))
            ).teams[0].notifications.running != 1:
                await asyncio.sleep(0.05)
        pids = [
            (await served.stub.TeamStatus(pb.TeamStatusRequest(from_team="caller", team=team))).teams[0].pid
            for team in ("alpha", "beta")
        ]
        workers = [parent_of(pid) for pid in pids]
        assert all(process_alive(pid) for pid in pids + workers)
        served.process.kill()
        await served.process.wait()
    async with asyncio.timeout(30):
        while live_processes_in(tmp_path / "teams") or any(process_alive(p) for p in workers):
            await asyncio.sleep(0.05)
