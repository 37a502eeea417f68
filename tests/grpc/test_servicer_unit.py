"""The generated servicer, in process and without a port: grpc_testing serves it (see aio_on_grpc_testing)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc_testing  # type: ignore[import-untyped]
import pytest

from iris_client.contract import IRIS_SERVICE
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc as pb_grpc
from iris_core.access import Caller
from iris_core.audit import AuditLog
from iris_core.errors import (
    IrisError,
    OperationTimeoutError,
    ProcessPoolLimitError,
    TeamNotFoundError,
    ValidationError,
)
from iris_core.keys import KeyStore
from iris_core.service import Handler
from iris_grpc.interceptors import AuditInterceptor, AuthenticationInterceptor
from iris_grpc.method_permissions import method_permissions
from iris_grpc.servicer import build_servicer
from tests.grpc.aio_on_grpc_testing import AioServer, rich_status

SEND = IRIS_SERVICE.methods_by_name["SendMessage"]
TELL = IRIS_SERVICE.methods_by_name["Tell"]


@pytest.fixture
def private_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


async def _unexpected_call(request: Any, caller: Caller) -> Any:
    raise AssertionError("this test calls no other RPC")


def _finder(**handlers: Handler) -> Any:
    return lambda name: handlers.get(name, _unexpected_call)


def _serve(
    loop: asyncio.AbstractEventLoop, find: Any, interceptors: tuple[Any, ...] = ()
) -> grpc_testing.Server:
    server = AioServer(loop, interceptors).add(
        IRIS_SERVICE, pb_grpc.add_IrisServicer_to_server, build_servicer(find)
    )
    return server.testing_server(grpc_testing.strict_fake_time(1_700_000_000.0))


def _send(server: grpc_testing.Server, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    request = pb.SendMessageRequest(to_team="alpha", message="hi")
    return server.invoke_unary_unary(SEND, metadata, request, None).termination()


def test_every_rpc_of_the_contract_gets_a_method_of_the_built_servicer() -> None:
    asked: list[str] = []

    def find(name: str) -> Handler:
        asked.append(name)
        return _unexpected_call

    servicer = build_servicer(find)
    names = [m.name for m in IRIS_SERVICE.methods]
    assert asked == names
    for method in IRIS_SERVICE.methods:
        rpc = type(servicer).__dict__[method.name]
        check = inspect.isasyncgenfunction if method.server_streaming else inspect.iscoroutinefunction
        assert check(rpc), method.name


def test_an_rpc_without_a_handler_stops_the_build_with_a_lookup_error() -> None:
    handlers: dict[str, Handler] = {m.name: _unexpected_call for m in IRIS_SERVICE.methods}
    del handlers["TeamStatus"]
    with pytest.raises(LookupError, match="TeamStatus"):
        build_servicer(handlers.__getitem__)


def test_a_unary_handler_reply_is_returned_as_is(private_loop: asyncio.AbstractEventLoop) -> None:
    reply = pb.SendMessageResponse(from_team="api", to_team="alpha", message="hi", response="hello")
    seen: list[pb.SendMessageRequest] = []

    async def send_message(request: pb.SendMessageRequest, caller: Caller) -> pb.SendMessageResponse:
        seen.append(request)
        return reply

    response, _, code, details = _send(_serve(private_loop, _finder(SendMessage=send_message)))
    assert (code, details) == (grpc.StatusCode.OK, "")
    assert response is reply
    assert [r.to_team for r in seen] == ["alpha"]


def test_the_handler_gets_caller_none_when_no_interceptor_set_the_call(
    private_loop: asyncio.AbstractEventLoop,
) -> None:
    callers: list[Caller] = []

    async def send_message(request: Any, caller: Caller) -> pb.SendMessageResponse:
        callers.append(caller)
        return pb.SendMessageResponse()

    _, _, code, _ = _send(_serve(private_loop, _finder(SendMessage=send_message)))
    assert code is grpc.StatusCode.OK
    assert callers == [Caller(None)]


def test_the_handler_gets_the_key_the_interceptors_verified_as_its_caller(
    private_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    keys, audit = KeyStore(tmp_path / "keys.db"), AuditLog(tmp_path / "audit.db")
    private_loop.run_until_complete(keys.open())
    private_loop.run_until_complete(audit.open())
    plain, record = private_loop.run_until_complete(keys.create("ci-bot", ["team:tell"]))
    callers: list[Caller] = []

    async def send_message(request: Any, caller: Caller) -> pb.SendMessageResponse:
        callers.append(caller)
        return pb.SendMessageResponse()

    permissions = method_permissions()
    chain = (AuditInterceptor(permissions, audit), AuthenticationInterceptor(permissions, keys))
    try:
        server = _serve(private_loop, _finder(SendMessage=send_message), chain)
        _, _, code, _ = _send(server, (("x-api-key", plain),))
        private_loop.run_until_complete(chain[0].drain())
    finally:
        private_loop.run_until_complete(keys.aclose())
        private_loop.run_until_complete(audit.aclose())
    assert code is grpc.StatusCode.OK
    assert callers == [Caller(record)]


@pytest.mark.parametrize(
    ("error", "code", "reason", "metadata"),
    [
        (
            ValidationError("message must not be empty", details={"field": "x"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ValidationError",
            {"field": "x"},
        ),
        (
            TeamNotFoundError("No team 'alpha'", details={"team": "alpha"}),
            grpc.StatusCode.NOT_FOUND,
            "TeamNotFoundError",
            {"team": "alpha"},
        ),
        (
            ProcessPoolLimitError("All 4 process slots are busy", details={"max": 4}),
            grpc.StatusCode.UNAVAILABLE,
            "ProcessPoolLimitError",
            {"max": "4"},
        ),
        (
            OperationTimeoutError("The wait ran out"),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "TimeoutError",
            {},
        ),
    ],
    ids=["validation", "team-not-found", "pool-limit", "timeout"],
)
def test_a_domain_error_becomes_its_status_with_an_error_info_naming_it(
    private_loop: asyncio.AbstractEventLoop,
    error: IrisError,
    code: grpc.StatusCode,
    reason: str,
    metadata: dict[str, str],
) -> None:
    async def send_message(request: Any, caller: Caller) -> pb.SendMessageResponse:
        raise error

    response, trailing, got_code, details = _send(_serve(private_loop, _finder(SendMessage=send_message)))
    assert (got_code, details) == (code, error.message)
    assert response is None
    status, info = rich_status(trailing)
    assert (status.code, status.message) == (code.value[0], error.message)
    assert (info.reason, info.domain, dict(info.metadata)) == (reason, "iris.v1", metadata)


def test_an_unexpected_exception_becomes_internal_without_its_text(
    private_loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    async def send_message(request: Any, caller: Caller) -> pb.SendMessageResponse:
        raise KeyError("/srv/iris/secret-path")

    _, trailing, code, details = _send(_serve(private_loop, _finder(SendMessage=send_message)))
    assert (code, details) == (grpc.StatusCode.INTERNAL, "Internal error; see the server log")
    status, info = rich_status(trailing)
    assert (status.message, info.reason, dict(info.metadata)) == (details, "InternalError", {})
    assert all(b"secret-path" not in v for _, v in trailing if isinstance(v, bytes))
    assert "secret-path" not in "".join(str(v) for _, v in trailing)
    assert any(r.exc_info and "secret-path" in str(r.exc_info[1]) for r in caplog.records)


def _tell_events() -> list[pb.TellResponse]:
    return [
        pb.TellResponse(start=pb.TellStart(message_id="m1", team="alpha")),
        pb.TellResponse(chunk=pb.TellChunk(text="one ")),
        pb.TellResponse(chunk=pb.TellChunk(text="two")),
    ]


def test_a_streaming_handler_events_come_out_in_order(private_loop: asyncio.AbstractEventLoop) -> None:
    events = _tell_events()

    async def tell(request: Any, caller: Caller) -> AsyncIterator[pb.TellResponse]:
        async def stream() -> AsyncIterator[pb.TellResponse]:
            for event in events:
                yield event

        return stream()

    server = _serve(private_loop, _finder(Tell=tell))
    rpc = server.invoke_unary_stream(TELL, (), pb.TellRequest(to_team="alpha", message="hi"), None)
    received = [rpc.take_response() for _ in events]
    _, code, details = rpc.termination()
    assert received == events
    assert (code, details) == (grpc.StatusCode.OK, "")


def test_an_error_after_some_events_ends_the_stream_with_its_status(
    private_loop: asyncio.AbstractEventLoop,
) -> None:
    events = _tell_events()[:2]

    async def tell(request: Any, caller: Caller) -> AsyncIterator[pb.TellResponse]:
        async def stream() -> AsyncIterator[pb.TellResponse]:
            for event in events:
                yield event
            raise TeamNotFoundError("Team 'alpha' was removed", details={"team": "alpha"})

        return stream()

    server = _serve(private_loop, _finder(Tell=tell))
    rpc = server.invoke_unary_stream(TELL, (), pb.TellRequest(to_team="alpha", message="hi"), None)
    received = [rpc.take_response() for _ in events]
    trailing, code, details = rpc.termination()
    assert received == events
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, "Team 'alpha' was removed")
    _, info = rich_status(trailing)
    assert (info.reason, dict(info.metadata)) == ("TeamNotFoundError", {"team": "alpha"})
    with pytest.raises(ValueError, match="No more responses"):
        rpc.take_response()


def test_an_error_before_the_first_event_ends_the_stream_with_its_status_and_no_event(
    private_loop: asyncio.AbstractEventLoop,
) -> None:
    async def tell(request: Any, caller: Caller) -> AsyncIterator[pb.TellResponse]:
        raise ValidationError("message must not be empty", details={"field": "message"})

    server = _serve(private_loop, _finder(Tell=tell))
    rpc = server.invoke_unary_stream(TELL, (), pb.TellRequest(to_team="alpha"), None)
    trailing, code, _ = rpc.termination()
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert rich_status(trailing)[1].metadata["field"] == "message"
    with pytest.raises(ValueError, match="No more responses"):
        rpc.take_response()
