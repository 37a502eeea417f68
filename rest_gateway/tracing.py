"""Tracing of the gateway: one server span per HTTP request, and its context handed on to gRPC.

The span continues the caller's W3C ``traceparent`` (extracted with the global propagator) and is named by
the route's template (``POST /api/teams/tell``), never the raw path, which would make one name per message
id. The template is only known once Starlette has routed the request, so the span is renamed when the app
returns. The call's gRPC metadata then carries this span's context (``with_trace_context``), so Iris's
server span is its child: one REST call, one trace.

Only the OpenTelemetry API is used: without an SDK configured the span is a no-op, and the caller's own
``traceparent`` is passed on unchanged.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TracingMiddleware", "with_trace_context"]

_tracer = trace.get_tracer("rest_gateway")


def with_trace_context(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Return ``metadata`` plus the current trace context (``traceparent``, ``tracestate``), if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (*metadata, *carrier.items()) if carrier else metadata


class TracingMiddleware:
    """A server span around each HTTP request (a pure ASGI middleware: streams pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request inside its span; record the route, the status and a failure."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        method = str(scope["method"])
        with _tracer.start_as_current_span(
            method,
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": str(scope["path"])},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            status = 0

            async def send_noting_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self._app(scope, receive, send_noting_status)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(StatusCode.ERROR)
                raise
            finally:
                template = getattr(scope.get("route"), "path", None)
                if isinstance(template, str):
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                if status:
                    span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
