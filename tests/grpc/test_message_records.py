"""GetMessage, ListMessages and CancelMessage (the v1 API): a message by id, the history, one cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.clock import now_ms
from iris_core.store import Store
from tests.gateway.conftest import gateway_for
from tests.harness import Iris, error_details, send, start_iris, wait_until_running, with_key, write_config


async def record_of(iris: Iris, message_id: str) -> pb.MessageRecord:
    return (await iris.stub.GetMessage(pb.GetMessageRequest(message_id=message_id))).message


async def test_a_message_is_found_by_id_with_what_it_did(iris: Iris) -> None:
    context = pb.AskContext(source="ci")
    context.metadata.update({"pr_number": 7})
    asked = await iris.stub.Ask(
        pb.AskRequest(
            team="alpha", question='tool Bash {"command": "echo hi", "description": "x"}', context=context
        )
    )
    record = await record_of(iris, asked.message_id)
    assert (record.status, record.team, record.from_team) == ("completed", "alpha", "admin")
    assert record.response == asked.response and record.progress.percentage == 100
    assert record.progress.tool_uses == 1 and list(record.metadata.tools_used) == ["Bash"]
    assert record.metadata.usage.input_tokens > 0 and record.attempts == 1
    assert record.context.source == "ci" and record.context.metadata["pr_number"] == 7


async def test_a_processing_message_shows_its_progress_then_its_end(iris: Iris) -> None:
    accepted = await send(iris, "slow 30 100", timeout_ms=-1)
    await wait_until_running(iris)
    async with asyncio.timeout(30):
        while (during := await record_of(iris, accepted.message_id)).progress.chunks < 3:
            await asyncio.sleep(0.05)
    assert during.status == "processing" and not during.progress.HasField("percentage")
    assert during.response.startswith("chunk 1 chunk 2 ")
    async with asyncio.timeout(30):
        while (after := await record_of(iris, accepted.message_id)).status == "processing":
            await asyncio.sleep(0.05)
    assert after.status == "completed" and after.progress.chunks == 30 and after.progress.percentage == 100


async def test_cancel_stops_a_queued_message_before_it_runs_and_interrupts_a_running_one(iris: Iris) -> None:
    running = await send(iris, "slow 100 100", timeout_ms=-1)
    queued = await send(iris, "say never", timeout_ms=-1)
    await wait_until_running(iris)
    cancelled_queued = await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=queued.message_id))
    assert cancelled_queued.message.status == "cancelled" and cancelled_queued.message.attempts == 0
    await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=running.message_id))
    async with asyncio.timeout(15):
        while (ended := await record_of(iris, running.message_id)).status == "processing":
            await asyncio.sleep(0.05)
    assert ended.status == "cancelled" and ended.progress.chunks < 100
    again = await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=queued.message_id))
    assert again.message.status == "cancelled"
    assert (await record_of(iris, queued.message_id)).response == ""  # it never reached Claude
    done = await send(iris, "say done")
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=done.message_id))
    assert late.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(late.value)["status"] == "completed"


async def test_a_key_sees_only_its_own_messages(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(
        pb.CreateApiKeyRequest(name="bob", permissions=["team:tell", "cache:read"])
    )
    mine = await send(iris, "say admin's")  # the admin key, calling as "caller"
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
        bob = iris_pb2_grpc.IrisStub(channel)
        bobs = await bob.SendMessage(pb.SendMessageRequest(to_team="alpha", message="say bob's"), timeout=60)
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await bob.GetMessage(pb.GetMessageRequest(message_id=mine.message_id), timeout=10)
        own = await bob.GetMessage(pb.GetMessageRequest(message_id=bobs.message_id), timeout=10)
        listed = await bob.ListMessages(pb.ListMessagesRequest(), timeout=10)
        others = await bob.ListMessages(pb.ListMessagesRequest(from_team="admin"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await bob.CancelMessage(pb.CancelMessageRequest(message_id=mine.message_id), timeout=10)
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    assert own.message.from_team == "bob" and own.message.response == "bob's"
    assert [m.message_id for m in listed.messages] == [bobs.message_id] and listed.pagination.total == 1
    assert others.pagination.total == 0
    everything = await iris.stub.ListMessages(pb.ListMessagesRequest())  # admin sees every caller's
    assert {m.from_team for m in everything.messages} == {"caller", "bob"}


async def record_history(home: Path, count: int) -> int:
    """Record ``count`` ended turns (alternately to alpha and beta, one in three failed), oldest first."""
    start = now_ms() - count * 1000
    async with Store(home / "iris.db") as store:
        for team in ("alpha", "beta"):
            await store.get_or_create_session("recorder", team)
        for i in range(count):
            team = "alpha" if i % 2 == 0 else "beta"
            session = await store.session_id_for("recorder", team)
            message_id = f"msg_hist{i:04d}"
            created = start + i * 1000
            await store.add_turn(
                message_id=message_id,
                session_id=session,
                from_team="recorder",
                to_team=team,
                request=f"question {i}",
                created_at=created,
                persist=False,
                expires_at=0,
            )
            await store.finish_turn(
                message_id,
                status="error" if i % 3 == 0 else "completed",
                response=f"answer {i}",
                error="",
                events=[],
                started_at=created,
                completed_at=created + 10,
                duration_ms=10,
                cost_usd=0.0,
                attempts=1,
            )
    return start


async def test_history_filters_and_pages_120_records(tmp_path: Path) -> None:
    start = await record_history(tmp_path / "iris-home", 120)
    async with start_iris(tmp_path) as iris:

        async def listed(**fields: object) -> pb.ListMessagesResponse:
            return await iris.stub.ListMessages(pb.ListMessagesRequest(**fields))  # type: ignore[arg-type]

        first = await listed()
        third = await listed(page=3)
        alpha = await listed(team="alpha", limit=200)
        failed_beta = await listed(to_team="beta", status="failed", limit=200)
        recent = await listed(since=start + 100_000)
        nobody = await listed(from_team="nobody")
    assert (first.pagination.total, first.pagination.limit, first.pagination.has_next) == (120, 50, True)
    assert [m.message_id for m in first.messages][:2] == ["msg_hist0119", "msg_hist0118"]  # newest first
    assert len(third.messages) == 20 and third.pagination.page == 3 and not third.pagination.has_next
    assert third.messages[-1].message_id == "msg_hist0000"
    assert alpha.pagination.total == 60 and {m.team for m in alpha.messages} == {"alpha"}
    assert failed_beta.pagination.total == len([i for i in range(1, 120, 2) if i % 3 == 0])
    assert {(m.team, m.status) for m in failed_beta.messages} == {("beta", "failed")}
    assert recent.pagination.total == 20 and not recent.pagination.has_next
    assert nobody.pagination.total == 0 and list(nobody.messages) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"limit": 201}, "limit"),
        ({"page": -1}, "page"),
        ({"status": "done"}, "status"),
        ({"since": -5}, "since"),
    ],
)
async def test_history_refuses_bad_filters(iris: Iris, fields: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await iris.stub.ListMessages(pb.ListMessagesRequest(**fields))  # type: ignore[arg-type]
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(refused.value)["field"] == field


async def test_every_message_rpc_needs_its_permission_and_a_known_id(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await iris.stub.GetMessage(pb.GetMessageRequest(message_id="msg_nope"))
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    created = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="status", permissions=["status:read"]))
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
        reader = iris_pb2_grpc.IrisStub(channel)
        calls: list[Awaitable[object]] = [
            reader.GetMessage(pb.GetMessageRequest(message_id="msg_nope"), timeout=10),
            reader.ListMessages(pb.ListMessagesRequest(), timeout=10),
            reader.CancelMessage(pb.CancelMessageRequest(message_id="msg_nope"), timeout=10),
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)] == [
        grpc.StatusCode.PERMISSION_DENIED
    ] * 3


async def test_the_message_routes_over_rest(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with start_iris(tmp_path, config) as iris, gateway_for(iris) as gateway:
        c = gateway.client
        asked = (await c.post("/api/v1/teams/alpha/ask", json={"question": "say hi"})).json()
        found = await c.get(f"/api/v1/messages/{asked['messageId']}")
        history = await c.get(
            "/api/v1/messages/history", params={"team": "alpha", "from": "admin", "limit": 10}
        )
        unknown = await c.get("/api/v1/messages/msg_nope")
        cancel_done = await c.post(f"/api/v1/messages/{asked['messageId']}/cancel", json={})
        status = await c.get("/api/v1/teams/alpha/status")
    assert found.status_code == 200 and found.json()["status"] == "completed"  # the record itself, flat
    assert found.json()["response"] == "hi" and found.json()["messageId"] == asked["messageId"]
    page = history.json()
    assert history.status_code == 200 and page["pagination"] == {
        "page": 1,
        "limit": 10,
        "total": 1,
        "hasNext": False,
    }
    assert [m["messageId"] for m in page["messages"]] == [asked["messageId"]]
    assert unknown.status_code == 404 and unknown.json()["error"] == "MessageNotFoundError"
    assert cancel_done.status_code == 400 and cancel_done.json()["code"] == "FAILED_PRECONDITION"
    assert status.status_code == 200 and status.json()["teams"][0]["name"] == "alpha"
