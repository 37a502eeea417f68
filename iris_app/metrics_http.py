"""``GET /metrics`` in the Prometheus text format: on the REST port, and on a port of its own if configured.

Served on Iris's own event loop (prometheus-client's ASGI app renders in the request's task), so the pool
gauges are read where the pool lives, never from another thread. The endpoint takes no key, as Prometheus
scrapers expect; it shows team and API key names, so it listens where the REST port does (loopback unless
``settings.host`` says otherwise) and ``settings.metricsPort`` can put it where only the scraper reaches.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.types import ASGIApp, Receive, Scope, Send

from rest_gateway import Mount, Mounted

from .rest_server import serving_app

__all__ = ["METRICS_PATH", "metrics_mount", "serving_metrics"]

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"


class _MetricsApp:
    """prometheus-client's ASGI app, as an instance.

    Starlette hands an instance the raw ASGI call; a plain function endpoint would be called with a Request.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._app = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def metrics_mount(registry: CollectorRegistry) -> Mount:
    """Return the gateway mount that answers ``GET /metrics`` from ``registry``."""
    app = _MetricsApp(registry)

    def mount(channel: Callable[[], grpc.aio.Channel]) -> Mounted:
        del channel  # read from the registry in this process, not over gRPC
        return Mounted(METRICS_PATH, app, contextlib.nullcontext)

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
