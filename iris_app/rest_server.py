"""Serving the REST gateway under uvicorn inside Iris's own event loop (``iris serve``, ``iris gateway``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from iris_client.channels import iris_channel
from iris_core.config import IrisConfig
from mcp_adapter.http import MCP_PATH, mcp_http
from rest_gateway import GatewayConfig, Mount, Mounted, create_app
from rest_gateway.websocket import MAX_FRAME_BYTES as WEBSOCKET_MAX_FRAME_BYTES

__all__ = ["serving_app", "serving_rest"]

logger = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 10.0


@contextlib.asynccontextmanager
async def serving_rest(
    target: str,
    *,
    host: str,
    port: int,
    config: IrisConfig | None = None,
    tls_cert: Path | None = None,
    mounts: tuple[Mount, ...] = (),
) -> AsyncIterator[int]:
    """Serve REST, MCP at ``/mcp`` and ``mounts`` (``/metrics``), for the gRPC server at ``target``.

    Listens on ``host:port`` (0: any); yields the bound port.
    """
    cors = config.api.cors_origins if config is not None else ()
    gateway = GatewayConfig(cors_origins=cors, mounts=(_mcp_mount, *mounts))
    app = create_app(lambda: iris_channel(target, tls_cert), gateway)
    async with serving_app(app, host=host, port=port) as bound:
        logger.info("REST listening on http://%s:%d, MCP at %s (gRPC at %s)", host, bound, MCP_PATH, target)
        yield bound


def _mcp_mount(channel: Callable[[], grpc.aio.Channel]) -> Mounted:
    mcp = mcp_http(channel)
    return Mounted(MCP_PATH, mcp.app, mcp.lifespan)


@contextlib.asynccontextmanager
async def serving_app(app: Any, *, host: str, port: int) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn in this loop on ``host:port`` (0: any); yield the bound port.

    The socket is bound and listening before uvicorn starts, so the port is known, a taken port fails at once,
    and no early connection is refused. On exit uvicorn stops taking requests, finishes the running ones
    (bounded) and its task is awaited.
    """
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP, and
    # without it a keep-alive reply waits on Nagle and the client's delayed ACK (~40 ms a request).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"could not bind {host}:{port} for REST: {exc.strerror}") from exc
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            access_log=False,
            ws_max_size=WEBSOCKET_MAX_FRAME_BYTES,  # a bigger frame is refused before it is read whole
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name="iris-rest")
    try:
        async with asyncio.timeout(_STOP_TIMEOUT_S):
            while not server.started:
                if task.done():
                    await task  # raises what stopped it
                    raise RuntimeError("the REST server stopped while starting")
                await asyncio.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # reap the cancelled server task, so nothing is left running
        sock.close()
