"""Tracing of the gateway: each request's span, handed on to Iris in the gRPC call's metadata.

The span per HTTP request is FastAPI's own (native OpenTelemetry, FastAPI 0.165+): a server span named by
the route's template (``POST /api/teams/tell``, never the raw path), continuing the caller's W3C
``traceparent``, with ``http.route`` and the status, made whenever a tracer provider is installed. The
gateway only hands that span's context on (``with_trace_context``), so Iris's server span of the call is its
child: one REST call, one trace.

Only the OpenTelemetry API is used. Without an SDK FastAPI makes no span, and the caller's own context is
passed on unchanged, so Claude Code's own telemetry (which may be on when Iris's is not) still joins the
caller's trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace

__all__ = ["with_trace_context"]


def with_trace_context(
    metadata: tuple[tuple[str, str], ...], headers: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """Return ``metadata`` plus the trace context of this request (``traceparent``, ``tracestate``), if any.

    That is the current span's (FastAPI's span of the request), or, when there is none (no SDK), the one the
    caller sent in ``headers``.
    """
    current = trace.get_current_span().get_span_context().is_valid
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=None if current else propagate.extract(headers))
    return (*metadata, *carrier.items()) if carrier else metadata
