"""Composition of a running Iris: offline model (optional), service, gRPC server; and their orderly stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from iris_core.config import IrisConfig
from iris_core.logs import LogRing
from iris_core.service import IrisService
from iris_core.session_mcp import McpEndpoint
from iris_grpc.server import GrpcServer, build_grpc_server
from iris_offline_model import OfflineModel, offline_model_env
from mcp_adapter.http import MCP_PATH

from .metrics_http import metrics_mount, serving_metrics
from .rest_server import serving_rest

__all__ = ["RunningIris", "run_until_signalled", "running_iris"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunningIris:
    """Handles to a started Iris."""

    service: IrisService
    grpc: GrpcServer
    offline_model: OfflineModel | None
    http_port: int | None = None
    """The REST gateway's port, when one was started."""
    metrics_port: int | None = None
    """The port of ``GET /metrics`` alone (``settings.metricsPort``), when one was started."""


@asynccontextmanager
async def running_iris(
    config: IrisConfig,
    home: Path,
    *,
    host: str,
    grpc_port: int,
    offline_model: bool = False,
    logs: LogRing | None = None,
    http_port: int | None = None,
) -> AsyncIterator[RunningIris]:
    """Start everything; on exit stop REST, then gRPC, then every Claude process (reaped), then the model.

    With ``http_port`` (0: any free port) the REST gateway is served too, reaching gRPC over loopback, and
    ``GET /metrics`` with it; ``settings.metricsPort`` (not 0) serves ``/metrics`` on a port of its own too.
    """
    # The SDK runs `claude -v` at every connect unless this is set in its own environment.
    os.environ.setdefault("CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK", "1")
    async with AsyncExitStack() as stack:
        model: OfflineModel | None = None
        extra_env: dict[str, str] = {}
        if offline_model:
            model = await stack.enter_async_context(OfflineModel(host="127.0.0.1", port=0))
            extra_env = offline_model_env(model.base_url)
            logger.info(
                "Teams use the offline model at %s (scripted answers, no network, no key). "
                "For a real model, start without --offline-model and set ANTHROPIC_API_KEY.",
                model.base_url,
            )
        service = await IrisService.open(config, home, logs=logs, extra_env=extra_env)
        stack.push_async_callback(service.aclose)
        await _first_run_admin_key(service, config, home)
        server = await build_grpc_server(service, host=host, port=grpc_port)
        stack.push_async_callback(_stop_in_order, server, service, config.settings.shutdown_timeout_ms / 1000)
        rest_port = None
        tls_cert = config.api.tls.cert_file if config.api.tls is not None else None
        target = f"{'localhost' if tls_cert else '127.0.0.1'}:{server.port}"
        metrics = service.metrics
        if http_port is not None:
            mounts = (metrics_mount(metrics.registry),) if metrics is not None else ()
            rest_port = await stack.enter_async_context(
                serving_rest(
                    target, host=host, port=http_port, config=config, tls_cert=tls_cert, mounts=mounts
                )
            )
        metrics_port = None
        if metrics is not None and config.settings.metrics_port:
            metrics_port = await stack.enter_async_context(
                serving_metrics(metrics.registry, host=host, port=config.settings.metrics_port)
            )
        service.session_mcp.endpoint = session_mcp_endpoint(host, rest_port, target, tls_cert)
        yield RunningIris(service, server, model, rest_port, metrics_port)


def session_mcp_endpoint(host: str, rest_port: int | None, target: str, tls_cert: Path | None) -> McpEndpoint:
    """Say where teams' Claude processes reach the MCP adapter (sessionMcpEnabled).

    The streamable HTTP endpoint at /mcp when the gateway runs here (no process per session); otherwise the
    stdio adapter, started by Claude Code itself, talking to this server's gRPC port.
    """
    if rest_port is not None:
        loopback = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}  # noqa: S104 - bind-all, mapped
        where = loopback.get(host, f"[{host}]" if ":" in host else host)
        return McpEndpoint(url=f"http://{where}:{rest_port}{MCP_PATH}")
    tls = ("--tls-ca", str(tls_cert)) if tls_cert is not None else ()
    return McpEndpoint(command=(sys.executable, "-m", "mcp_adapter", "--target", target, *tls))


ADMIN_KEY_FILE = "admin.key"


async def _first_run_admin_key(service: IrisService, config: IrisConfig, home: Path) -> None:
    """On the first start (no keys yet) create an admin key, print it once and save it 0600 in the home."""
    if not config.api.require_auth:
        logger.warning(
            "\n%s\n  AUTHENTICATION IS OFF (api.requireAuth: false): anyone who can reach %s can drive\n"
            "  every team's Claude Code, which can edit code and run commands. Turn it back on unless this\n"
            "  machine and port are yours alone.\n%s",
            "!" * 100,
            config.settings.host,
            "!" * 100,
        )
        return
    if await service.keys.count() > 0:
        return
    key, _ = await service.key_admin.create(name="admin", permissions=["admin"], by="first start")
    path = home / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    sys.stdout.write(
        f"\nFirst start: created an admin API key (shown once, saved to {path}, mode 0600):\n\n"
        f"    {key}\n\n"
        f"Use it as 'authorization: Bearer <key>'; e.g. export IRIS_API_KEY=$(cat {path})\n"
        f"Make keys with fewer permissions with: iris key generate --name NAME --permissions team:tell\n\n"
    )
    sys.stdout.flush()


async def _stop_in_order(server: GrpcServer, service: IrisService, grace_s: float) -> None:
    """Stop taking calls, end every active turn (so waiting callers get a reply, not a reset), then drain.

    The server's stop starts first (it refuses new calls at once and lets running ones finish within the
    grace); closing the service meanwhile ends the turns those calls wait on and reaps every process.
    """
    draining = asyncio.create_task(server.stop(grace_s))
    try:
        await service.aclose()
    finally:
        await draining


async def run_until_signalled(
    config: IrisConfig,
    home: Path,
    *,
    host: str,
    grpc_port: int,
    offline_model: bool,
    logs: LogRing,
    http_port: int | None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop in order (no Claude process is left behind)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_iris(
            config,
            home,
            host=host,
            grpc_port=grpc_port,
            offline_model=offline_model,
            logs=logs,
            http_port=http_port,
        ) as iris:
            rest = f", REST on http://{host}:{iris.http_port}" if iris.http_port is not None else ""
            logger.info(
                "Iris ready: gRPC on %s:%d%s (%d teams)", host, iris.grpc.port, rest, len(config.teams)
            )
            await stop.wait()
            logger.info("stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    logger.info("stopped")
