"""The ``iris`` command.

``iris serve --config PATH [--home DIR] [--host H] [--grpc-port N] [--offline-model]``,
``iris key generate|list|revoke`` and ``iris audit tail`` (see ``admin_cli``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from iris_core.config import load_config
from iris_core.errors import ConfigurationError, IrisError
from iris_core.logs import LogRing

from .admin_cli import add_admin_commands, run_admin_command
from .app import run_until_signalled

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iris", description="Claude Code teams as cooperating services.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the gRPC server over a pool of Claude Code processes")
    serve.add_argument("--config", required=True, type=Path, help="config YAML (settings: and teams:)")
    serve.add_argument("--home", type=Path, help="state directory (default $IRIS_HOME or ~/.iris)")
    serve.add_argument("--host", help="address to bind (default settings.host, 127.0.0.1)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default settings.grpcPort, 50051; 0 = any)")
    serve.add_argument(
        "--offline-model",
        action="store_true",
        help="start a local scripted stand-in for the Anthropic API and point every team at it",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_admin_commands(commands)
    return parser


def _configure_logging(level: str, ring: LogRing) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.setLevel(level)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    root.addHandler(ring)
    for noisy in ("asyncio", "aiosqlite", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    home = (args.home or Path(os.environ.get("IRIS_HOME") or Path.home() / ".iris")).expanduser().resolve()
    if args.command in ("key", "audit"):
        try:
            return asyncio.run(run_admin_command(args, home))
        except IrisError as exc:
            print(f"iris: {exc.message}", file=sys.stderr)
            return 2
    try:
        config = load_config(args.config)
    except ConfigurationError as exc:
        print(f"iris: {exc.message}", file=sys.stderr)
        return 2
    ring = LogRing(config.settings.log_buffer_size)
    _configure_logging(args.log_level, ring)
    host = args.host or config.settings.host
    port = config.settings.grpc_port if args.grpc_port is None else args.grpc_port
    try:
        asyncio.run(
            run_until_signalled(
                config, home, host=host, grpc_port=port, offline_model=args.offline_model, logs=ring
            )
        )
    except RuntimeError as exc:
        print(f"iris: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
