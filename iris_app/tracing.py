"""Turning tracing on: the OpenTelemetry SDK, set up from the standard ``OTEL_*`` variables.

The libraries (``iris_core``, ``iris_grpc``, ``rest_gateway``, ``mcp_adapter``) only use the OpenTelemetry
API, which does nothing until an SDK provider is installed; this module, in the composition root, is the one
place that installs one, for ``iris serve`` and ``iris gateway``. Tracing is off by default, and on when
the SDK is installed (``pip install iris[otel]``) and the environment asks for traces:

- ``OTEL_TRACES_EXPORTER`` names exporters (``otlp``, ``console``; ``none`` is off), or an OTLP endpoint is
  set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), meaning ``otlp``;
- ``OTEL_SDK_DISABLED=true`` switches it off whatever else is set.

Everything else is the SDK's own reading of the standard variables: the OTLP exporter's endpoint, headers,
protocol, timeout and compression, the sampler (``OTEL_TRACES_SAMPLER``), the batch processor's limits
(``OTEL_BSP_*``) and the resource (``OTEL_SERVICE_NAME``, default ``iris``; ``OTEL_RESOURCE_ATTRIBUTES``).
Unlike the standard's default (``otlp`` to localhost), nothing is exported unless asked: an Iris that is
not told where a collector is must not try to send to one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["installed_tracing", "tracer_provider_from_env"]

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "iris"


def _requested_exporters(environ: Mapping[str, str]) -> list[str]:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [name for name in names if name and name != "none"]
    if names or environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return names
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if any(environ.get(name) for name in endpoints) else []


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter | None:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        logger.warning("OTEL_TRACES_EXPORTER: unknown exporter %r ignored (otlp, console, none)", name)
        return None
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    )
    if protocol.strip() == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            logger.warning(
                "OTLP over gRPC needs opentelemetry-exporter-otlp-proto-grpc; exporting over HTTP instead"
            )
        else:
            exporter: SpanExporter = GrpcExporter()
            return exporter
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        logger.warning("OTLP traces need opentelemetry-exporter-otlp-proto-http: pip install 'iris[otel]'")
        return None
    return OTLPSpanExporter()


def tracer_provider_from_env(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Return an SDK provider exporting as ``environ`` (default: ours) asks, or None when tracing is off.

    Off when nothing asks for traces, when ``OTEL_SDK_DISABLED=true``, and (with a warning) when the SDK
    is not installed.
    """
    environ = os.environ if environ is None else environ
    names = _requested_exporters(environ)
    if not names:
        return None
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "tracing asked for (OTEL_*) but the OpenTelemetry SDK is missing: pip install 'iris[otel]'"
        )
        return None
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    exporters = [
        exporter for exporter in (_exporter(name, environ) for name in names) if exporter is not None
    ]
    if not exporters:
        return None
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@contextlib.contextmanager
def installed_tracing(environ: Mapping[str, str] | None = None) -> Iterator[TracerProvider | None]:
    """Install the provider ``environ`` asks for (if any) for the length of the block; flush it after."""
    provider = tracer_provider_from_env(environ)
    if provider is None:
        yield None
        return
    trace.set_tracer_provider(provider)
    logger.info("tracing on: spans are exported (%s)", ", ".join(_requested_exporters(environ or os.environ)))
    try:
        yield provider
    finally:
        provider.shutdown()  # exports what is still batched (bounded by OTEL_BSP_EXPORT_TIMEOUT)
