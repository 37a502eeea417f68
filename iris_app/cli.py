"""The ``iris`` command.

``iris serve --config PATH [--home DIR] [--host H] [--grpc-port N] [--offline-model] [--log-format json]``,
``iris gateway --target HOST:PORT``, ``iris mcp [--from-team NAME]`` / ``iris mcp install [--write]`` (see
``mcp_adapter.cli``), ``iris key generate|list|revoke`` and ``iris audit tail`` (see ``admin_cli``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from iris_core.errors import IrisError
from mcp_adapter.cli import configure_parser as configure_mcp_parser
from mcp_adapter.cli import run as run_mcp

from .admin_cli import add_admin_commands, run_admin_command

if TYPE_CHECKING:
    from iris_core.logs import LogRing

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iris", description="Claude Code teams as cooperating services.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the gRPC server over a pool of Claude Code processes")
    serve.add_argument("--config", required=True, type=Path, help="config YAML (settings: and teams:)")
    serve.add_argument("--home", type=Path, help="state directory (default $IRIS_HOME or ~/.iris)")
    serve.add_argument("--host", help="address to bind (default settings.host, 127.0.0.1)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default settings.grpcPort, 50051; 0 = any)")
    serve.add_argument("--http-port", type=int, help="REST port (default settings.httpPort, 1615; 0 = any)")
    serve.add_argument("--no-http", action="store_true", help="serve gRPC only")
    serve.add_argument(
        "--offline-model",
        action="store_true",
        help="start a local scripted stand-in for the Anthropic API and point every team at it",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="stderr log lines: text (default) or one JSON object per line",
    )
    gateway = commands.add_parser("gateway", help="serve only the REST gateway, in front of a running Iris")
    gateway.add_argument("--target", required=True, help="the Iris gRPC address, host:port")
    gateway.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    gateway.add_argument("--http-port", type=int, default=1615, help="REST port (default 1615; 0 = any)")
    gateway.add_argument("--tls-ca", type=Path, help="trust this certificate for a TLS gRPC target")
    gateway.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    mcp = commands.add_parser("mcp", help="serve Iris's tools to Claude Code over stdio (or: mcp install)")
    configure_mcp_parser(mcp)
    add_admin_commands(commands)
    return parser


def _configure_logging(level: str, ring: LogRing, log_format: str = "text") -> None:
    from .log_format import TEXT_FORMAT, JsonLineFormatter, quiet_chatty_loggers

    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonLineFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT, "%H:%M:%S")
    handler.setFormatter(formatter)
    handler.setLevel(level)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    root.addHandler(ring)
    quiet_chatty_loggers(level)


async def _serve_gateway(target: str, host: str, port: int, tls_ca: Path | None) -> None:
    from .rest_server import serving_rest

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serving_rest(target, host=host, port=port, tls_cert=tls_ca):
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    home = (
        (getattr(args, "home", None) or Path(os.environ.get("IRIS_HOME") or Path.home() / ".iris"))
        .expanduser()
        .resolve()
    )
    if args.command in ("key", "audit"):
        try:
            return asyncio.run(run_admin_command(args, home))
        except IrisError as exc:
            print(f"iris: {exc.message}", file=sys.stderr)
            return 2
    if args.command == "mcp":
        return run_mcp(args)
    # The server's modules load only for the commands that serve: `iris mcp` starts once per Claude session.
    from iris_core.config import load_config
    from iris_core.errors import ConfigurationError
    from iris_core.logs import LogRing

    from .app import run_until_signalled
    from .tracing import installed_tracing

    if args.command == "gateway":
        _configure_logging(args.log_level, LogRing(1000))
        try:
            with installed_tracing():
                asyncio.run(_serve_gateway(args.target, args.host, args.http_port, args.tls_ca))
        except RuntimeError as exc:
            print(f"iris: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        config = load_config(args.config)
    except ConfigurationError as exc:
        print(f"iris: {exc.message}", file=sys.stderr)
        return 2
    ring = LogRing(config.settings.log_buffer_size)
    _configure_logging(args.log_level, ring, args.log_format)
    host = args.host or config.settings.host
    port = config.settings.grpc_port if args.grpc_port is None else args.grpc_port
    http_port = (
        None if args.no_http else (config.settings.http_port if args.http_port is None else args.http_port)
    )
    try:
        with installed_tracing():  # off unless the SDK is installed and OTEL_* asks for traces
            asyncio.run(
                run_until_signalled(
                    config,
                    home,
                    host=host,
                    grpc_port=port,
                    offline_model=args.offline_model,
                    logs=ring,
                    http_port=http_port,
                )
            )
    except RuntimeError as exc:
        print(f"iris: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
