"""Tracing of the adapter: each tool call's gRPC call continues the tool call's trace.

The span per tool call is the MCP SDK's own (``tools/call <tool>``, a server span its ``Server`` opens for
every request, on by default since mcp 2.x, continuing a ``traceparent`` the client put in the request's
``_meta``). The adapter only hands that span's context on, in the gRPC metadata of the call it makes, so
Iris's server span is its child. Only the OpenTelemetry API is used; without an SDK this passes on a
context the client sent, or nothing.
"""

from __future__ import annotations

from opentelemetry import propagate

__all__ = ["with_trace_context"]


def with_trace_context(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Return ``metadata`` plus the current trace context (``traceparent``, ``tracestate``), if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (*metadata, *carrier.items()) if carrier else metadata
