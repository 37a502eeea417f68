"""The tracing interceptor: one server span per call of ``iris.v1.Iris``, continuing the caller's trace.

The caller's W3C ``traceparent`` / ``tracestate`` metadata (what the REST gateway and the MCP adapter send,
or any OpenTelemetry-instrumented client) is extracted with the global propagator, so the call's span is a
child of the caller's; the span is current for the whole call, so every interceptor inside and the domain
(a turn captures it when it is accepted) see it. Health and reflection are not traced: probes would drown
the calls.

It sits outermost (see ``server.py``), so a call refused by authentication or the rate limit has a span too,
with its status. Span status follows the OpenTelemetry conventions for gRPC servers: only codes that mean the
server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS) are errors; a
refused or invalid request is the caller's, recorded as ``rpc.grpc.status_code`` alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, StatusCode

__all__ = ["TracingInterceptor"]

if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]

_tracer = trace.get_tracer("iris_grpc")

_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _parent_of(context: grpc.aio.ServicerContext[Any, Any]) -> otel_context.Context:
    carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    return propagate.extract(carrier)


def _finish(span: Span, context: grpc.aio.ServicerContext[Any, Any], failed: BaseException | None) -> None:
    """Record the call's status code on the span; an error status only when the server failed."""
    code = context.code()
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.OK if failed is None else grpc.StatusCode.UNKNOWN
        if isinstance(failed, BaseException) and not isinstance(failed, Exception):
            code = grpc.StatusCode.CANCELLED  # the call was cancelled (the client went away)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_FAULTS:
        span.set_status(StatusCode.ERROR, code.name)
        if failed is not None and not isinstance(failed, grpc.aio.AbortError):
            span.set_attribute("error.type", type(failed).__qualname__)
    span.end()


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each call of ``service`` in a server span named ``iris.v1.Iris/Method``."""

    def __init__(self, service: str) -> None:
        self._prefix = f"/{service}/"

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """Return the method's handler wrapped in a span (other services' untouched)."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefix):
            return handler
        name = method[1:]
        attributes = {
            "rpc.system": "grpc",
            "rpc.service": self._prefix[1:-1],
            "rpc.method": method[len(self._prefix) :],
        }

        def start(context: grpc.aio.ServicerContext[Any, Any]) -> Span:
            return _tracer.start_span(name, _parent_of(context), kind=SpanKind.SERVER, attributes=attributes)

        if handler.unary_unary is not None:
            inner_unary: Any = handler.unary_unary  # typed for sync servers by the stubs; a coroutine here

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                span = start(context)
                token = otel_context.attach(trace.set_span_in_context(span))
                failed: BaseException | None = None
                try:
                    return await inner_unary(request, context)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    otel_context.detach(token)
                    _finish(span, context, failed)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream: Any = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                # The span is current only while the handler runs, never across a yield: grpc.aio may close
                # a dropped stream's generator from another task, where a context token cannot be reset.
                span = start(context)
                current = trace.set_span_in_context(span)
                responses = inner_stream(request, context)
                failed: BaseException | None = None
                try:
                    while True:
                        token = otel_context.attach(current)
                        try:
                            response = await anext(responses)
                        except StopAsyncIteration:
                            break
                        finally:
                            otel_context.detach(token)
                        yield response
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    await responses.aclose()
                    _finish(span, context, failed)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # Iris has no client-streaming RPCs
