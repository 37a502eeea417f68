"""``GET /metrics`` in the Prometheus text format: on the REST port, and on a port of its own if configured.

Served on Iris's own event loop (prometheus-client's ASGI app renders in the request's task), so the pool
gauges are read where the pool lives, never from another thread. The metrics name every API key and what
it spent, which GetUsage shows only to admin keys: on the REST port ``/metrics`` therefore needs a key with
``status:read`` (Prometheus sends it with ``authorization: {credentials: ...}``), checked by gRPC like any
call, so refusals are audited. ``settings.metricsPort`` serves them without a key, on a port of their own
that the operator puts where only the scraper reaches.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from iris_client.call_errors import failure_of
from iris_client.credentials import outgoing_metadata
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from rest_gateway import Mount, Mounted

from .rest_server import serving_app

__all__ = ["METRICS_PATH", "metrics_mount", "serving_metrics"]

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"

_CHECK_TIMEOUT_S = 10.0
"""Deadline of the key check (GetStatus) before a scrape."""


class _MetricsApp:
    """prometheus-client's ASGI app behind Iris's own authentication (a GetStatus call with the caller's key).

    Starlette hands an instance the raw ASGI call; a plain function endpoint would be called with a Request.
    """

    def __init__(self, registry: CollectorRegistry, channel: Callable[[], grpc.aio.Channel]) -> None:
        self._app = make_asgi_app(registry)
        self._channel = channel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
            }
            metadata = outgoing_metadata(headers)
            try:
                stub = iris_pb2_grpc.IrisStub(self._channel())
                await stub.GetStatus(pb.GetStatusRequest(), metadata=metadata, timeout=_CHECK_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                failure = failure_of(exc)
                await JSONResponse(failure.body(), status_code=failure.status_code)(scope, receive, send)
                return
        await self._app(scope, receive, send)


def metrics_mount(registry: CollectorRegistry) -> Mount:
    """Return the gateway mount that answers ``GET /metrics`` from ``registry``, to a key with status:read."""

    def mount(channel: Callable[[], grpc.aio.Channel]) -> Mounted:
        return Mounted(METRICS_PATH, _MetricsApp(registry, channel), contextlib.nullcontext)

    return mount


def _standalone(registry: CollectorRegistry) -> ASGIApp:
    """Return an ASGI app for the metrics port alone: ``/metrics``, 404 elsewhere, and uvicorn's lifespan."""
    metrics = make_asgi_app(registry)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == METRICS_PATH:
            await metrics(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"Not found: metrics are at /metrics\n"})

    return app


@contextlib.asynccontextmanager
async def serving_metrics(registry: CollectorRegistry, *, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``GET /metrics`` on ``host:port`` (0: any free port); yield the bound port."""
    async with serving_app(_standalone(registry), host=host, port=port) as bound:
        logger.info("metrics listening on http://%s:%d%s", host, bound, METRICS_PATH)
        yield bound
