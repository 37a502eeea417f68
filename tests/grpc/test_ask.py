"""Ask (the v1 API): the whole answer with what the turn did, or DEADLINE_EXCEEDED with its message id."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import httpx
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.gateway.conftest import gateway_for
from tests.harness import Iris, error_details, report_of, start_iris, with_key, write_config


async def test_ask_returns_the_answer_with_the_tools_used_the_files_read_and_the_tokens(iris: Iris) -> None:
    notes = Path(iris.config.teams["alpha"].path) / "notes.txt"
    notes.write_text("the migration system is prisma\n")
    question = "tool Read " + json.dumps({"file_path": str(notes)})
    context = pb.AskContext(source="ci")
    context.metadata.update({"pr_number": 123})
    answer = await iris.stub.Ask(pb.AskRequest(team="alpha", question=question, context=context))
    assert answer.status == "completed" and "the migration system is prisma" in answer.response
    assert (answer.team, answer.question, answer.from_team) == ("alpha", question, "admin")
    assert list(answer.metadata.tools_used) == ["Read"]
    assert list(answer.metadata.files_accessed) == [str(notes)]
    assert answer.metadata.usage.input_tokens > 0 and answer.metadata.usage.output_tokens > 0
    assert answer.metadata.cost_usd > 0 and answer.duration > 0 and answer.message_id.startswith("msg_")


async def test_past_its_timeout_ask_fails_with_the_message_id_and_the_turn_goes_on(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await iris.stub.Ask(pb.AskRequest(team="alpha", question="slow 10 100", timeout=100))
    assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    message_id = error_details(failed.value)["messageId"]
    assert message_id in (failed.value.details() or "")
    async with asyncio.timeout(30):  # the turn was not stopped: it ends on its own, whole
        while (entry := (await report_of(iris, "alpha", "admin")).entries[0]).status != "completed":
            await asyncio.sleep(0.05)
    assert entry.message_id == message_id and entry.response.count("chunk") == 10


@pytest.mark.parametrize("timeout_ms", [-1, 3_600_001])
async def test_ask_refuses_a_timeout_it_cannot_wait(iris: Iris, timeout_ms: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await iris.stub.Ask(pb.AskRequest(team="alpha", question="hi", timeout=timeout_ms))
    assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(failed.value)["field"] == "timeout"
    assert (await report_of(iris, "alpha", "admin")).entries == []


async def test_ask_needs_a_key_with_team_tell(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="reader", permissions=["status:read"]))
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as reader:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await iris_pb2_grpc.IrisStub(reader).Ask(pb.AskRequest(team="alpha", question="hi"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    async with grpc.aio.insecure_channel(iris.target) as keyless:
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await iris_pb2_grpc.IrisStub(keyless).Ask(pb.AskRequest(team="alpha", question="hi"), timeout=10)
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_the_designs_ask_example_works_as_written_over_rest(tmp_path: Path) -> None:
    """``POST /api/v1/teams/backend/ask`` with the original design's own body, and a key."""
    config = write_config(tmp_path, teams={"backend": {"grantPermission": "yes"}})
    async with start_iris(tmp_path, config) as iris, gateway_for(iris) as gateway:
        body = {"question": "What database migration system do you use?", "timeout": 30000}
        answer = await gateway.client.post("/api/v1/teams/backend/ask", json=body)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as keyless:
            anonymous = await keyless.post("/api/v1/teams/backend/ask", json=body)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["team"] == "backend" and reply["question"] == body["question"]
    assert reply["response"] == "echo: What database migration system do you use?"
    assert reply["messageId"].startswith("msg_") and reply["duration"] > 0 and reply["timestamp"] > 0
    assert reply["metadata"]["toolsUsed"] == [] and reply["metadata"]["filesAccessed"] == []
    assert anonymous.status_code == 401
