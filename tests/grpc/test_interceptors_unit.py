"""The interceptors, in process and without a port: the real chain, key store and audit log (on tmp_path),
a rate limiter on a fake clock, served by grpc_testing (see aio_on_grpc_testing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
import grpc_testing  # type: ignore[import-untyped]
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from iris_client.contract import IRIS_SERVICE
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc as pb_grpc
from iris_core.access import Caller
from iris_core.audit import AuditLog, AuditRow
from iris_core.config import ApiConfig, RateLimitConfig
from iris_core.errors import TeamNotFoundError
from iris_core.keys import KeyStore
from iris_core.metrics import IrisMetrics
from iris_core.ratelimit import RateLimiter
from iris_core.service import Handler
from iris_grpc.interceptors import (
    AccessLogInterceptor,
    AuditInterceptor,
    AuthenticationInterceptor,
    AuthorizationInterceptor,
    MetricsInterceptor,
    RateLimitInterceptor,
    build_interceptors,
)
from iris_grpc.method_permissions import method_permissions
from iris_grpc.servicer import build_servicer
from tests.grpc.aio_on_grpc_testing import PEER, AioServer, Metadata, metadata_value, rich_status

T = TypeVar("T")

PERMISSIONS = method_permissions()
METHOD = IRIS_SERVICE.methods_by_name
HEALTH = cast(ServiceDescriptor, health_pb2.DESCRIPTOR.services_by_name["Health"])
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


class RecordingAuditLog(AuditLog):
    """The real audit log, also noting each row on the server's timeline as it is written."""

    timeline: list[str]

    async def record(self, event: str, *, outcome: str, **fields: str) -> None:
        self.timeline.append(f"audit {event} {outcome}")
        await super().record(event, outcome=outcome, **fields)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    keys: KeyStore
    audit: RecordingAuditLog
    clock: FakeClock
    aio: AioServer
    audit_interceptor: AuditInterceptor
    server: grpc_testing.Server
    callers: list[tuple[str, Caller]] = field(default_factory=list)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def key(self, name: str, *permissions: str, rate_limit: int = 0) -> str:
        return self.run(self.keys.create(name, list(permissions), rate_limit=rate_limit))[0]

    def send(self, metadata: Metadata = ()) -> tuple[Any, Metadata, grpc.StatusCode, str]:
        request = pb.SendMessageRequest(to_team="alpha", message="hi")
        rpc = self.server.invoke_unary_unary(METHOD["SendMessage"], metadata, request, None)
        result: tuple[Any, Metadata, grpc.StatusCode, str] = rpc.termination()
        return result

    def rows(self) -> list[AuditRow]:
        """The audit log once the rows written after the replies are in."""
        self.run(self.audit_interceptor.drain())
        return self.run(self.audit.tail())


def _handlers(callers: list[tuple[str, Caller]]) -> dict[str, Handler]:
    async def send_message(request: Any, caller: Caller) -> pb.SendMessageResponse:
        callers.append(("SendMessage", caller))
        return pb.SendMessageResponse(response="ok")

    async def get_status(request: Any, caller: Caller) -> pb.GetStatusResponse:
        callers.append(("GetStatus", caller))
        return pb.GetStatusResponse()

    async def session_cancel(request: Any, caller: Caller) -> pb.SessionCancelResponse:
        callers.append(("SessionCancel", caller))
        raise TeamNotFoundError(f"No team {request.team!r}", details={"team": request.team})

    async def tell(request: Any, caller: Caller) -> AsyncIterator[pb.TellResponse]:
        callers.append(("Tell", caller))

        async def events() -> AsyncIterator[pb.TellResponse]:
            yield pb.TellResponse(start=pb.TellStart(team="alpha"))
            yield pb.TellResponse(chunk=pb.TellChunk(text="hello"))

        return events()

    return {
        "SendMessage": send_message,
        "GetStatus": get_status,
        "SessionCancel": session_cancel,
        "Tell": tell,
    }


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    keys, audit = KeyStore(tmp_path / "keys.db"), RecordingAuditLog(tmp_path / "audit.db")
    loop.run_until_complete(keys.open())
    loop.run_until_complete(audit.open())
    clock = FakeClock()
    audit_interceptor = AuditInterceptor(PERMISSIONS, audit)
    chain = [
        audit_interceptor,
        AuthenticationInterceptor(PERMISSIONS, keys),
        AuthorizationInterceptor(PERMISSIONS),
        RateLimitInterceptor(PERMISSIONS, RateLimiter(60_000, 100, clock=clock)),
    ]
    callers: list[tuple[str, Caller]] = []
    handlers = _handlers(callers)

    async def unexpected(request: Any, caller: Caller) -> Any:
        raise AssertionError("this test calls no other RPC")

    health_servicer = health.aio.HealthServicer()
    loop.run_until_complete(health_servicer.set("", health_pb2.HealthCheckResponse.SERVING))
    aio = AioServer(loop, chain)
    aio.add(
        IRIS_SERVICE,
        pb_grpc.add_IrisServicer_to_server,
        build_servicer(lambda n: handlers.get(n, unexpected)),
    )
    aio.add(HEALTH, health_pb2_grpc.add_HealthServicer_to_server, health_servicer)
    audit.timeline = aio.timeline
    server = aio.testing_server(grpc_testing.strict_fake_time(1_700_000_000.0))
    try:
        yield Rig(loop, keys, audit, clock, aio, audit_interceptor, server, callers)
    finally:
        loop.run_until_complete(audit_interceptor.drain())
        loop.run_until_complete(keys.aclose())
        loop.run_until_complete(audit.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_build_interceptors_puts_audit_first_then_metrics_access_log_and_the_refusing_ones(
    tmp_path: Path,
) -> None:
    keys, audit = KeyStore(tmp_path / "keys.db"), AuditLog(tmp_path / "audit.db")
    chain = build_interceptors(PERMISSIONS, ApiConfig(), keys, audit, IrisMetrics())
    assert [type(i) for i in chain] == [
        AuditInterceptor,
        MetricsInterceptor,
        AccessLogInterceptor,
        AuthenticationInterceptor,
        AuthorizationInterceptor,
        RateLimitInterceptor,
    ]
    open_api = ApiConfig(require_auth=False, rate_limit=RateLimitConfig(enabled=False))
    assert [type(i) for i in build_interceptors(PERMISSIONS, open_api, keys, audit)] == [
        AuditInterceptor,
        AccessLogInterceptor,
    ]


def test_a_refusal_by_authentication_is_audited_before_its_status_goes_out(rig: Rig) -> None:
    _, _, code, _ = rig.send()
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert rig.aio.timeline == ["audit auth_failure UNAUTHENTICATED", "status UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("metadata", "cause", "message"),
    [
        ((), "missing", "Missing API key"),
        ((("x-api-key", "not-a-key"),), "malformed", "Malformed API key (expected"),
        ((("authorization", "Bearer " + "a" * 300),), "malformed", "Malformed API key (too long)"),
        ((("x-api-key", "iris_sk_live_" + "A" * 40),), "unknown", "Unknown API key"),
    ],
    ids=["missing", "malformed", "too-long", "unknown"],
)
def test_a_call_without_a_usable_key_is_unauthenticated_with_its_cause_and_audited(
    rig: Rig, metadata: Metadata, cause: str, message: str
) -> None:
    _, trailing, code, details = rig.send(metadata)
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith(message)
    _, info = rich_status(trailing)
    assert (info.reason, dict(info.metadata)) == ("UnauthorizedError", {"cause": cause})
    assert metadata_value(trailing, "x-ratelimit-limit") is None  # refused before the rate limit
    assert rig.callers == []
    [row] = rig.rows()
    assert (row.event, row.outcome, row.method, row.team, row.peer, row.detail) == (
        "auth_failure",
        "UNAUTHENTICATED",
        "SendMessage",
        "alpha",
        PEER,
        cause,
    )
    assert (row.key_id, row.key_name) == ("", "")


def test_a_revoked_key_is_unauthenticated_with_cause_revoked(rig: Rig) -> None:
    plain = rig.key("old-bot", "team:tell")
    rig.run(rig.keys.revoke("old-bot"))
    _, trailing, code, _ = rig.send((("x-api-key", plain),))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert rich_status(trailing)[1].metadata["cause"] == "revoked"
    assert rig.callers == []


@pytest.mark.parametrize(
    "header", [("authorization", "Bearer {}"), ("x-api-key", "{}")], ids=["bearer", "x-api-key"]
)
def test_a_valid_key_in_either_header_reaches_the_handler_as_its_caller(
    rig: Rig, header: tuple[str, str]
) -> None:
    plain = rig.key("ci-bot", "team:tell")
    response, _, code, _ = rig.send(((header[0], header[1].format(plain)),))
    assert (code, response.response) == (grpc.StatusCode.OK, "ok")
    [(rpc, caller)] = rig.callers
    assert rpc == "SendMessage" and caller.key is not None and caller.key.name == "ci-bot"


def test_a_key_lacking_the_permission_is_denied_naming_it_and_audited(rig: Rig) -> None:
    plain = rig.key("reader", "status:read")
    _, trailing, code, details = rig.send((("x-api-key", plain),))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert details == "API key 'reader' lacks the permission 'team:tell' that SendMessage needs"
    _, info = rich_status(trailing)
    assert (info.reason, dict(info.metadata)) == ("ForbiddenError", {"permission": "team:tell"})
    assert rig.callers == []
    assert rig.aio.timeline == ["audit auth_failure PERMISSION_DENIED", "status PERMISSION_DENIED"]
    [row] = rig.rows()
    assert (row.event, row.outcome, row.key_name, row.detail) == (
        "auth_failure",
        "PERMISSION_DENIED",
        "reader",
        "lacks team:tell",
    )


def test_an_admin_key_may_call_a_method_whatever_permission_it_needs(rig: Rig) -> None:
    plain = rig.key("root", "admin")
    _, _, code, _ = rig.send((("x-api-key", plain),))
    assert code is grpc.StatusCode.OK
    assert [rpc for rpc, _ in rig.callers] == ["SendMessage"]


def test_a_state_changing_call_is_audited_with_its_outcome_and_a_read_is_not(rig: Rig) -> None:
    plain = rig.key("ci-bot", "team:tell", "team:cancel", "status:read")
    metadata = (("x-api-key", plain),)
    assert rig.send(metadata)[2] is grpc.StatusCode.OK
    status_rpc = rig.server.invoke_unary_unary(METHOD["GetStatus"], metadata, pb.GetStatusRequest(), None)
    assert status_rpc.termination()[2] is grpc.StatusCode.OK
    cancel = pb.SessionCancelRequest(team="ghost")
    cancel_rpc = rig.server.invoke_unary_unary(METHOD["SessionCancel"], metadata, cancel, None)
    assert cancel_rpc.termination()[2] is grpc.StatusCode.NOT_FOUND
    rows = rig.rows()
    assert [(r.event, r.method, r.team, r.outcome, r.key_name, r.peer) for r in rows] == [
        ("call", "SendMessage", "alpha", "OK", "ci-bot", PEER),
        ("call", "SessionCancel", "ghost", "NOT_FOUND", "ci-bot", PEER),
    ]
    assert [rpc for rpc, _ in rig.callers] == ["SendMessage", "GetStatus", "SessionCancel"]


def test_a_unary_reply_carries_the_rate_limit_in_its_trailing_metadata(rig: Rig) -> None:
    plain = rig.key("ci-bot", "team:tell", rate_limit=2)
    rpc = rig.server.invoke_unary_unary(
        METHOD["SendMessage"], (("x-api-key", plain),), pb.SendMessageRequest(to_team="alpha"), None
    )
    _, trailing, code, _ = rpc.termination()
    assert code is grpc.StatusCode.OK
    assert (
        metadata_value(trailing, "x-ratelimit-limit"),
        metadata_value(trailing, "x-ratelimit-remaining"),
    ) == (
        "2",
        "1",
    )
    assert str(metadata_value(trailing, "x-ratelimit-reset")).isdigit()
    assert all(metadata_value(rpc.initial_metadata(), name) is None for name in RATE_HEADERS)


def test_an_empty_bucket_is_resource_exhausted_with_when_to_retry_until_the_clock_refills_it(
    rig: Rig,
) -> None:
    metadata = (("x-api-key", rig.key("ci-bot", "team:tell", rate_limit=2)),)
    remaining = [metadata_value(rig.send(metadata)[1], "x-ratelimit-remaining") for _ in range(2)]
    assert remaining == ["1", "0"]
    _, trailing, code, details = rig.send(metadata)
    assert (code, details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Rate limit of 2 requests exceeded; retry in 30000 ms",
    )
    _, info = rich_status(trailing)
    assert (info.reason, dict(info.metadata)) == (
        "TooManyRequestsError",
        {"retryAfterMs": "30000", "limit": "2"},
    )
    assert metadata_value(trailing, "x-ratelimit-remaining") == "0"  # kept beside the status details
    assert len(rig.callers) == 2
    rig.clock.now += 29.9
    assert rig.send(metadata)[2] is grpc.StatusCode.RESOURCE_EXHAUSTED
    rig.clock.now += 0.2
    assert rig.send(metadata)[2] is grpc.StatusCode.OK
    refused = [r for r in rig.rows() if r.outcome != "OK"]
    assert [(r.event, r.outcome, r.detail) for r in refused] == [
        ("call", "RESOURCE_EXHAUSTED", "rate limited")
    ] * 2


def test_a_stream_carries_the_rate_limit_in_its_initial_metadata(rig: Rig) -> None:
    plain = rig.key("ci-bot", "team:tell", rate_limit=5)
    request = pb.TellRequest(to_team="alpha", message="hi")
    rpc = rig.server.invoke_unary_stream(METHOD["Tell"], (("x-api-key", plain),), request, None)
    initial = rpc.initial_metadata()
    events = [rpc.take_response(), rpc.take_response()]
    trailing, code, _ = rpc.termination()
    assert code is grpc.StatusCode.OK
    assert [e.WhichOneof("event") for e in events] == ["start", "chunk"]
    assert (
        metadata_value(initial, "x-ratelimit-limit"),
        metadata_value(initial, "x-ratelimit-remaining"),
    ) == (
        "5",
        "4",
    )
    assert all(metadata_value(trailing, name) is None for name in RATE_HEADERS)
    [(_, caller)] = rig.callers
    assert caller.key is not None and caller.key.name == "ci-bot"


def test_health_checks_pass_without_a_key_untouched_by_the_interceptors(rig: Rig) -> None:
    for _ in range(3):
        rpc = rig.server.invoke_unary_unary(
            HEALTH.methods_by_name["Check"], (), health_pb2.HealthCheckRequest(), None
        )
        response, trailing, code, _ = rpc.termination()
        assert (code, response.status) == (grpc.StatusCode.OK, health_pb2.HealthCheckResponse.SERVING)
        assert all(metadata_value(trailing, name) is None for name in RATE_HEADERS)
    assert rig.rows() == []
    assert rig.aio.timeline == []


@pytest.mark.parametrize(
    "interceptor",
    [
        AuditInterceptor(PERMISSIONS, AuditLog(Path("unused.db"))),
        AuthenticationInterceptor(PERMISSIONS, KeyStore(Path("unused.db"))),
        AuthorizationInterceptor(PERMISSIONS),
        RateLimitInterceptor(PERMISSIONS, RateLimiter(60_000, 1)),
    ],
    ids=["audit", "authentication", "authorization", "rate-limit"],
)
@pytest.mark.parametrize(
    "method",
    ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"],
)
def test_each_interceptor_hands_back_a_health_or_reflection_handler_unchanged(
    interceptor: grpc.aio.ServerInterceptor, method: str
) -> None:
    handler: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
        lambda request, context: request
    )

    class Details(grpc.HandlerCallDetails):
        def __init__(self) -> None:
            self.method = method
            self.invocation_metadata = ()

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return handler

    assert asyncio.run(interceptor.intercept_service(continuation, Details())) is handler
