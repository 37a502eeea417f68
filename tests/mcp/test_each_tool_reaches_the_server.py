"""Every tool is one call of its RPC, with the arguments as the request: checked on a fake Iris server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from iris_client.contract import IRIS_SERVICE
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.json_mapping import message_to_json
from tests.mcp.conftest import ProgressLog, adapter_client

# tool -> (arguments, the RPC that must be called)
CALLS: dict[str, tuple[dict[str, Any], str]] = {
    "send_message": ({"toTeam": "b", "message": "hi", "timeout": 0, "persist": True, "ttlDays": 3}, "Tell"),
    "ask_message": ({"toTeam": "b", "message": "what is the schema?"}, "Tell"),
    "quick_message": ({"toTeam": "b", "message": "fyi"}, "QuickMessage"),
    "session_cancel": ({"team": "b"}, "SessionCancel"),
    "session_reboot": ({"toTeam": "b"}, "SessionReboot"),
    "session_delete": ({"toTeam": "b"}, "SessionDelete"),
    "session_fork": ({"toTeam": "b"}, "SessionFork"),
    "session_report": ({"team": "b", "fromTeam": "someone-else"}, "SessionReport"),
    "team_wake": ({"team": "b"}, "TeamWake"),
    "team_launch": ({"team": "b"}, "TeamLaunch"),
    "team_sleep": ({"team": "b", "force": True}, "TeamSleep"),
    "team_wake_all": ({"parallel": True}, "TeamWakeAll"),
    "team_status": ({"team": "b", "includeNotifications": False}, "TeamStatus"),
    "list_teams": ({}, "ListTeams"),
    "get_logs": ({"logs_since": 5, "level": "error"}, "GetLogs"),
    "get_date": ({}, "GetDate"),
    "permissions__approve": (
        {"tool_name": "mcp__iris__list_teams", "input": {"a": 1}, "tool_use_id": "toolu_1"},
        "PermissionsApprove",
    ),
}


@dataclass
class Received:
    method: str
    request: Message
    metadata: dict[str, str]


def _stream_events(request: pb.TellRequest) -> list[pb.TellResponse]:
    return [
        pb.TellResponse(
            start=pb.TellStart(message_id="m1", session_id="s1", team=request.to_team, from_team="me")
        ),
        pb.TellResponse(chunk=pb.TellChunk(text="part one, ")),
        pb.TellResponse(chunk=pb.TellChunk(text="part two")),
        pb.TellResponse(
            complete=pb.TellComplete(
                message_id="m1",
                response="part one, part two",
                status="completed",
                duration=12,
                session_id="s1",
            )
        ),
    ]


def fake_iris(received: list[Received]) -> grpc.GenericRpcHandler:
    """A stand-in for Iris that records each call and answers with an empty reply (or a short stream)."""
    handlers = {}
    for method in IRIS_SERVICE.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)

        def record(name: str, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
            received.append(Received(name, request, metadata))

        if method.server_streaming:

            async def stream(
                request: pb.TellRequest, context: grpc.aio.ServicerContext[Any, Any], name: str = method.name
            ) -> AsyncIterator[pb.TellResponse]:
                record(name, request, context)
                for event in _stream_events(request):
                    yield event

            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                stream, request_class.FromString, pb.TellResponse.SerializeToString
            )
        else:

            async def unary(
                request: Message,
                context: grpc.aio.ServicerContext[Any, Any],
                name: str = method.name,
                reply_class: type[Message] = reply_class,
            ) -> Message:
                record(name, request, context)
                return reply_class()

            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                unary, request_class.FromString, reply_class.SerializeToString
            )
    return grpc.method_handlers_generic_handler(IRIS_SERVICE.full_name, handlers)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, list[Received]]]:
    received: list[Received] = []
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((fake_iris(received),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", received
    finally:
        await server.stop(None)


def _expected(method_name: str, arguments: dict[str, Any]) -> Message:
    method = IRIS_SERVICE.methods_by_name[method_name]
    expected = message_factory.GetMessageClass(method.input_type)()
    values = dict(arguments)
    if "from_team" in method.input_type.fields_by_name:
        values.setdefault("fromTeam", "me")
    if "level" in values:
        values["level"] = [values["level"]]
    return json_format.ParseDict(values, expected)


@pytest.mark.parametrize("tool", list(CALLS))
async def test_each_tool_is_one_call_of_its_rpc_with_the_arguments(
    fake: tuple[str, list[Received]], tool: str
) -> None:
    target, received = fake
    arguments, rpc = CALLS[tool]
    async with grpc.aio.insecure_channel(target) as channel:
        async with adapter_client(channel, api_key="iris_sk_test_" + "k" * 40, from_team="me") as client:
            result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert [r.method for r in received] == [rpc]
    assert received[0].request == _expected(rpc, arguments)
    assert received[0].metadata["authorization"] == "Bearer iris_sk_test_" + "k" * 40
    if rpc != "Tell":
        # The reply as the transports' JSON (the fake answers an empty reply: every scalar is there, as 0/"").
        reply = message_factory.GetMessageClass(IRIS_SERVICE.methods_by_name[rpc].output_type)()
        assert result.structured_content == message_to_json(reply)
        assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]


async def test_a_streamed_tool_reports_progress_and_folds_the_stream_into_the_reply(
    fake: tuple[str, list[Received]],
) -> None:
    target, _ = fake
    progress = ProgressLog()
    async with (
        grpc.aio.insecure_channel(target) as channel,
        adapter_client(channel, api_key="", from_team="me") as c,
    ):
        result = await c.call_tool("ask_message", {"toTeam": "b", "message": "q"}, progress_callback=progress)
    assert progress.messages == ["b accepted the message", "part one, ", "part two", "done: completed"]
    assert [p for p, _ in progress.received] == [1, 2, 3, 4]
    assert result.structured_content == {
        "fromTeam": "me",
        "toTeam": "b",
        "message": "q",
        "response": "part one, part two",
        "status": "completed",
        "messageId": "m1",
        "sessionId": "s1",
        "duration": 12,
        "costUsd": 0.0,
        "error": "",
        "timestamp": 0,
    }


async def test_arguments_that_cannot_become_the_request_are_refused_before_any_call(
    fake: tuple[str, list[Received]],
) -> None:
    target, received = fake
    async with grpc.aio.insecure_channel(target) as channel, adapter_client(channel, api_key="") as client:
        unknown = await client.call_tool("team_wake", {"team": "b", "tema": "c"})
        wrong_type = await client.call_tool(
            "send_message", {"toTeam": "b", "message": "x", "timeout": "soon"}
        )
        no_such_tool = await client.call_tool("team_explode", {})
    assert received == []
    for result, reason, field in (
        (unknown, "ValidationError", "tema"),
        (wrong_type, "ValidationError", "timeout"),
        (no_such_tool, "NotFoundError", None),
    ):
        assert result.is_error
        body = result.structured_content
        assert isinstance(body, dict) and body["error"] == reason and body["message"]
        assert {"error", "message", "code", "statusCode", "timestamp", "details"} <= set(body)
        if field:
            assert body["details"] == {"field": field}
    assert "takes team, fromTeam" in unknown.structured_content["message"]
