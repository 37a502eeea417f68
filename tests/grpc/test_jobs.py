"""Execute and the durable job queue: priority order, idempotency, cancel, timeouts, and kill -9 of Iris."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.clock import now_ms
from iris_offline_model import OfflineModel, offline_model_env
from iris_offline_model.script import user_text
from tests.gateway.conftest import gateway_for
from tests.harness import Iris, error_details, iris_serve, start_iris, write_config


async def record_of(stub: iris_pb2_grpc.IrisAsyncStub, some_id: str) -> pb.MessageRecord:
    return (await stub.GetMessage(pb.GetMessageRequest(message_id=some_id), timeout=10)).message


async def until_ended(
    stub: iris_pb2_grpc.IrisAsyncStub, some_id: str, within_s: float = 60
) -> pb.MessageRecord:
    async with asyncio.timeout(within_s):
        while (record := await record_of(stub, some_id)).status in ("queued", "processing"):
            await asyncio.sleep(0.05)
    return record


async def execute(stub: iris_pb2_grpc.IrisAsyncStub, task: str, **fields: object) -> pb.ExecuteResponse:
    request = pb.ExecuteRequest(team="alpha", task=task, **fields)  # type: ignore[arg-type]
    return await stub.Execute(request, timeout=30)


async def test_execute_queues_a_job_that_runs_and_is_found_by_its_job_id(iris: Iris) -> None:
    before = now_ms()
    job = await execute(iris.stub, "say done", priority="high")
    assert job.job_id.startswith("job_") and job.message_id.startswith("msg_") and job.team == "alpha"
    assert job.status == "queued" and job.estimated_completion > before
    record = await until_ended(iris.stub, job.job_id)
    assert (record.status, record.response, record.job_id, record.priority) == (
        "completed",
        "done",
        job.job_id,
        "high",
    )
    assert record.message_id == job.message_id and record.attempts == 1


async def test_the_same_idempotency_key_returns_the_same_job_and_starts_nothing(iris: Iris) -> None:
    first = await execute(iris.stub, "say once", idempotency_key="deploy-42")
    again = await execute(iris.stub, "say once", idempotency_key="deploy-42")
    other = await execute(iris.stub, "say twice", idempotency_key="deploy-43")
    assert again.job_id == first.job_id and again.message_id == first.message_id
    assert other.job_id != first.job_id
    await until_ended(iris.stub, first.job_id)
    await until_ended(iris.stub, other.job_id)
    after = await execute(iris.stub, "say once", idempotency_key="deploy-42")
    assert after.job_id == first.job_id and after.status == "completed" and after.position == 0
    history = await iris.stub.ListMessages(pb.ListMessagesRequest(team="alpha"))
    assert history.pagination.total == 2


async def test_a_high_priority_job_runs_before_the_low_ones_queued_earlier(tmp_path: Path) -> None:
    config = write_config(tmp_path, settings={"maxConcurrentJobs": 1})
    async with start_iris(tmp_path, config) as iris:
        blocker = await execute(iris.stub, "slow 10 100", priority="low")
        lows = [await execute(iris.stub, f"say low {i}", priority="low") for i in range(5)]
        high = await execute(iris.stub, "say high", priority="high")
        assert [low.position for low in lows] == [1, 2, 3, 4, 5] and high.position == 1
        records = [await until_ended(iris.stub, job.job_id) for job in (blocker, *lows, high)]
    started = sorted(records, key=lambda r: r.started_at)
    assert [r.response for r in started] == ["".join(f"chunk {i} " for i in range(1, 11)), "high"] + [
        f"low {i}" for i in range(5)
    ]


async def test_a_waiting_job_is_cancelled_before_it_runs_and_a_job_past_its_timeout_is_cancelled(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, settings={"maxConcurrentJobs": 1})
    async with start_iris(tmp_path, config) as iris:
        slow = await execute(iris.stub, "slow 100 100", timeout=500)
        waiting = await execute(iris.stub, "say never")
        cancelled = await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=waiting.job_id))
        assert cancelled.message.status == "cancelled" and cancelled.message.attempts == 0
        timed_out = await until_ended(iris.stub, slow.job_id)
    assert timed_out.status == "cancelled" and timed_out.progress.chunks < 100


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"callback": pb.WebhookCallback(url="ftp://example.com/hook")}, "callback.url"),
        ({"callback": pb.WebhookCallback(url="http://example.com/hook", method="DELETE")}, "callback.method"),
        ({"timeout": -1}, "timeout"),
        ({"idempotency_key": "k" * 256}, "idempotencyKey"),
    ],
)
async def test_execute_refuses_bad_input_and_queues_nothing(
    iris: Iris, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await execute(iris.stub, "say hi", **fields)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(refused.value)["field"] == field
    assert (await iris.stub.ListMessages(pb.ListMessagesRequest())).pagination.total == 0


async def test_the_designs_execute_example_over_rest(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"backend": {"grantPermission": "yes"}})
    async with start_iris(tmp_path, config) as iris, gateway_for(iris) as gateway:
        body = {"task": "say audited", "priority": "normal"}
        accepted = await gateway.client.post("/api/v1/teams/backend/execute", json=body)
        job = accepted.json()
        record = await until_ended(iris.stub, job["jobId"])
        found = await gateway.client.get(f"/api/v1/messages/{job['jobId']}")
    assert accepted.status_code == 200 and job["status"] == "queued" and job["team"] == "backend"
    assert job["jobId"].startswith("job_") and job["estimatedCompletion"] > 0
    assert record.response == "audited" and found.json()["jobId"] == job["jobId"]


async def test_kill_9_with_20_jobs_queued_and_one_running_completes_all_21_once(tmp_path: Path) -> None:
    """Every accepted job survives kill -9: the queued ones run once, the cut-off one again on its rewound
    session (attempts 2), none twice to completion; the model's requests are counted across both runs."""
    async with OfflineModel(host="127.0.0.1", port=0) as model:
        env = {**offline_model_env(model.base_url), "HOME": str(tmp_path / "claude-home")}
        config = write_config(tmp_path, settings={"env": env, "maxConcurrentJobs": 1})
        async with iris_serve(tmp_path, config, offline_model=False) as served:
            running = await execute(served.stub, "slow 30 100")
            queued = [await execute(served.stub, f"say job {i}") for i in range(20)]
            async with asyncio.timeout(30):
                while not any(user_text(body) == "slow 30 100" for body in model.requests):
                    await asyncio.sleep(0.02)
            assert (await record_of(served.stub, queued[-1].job_id)).status == "queued"
            served.process.kill()
            await asyncio.wait_for(served.process.wait(), 15)
        async with iris_serve(tmp_path, config, offline_model=False) as served:
            records = [await until_ended(served.stub, job.job_id, 120) for job in (running, *queued)]
    assert [r.status for r in records] == ["completed"] * 21
    assert records[0].attempts == 2 and records[0].response.count("chunk") == 30
    assert [r.response for r in records[1:]] == [f"job {i}" for i in range(20)]
    assert all(r.attempts == 1 for r in records[1:])
    asked = [user_text(body) for body in model.requests]
    assert [asked.count(f"say job {i}") for i in range(20)] == [1] * 20
    assert asked.count("slow 30 100") == 2  # cut off once, run again once
