"""Server interceptors: each does one thing; their order is fixed by ``build_interceptors`` (and tested).

    Audit  →  Metrics  →  AccessLog  →  Authentication  →  Authorization  →  RateLimit  →  servicer

- **Audit** (outermost) writes a row for every refused credential (before the refusal goes out) and every
  state-changing call (queued when it ends, written with others soon after), with the outcome: it must see the
  refusals the inner ones make.
- **Metrics** counts the call by RPC and status code and observes its duration (``iris_grpc_calls_total``,
  ``iris_grpc_call_duration_seconds``). Inside Audit, whose ``CallInfo`` it needs no more than the method's
  name, and outside the refusing ones, so a refused call is counted with its code. Absent when
  ``settings.metricsEnabled`` is false.
- **AccessLog** writes one ``iris.access`` line per call when it ends (method, key name, calling and target
  team, status code, duration, the W3C trace id of a ``traceparent`` header): outside the refusing ones for
  the same reason, so a bad key still gets its line (UNAUTHENTICATED), with the key name learnt inside.
- **Authentication** turns ``authorization: Bearer …`` / ``x-api-key`` into a verified key, or
  UNAUTHENTICATED.
- **Authorization** checks the key holds the permission the contract declares for the method, or
  PERMISSION_DENIED naming it.
- **RateLimit** takes a token from the key's bucket, reports X-RateLimit-* as metadata (trailing for a unary
  reply, initial for a stream), and refuses with RESOURCE_EXHAUSTED (and when to retry) on an empty bucket.

Only methods of ``iris.v1.Iris`` pass through them; health and reflection need no key. Interceptors share one
``CallInfo`` per call through a context variable, so the servicer can see the caller too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from iris_core.access import STATE_CHANGING, grants
from iris_core.audit import AuditLog
from iris_core.config import ApiConfig
from iris_core.errors import ForbiddenError, IrisError, TooManyRequestsError, UnauthorizedError
from iris_core.keys import ApiKey, KeyStore
from iris_core.metrics import IrisMetrics
from iris_core.ratelimit import RateLimiter

from .status import abort_with, code_of

__all__ = ["CALL", "CallInfo", "OncePerMethod", "build_interceptors"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("iris.access")
"""One line per call of iris.v1.Iris (``AccessLogInterceptor``)."""

_MAX_KEY_HEADER = 256


@dataclass(slots=True)
class CallInfo:
    """What the interceptors learn about one call."""

    method: str
    """Full method path, e.g. /iris.v1.Iris/SendMessage."""
    permission: str
    """The permission the method needs."""
    peer: str
    """The caller's address."""
    key: ApiKey | None = None
    """The verified key (None when authentication is off or failed)."""
    streaming: bool = False
    """A server-streaming call (its metadata must go out before its first message)."""
    refusal: str = ""
    """Why the call was refused, for the audit log."""
    audited: bool = False
    """The row for this call is written (refusals are written before the status goes out)."""
    before_refusal: Callable[[IrisError], Awaitable[None]] | None = None
    """Set by the Audit interceptor: writes the row of a refusal before the caller can see the status."""

    async def refuse(self, context: grpc.aio.ServicerContext[Any, Any], exc: IrisError, why: str) -> None:
        """End the call with ``exc``, audited first."""
        self.refusal = why
        if self.before_refusal is not None:
            await self.before_refusal(exc)
        await abort_with(context, exc)


CALL: ContextVar[CallInfo | None] = ContextVar("iris_call", default=None)
"""The current call's info, set by the outermost interceptor for the length of the call."""

Around = Callable[
    [Any, grpc.aio.ServicerContext[Any, Any], CallInfo], contextlib.AbstractAsyncContextManager[None]
]


if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


def _wrap(handler: Handler, around: Around, info_of: Callable[[], CallInfo]) -> Handler:
    """Return ``handler`` with ``around`` entered for the whole call (unary and server-streaming)."""
    if handler.unary_unary is not None:
        inner_unary: Any = handler.unary_unary  # typed for sync servers by the stubs; it is a coroutine here

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with around(request, context, info_of()):
                return await inner_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        inner_stream: Any = handler.unary_stream

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with around(request, context, info_of()):
                async for response in inner_stream(request, context):
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    return handler  # Iris has no client-streaming RPCs


def _current() -> CallInfo:
    info = CALL.get()
    assert info is not None, "the Audit interceptor must run first"
    return info


class _IrisInterceptor(grpc.aio.ServerInterceptor):
    """Base: applies ``around`` to methods of the Iris service only."""

    def __init__(self, permissions: Mapping[str, str]) -> None:
        self._permissions = permissions

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method not in self._permissions:
            return handler
        return _wrap(handler, self.around, _current)

    def around(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], info: CallInfo
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Enter for the length of one call."""
        raise NotImplementedError


class AuditInterceptor(_IrisInterceptor):
    """Outermost: creates the call's ``CallInfo`` and writes the audit row when the call ends."""

    def __init__(self, permissions: Mapping[str, str], audit: AuditLog) -> None:
        super().__init__(permissions)
        self._audit = audit

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method not in self._permissions:
            return handler
        permission = self._permissions[method]
        streaming = handler.unary_stream is not None
        return _wrap(handler, self.around, lambda: CallInfo(method, permission, "", streaming=streaming))

    @contextlib.asynccontextmanager
    async def around(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], info: CallInfo
    ) -> AsyncIterator[None]:
        info.peer = context.peer() or ""

        async def before_refusal(exc: IrisError) -> None:
            await self._write(request, info, code_of(exc).name)

        info.before_refusal = before_refusal
        token = CALL.set(info)
        outcome = "OK"
        try:
            yield
        except BaseException:
            code = context.code()
            outcome = code.name if isinstance(code, grpc.StatusCode) else "CANCELLED"
            raise
        finally:
            if not info.audited:  # after the reply: queued, written with its neighbours off the caller's wait
                self._note(request, info, outcome)
            # grpc.aio may leave a dropped stream's generator to the event loop, which closes it in a task
            # of its own: the token then belongs to another context, and the call's context dies anyway.
            with contextlib.suppress(ValueError):
                CALL.reset(token)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Write (bounded) the audit rows still queued; call when the server has stopped."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._audit.flush()
        except Exception as exc:  # noqa: BLE001 - a failing audit write is logged; the calls already happened
            logger.error("could not write the queued audit rows: %r", exc)

    def _row(self, request: Any, info: CallInfo, outcome: str) -> dict[str, str] | None:
        """Return the audit row of a call, or None for one that needs none (allowed, changing nothing)."""
        info.audited = True
        refused = outcome in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        if not refused and info.permission not in STATE_CHANGING:
            return None
        team = getattr(request, "to_team", "") or getattr(request, "team", "")
        return {
            "event": "auth_failure" if refused else "call",
            "outcome": outcome,
            "key_id": info.key.id if info.key else "",
            "key_name": info.key.name if info.key else "",
            "method": info.method.rsplit("/", 1)[-1],
            "team": team if isinstance(team, str) else "",
            "peer": info.peer,
            "detail": info.refusal,
        }

    def _note(self, request: Any, info: CallInfo, outcome: str) -> None:
        row = self._row(request, info, outcome)
        if row is not None:
            self._audit.note(**row)

    async def _write(self, request: Any, info: CallInfo, outcome: str) -> None:
        row = self._row(request, info, outcome)
        if row is None:
            return
        try:
            await self._audit.record(**row)
        except Exception as exc:  # noqa: BLE001 - a failing audit write is logged; the call already happened
            logger.error("could not write the audit row for %s: %r", info.method, exc)


def _code_name(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """Return the status code a call that raised ends with (CANCELLED when the caller went away)."""
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "CANCELLED"


class _OutcomeInterceptor(_IrisInterceptor):
    """Base of the interceptors that look at a call once it has ended: its status code and its duration."""

    def __init__(self, permissions: Mapping[str, str]) -> None:
        super().__init__(permissions)
        self._names = {method: method.rsplit("/", 1)[-1] for method in permissions}
        """The RPC's name (``SendMessage``) of each full method name."""

    @contextlib.asynccontextmanager
    async def around(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], info: CallInfo
    ) -> AsyncIterator[None]:
        started = time.perf_counter()
        code = "OK"
        try:
            yield
        except BaseException:
            code = _code_name(context)
            raise
        finally:
            self.ended(request, context, info, code, time.perf_counter() - started)

    def ended(
        self,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        info: CallInfo,
        code: str,
        seconds: float,
    ) -> None:
        """Take note of a call that ended with ``code`` after ``seconds``."""
        raise NotImplementedError


class MetricsInterceptor(_OutcomeInterceptor):
    """Counts each call by RPC and status code, and observes its duration."""

    def __init__(self, permissions: Mapping[str, str], metrics: IrisMetrics) -> None:
        super().__init__(permissions)
        self._metrics = metrics

    def ended(
        self,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        info: CallInfo,
        code: str,
        seconds: float,
    ) -> None:
        """Count the call and observe its duration."""
        self._metrics.call_ended(self._names[info.method], code, seconds)


_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE, _ZERO_PARENT = "0" * 32, "0" * 16


def trace_id_of(metadata: Any) -> str:
    """Return the trace id of a valid W3C ``traceparent`` header in ``metadata``, else ""."""
    for name, value in metadata or ():
        if name != "traceparent" or not isinstance(value, str):
            continue
        match = _TRACEPARENT.match(value.strip())
        if match is None or match[1] == "ff" or (match[1] == "00" and match[5]):
            return ""
        return match[2] if match[2] != _ZERO_TRACE and match[3] != _ZERO_PARENT else ""
    return ""


def _team_field(request: Any, name: str) -> str:
    value = getattr(request, name, "")
    return value if isinstance(value, str) else ""


class AccessLogInterceptor(_OutcomeInterceptor):
    """Writes one ``iris.access`` line (INFO) per call when it ends, with its fields as ``extra``."""

    def ended(
        self,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        info: CallInfo,
        code: str,
        seconds: float,
    ) -> None:
        """Write the call's access line, just after the reply has been handed to the transport.

        The line is built now (its duration ends here) and written on the loop's next turn: formatting it
        and writing it to the log's stream is no part of the caller's wait.
        """
        if access_logger.isEnabledFor(logging.INFO):
            asyncio.get_running_loop().call_soon(self._log, request, context, info, code, seconds * 1000)

    def _log(
        self,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        info: CallInfo,
        code: str,
        duration_ms: float,
    ) -> None:
        key = info.key.name if info.key is not None else ""
        fields: dict[str, object] = {
            "method": self._names[info.method],
            "key": key,
            "from_team": _team_field(request, "from_team") or key,
            "to_team": _team_field(request, "to_team") or _team_field(request, "team"),
            "code": code,
            "duration_ms": round(duration_ms, 3),
        }
        trace_id = trace_id_of(context.invocation_metadata())
        if trace_id:
            fields["trace_id"] = trace_id
        access_logger.info("%s %s %.1f ms", fields["method"], code, duration_ms, extra=fields)


def _presented_key(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for name, value in context.invocation_metadata() or ():
        text = value if isinstance(value, str) else ""
        if name == "authorization" and text[:7].lower() == "bearer ":
            return text[7:].strip()
        if name == "x-api-key":
            return text.strip()
    return ""


class AuthenticationInterceptor(_IrisInterceptor):
    """Verifies the presented key (by hash) and puts it in the call's info."""

    def __init__(self, permissions: Mapping[str, str], keys: KeyStore) -> None:
        super().__init__(permissions)
        self._keys = keys

    @contextlib.asynccontextmanager
    async def around(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], info: CallInfo
    ) -> AsyncIterator[None]:
        presented = _presented_key(context)
        try:
            if not presented:
                raise UnauthorizedError(
                    "Missing API key: send 'authorization: Bearer <key>' or 'x-api-key: <key>'",
                    details={"cause": "missing"},
                )
            if len(presented) > _MAX_KEY_HEADER:
                raise UnauthorizedError("Malformed API key (too long)", details={"cause": "malformed"})
            info.key = await self._keys.verify(presented)
        except IrisError as exc:
            await info.refuse(context, exc, str(exc.details.get("cause", exc.reason)))
        yield


class AuthorizationInterceptor(_IrisInterceptor):
    """Refuses a key that lacks the method's permission."""

    @contextlib.asynccontextmanager
    async def around(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], info: CallInfo
    ) -> AsyncIterator[None]:
        if info.key is not None and not grants(info.key.permissions, info.permission):
            denied = ForbiddenError(
                f"API key {info.key.name!r} lacks the permission {info.permission!r} that "
                f"{info.method.rsplit('/', 1)[-1]} needs",
                details={"permission": info.permission},
            )
            await info.refuse(context, denied, f"lacks {info.permission}")
        yield


class RateLimitInterceptor(_IrisInterceptor):
    """Takes one request from the caller's bucket and reports the bucket as X-RateLimit-* metadata."""

    def __init__(
        self, permissions: Mapping[str, str], limiter: RateLimiter, metrics: IrisMetrics | None = None
    ) -> None:
        super().__init__(permissions)
        self._limiter = limiter
        self._metrics = metrics

    @contextlib.asynccontextmanager
    async def around(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any], info: CallInfo
    ) -> AsyncIterator[None]:
        bucket = info.key.id if info.key is not None else f"peer:{info.peer.rsplit(':', 1)[0]}"
        decision = self._limiter.take(bucket, info.key.rate_limit if info.key is not None else 0)
        metadata = (
            ("x-ratelimit-limit", str(decision.limit)),
            ("x-ratelimit-remaining", str(decision.remaining)),
            ("x-ratelimit-reset", str(decision.reset_at_s)),
        )
        if info.streaming:  # a stream's caller needs them before the first event
            await context.send_initial_metadata(metadata)
        else:  # a unary reply carries them in its trailers, in the same write as the reply
            context.set_trailing_metadata(metadata)
        if not decision.allowed:
            retry_ms = max(1, round(decision.retry_after_s * 1000))
            limited = TooManyRequestsError(
                f"Rate limit of {decision.limit} requests exceeded; retry in {retry_ms} ms",
                details={"retryAfterMs": retry_ms, "limit": decision.limit},
            )
            if self._metrics is not None:
                self._metrics.rate_limited("key")
            await info.refuse(context, limited, "rate limited")
        yield


class OncePerMethod(grpc.aio.ServerInterceptor):
    """Runs a chain of interceptors' ``intercept_service`` once per method and reuses the handler it built.

    Every interceptor here wraps the method's handler in the same way for every call (what differs per call,
    the ``CallInfo``, the span, is made inside the wrapper), so building the wrapped handler again for each
    call, seven awaits and seven handler objects, is work that can be done once. Only found methods are
    kept: an unknown method name (any client may send one) is not remembered.
    """

    def __init__(self, chain: Sequence[grpc.aio.ServerInterceptor]) -> None:
        self._chain = tuple(chain)
        self._handlers: dict[str, Handler] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """Return the method's handler as the chain wraps it (built at its first call)."""
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is not None:
            return handler

        async def through(index: int, details: grpc.HandlerCallDetails) -> Handler | None:
            if index == len(self._chain):
                return await continuation(details)
            return await self._chain[index].intercept_service(lambda d: through(index + 1, d), details)

        handler = await through(0, handler_call_details)
        if handler is not None:
            self._handlers[method] = handler
        return handler


def build_interceptors(
    permissions: Mapping[str, str],
    api: ApiConfig,
    keys: KeyStore,
    audit: AuditLog,
    metrics: IrisMetrics | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """Return the interceptors in their one valid order (outermost first; the first is the Audit one).

    Without ``metrics`` (``settings.metricsEnabled`` false) there is no Metrics interceptor.
    """
    chain: list[grpc.aio.ServerInterceptor] = [AuditInterceptor(permissions, audit)]
    if metrics is not None:
        chain.append(MetricsInterceptor(permissions, metrics))
    chain.append(AccessLogInterceptor(permissions))
    if api.require_auth:
        chain += [AuthenticationInterceptor(permissions, keys), AuthorizationInterceptor(permissions)]
    if api.rate_limit.enabled:
        limiter = RateLimiter(api.rate_limit.window_ms, api.rate_limit.max_requests)
        chain.append(RateLimitInterceptor(permissions, limiter, metrics))
    return chain
