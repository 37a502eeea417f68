"""``iris mcp``: serve the tools over stdio, or ``iris mcp install`` the lines that register them.

Also runs as ``python -m mcp_adapter`` with the same flags. The key comes from ``$IRIS_API_KEY`` (a flag
would show it to every user of ``ps``); the target from ``--target`` or ``$IRIS_TARGET``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .calls import DEFAULT_HEARTBEAT_S

__all__ = ["configure_parser", "main", "run"]

DEFAULT_TARGET = "127.0.0.1:50051"


def _connection_flags(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """Add --target, --from-team and --tls-ca.

    Without ``defaults`` (on a subcommand) a flag left out keeps the value given before the subcommand
    (``iris mcp --from-team x install``) instead of overwriting it with the default.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--target",
        default=default(os.environ.get("IRIS_TARGET") or DEFAULT_TARGET),
        help=f"the Iris gRPC address, host:port (default $IRIS_TARGET or {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--from-team",
        default=default(os.environ.get("IRIS_FROM_TEAM", "")),
        help="the calling team, used when a tool call leaves fromTeam out (default $IRIS_FROM_TEAM)",
    )
    parser.add_argument("--tls-ca", type=Path, default=default(None), help="trust this certificate for TLS")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.1 and 3600 seconds")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the adapter's flags and its ``install`` subcommand to ``parser``."""
    _connection_flags(parser)
    parser.add_argument(
        "--heartbeat",
        type=_positive_seconds,
        default=DEFAULT_HEARTBEAT_S,
        help=f"longest silence, in seconds, between progress notifications (default {DEFAULT_HEARTBEAT_S:g})",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="mcp_command")
    install = commands.add_parser("install", help="print (or --write) what registers Iris in a project")
    _connection_flags(install, defaults=False)
    install.add_argument("--write", action="store_true", help="merge the server into PROJECT/.mcp.json")
    install.add_argument("--project", type=Path, default=Path.cwd(), help="project folder (default: here)")
    install.add_argument("--name", default="iris", help="the server's name in Claude Code (default iris)")


def _install(args: argparse.Namespace) -> int:
    from .install import McpInstallError, claude_mcp_add_line, default_team, server_entry, write_mcp_json

    from_team = args.from_team or default_team(args.project)
    entry = server_entry(from_team=from_team, target=args.target, tls_ca=args.tls_ca)
    if args.write:
        try:
            path = write_mcp_json(args.project, args.name, entry)
        except McpInstallError as exc:
            print(f"iris: {exc}", file=sys.stderr)
            return 2
        print(f"Registered the '{args.name}' MCP server (team {from_team}) in {path}.")
        print("Claude Code reads the key from IRIS_API_KEY in its environment.")
        return 0
    print("# .mcp.json in the project folder (or run this command with --write):")
    print(json.dumps({"mcpServers": {args.name: entry}}, indent=2))
    print("\n# or, with Claude Code's own command:")
    print(claude_mcp_add_line(entry, args.name))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``iris mcp`` command line; return the exit status."""
    if args.mcp_command == "install":
        return _install(args)
    from .stdio import serve_stdio

    # stdout is the protocol; logs go to stderr, which Claude Code keeps in its MCP logs.
    logging.basicConfig(stream=sys.stderr, level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(
        serve_stdio(
            args.target,
            api_key=os.environ.get("IRIS_API_KEY", ""),
            from_team=args.from_team,
            tls_ca=args.tls_ca,
            heartbeat_s=args.heartbeat,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mcp_adapter``: the same as ``iris mcp``."""
    parser = argparse.ArgumentParser(prog="iris mcp", description="Iris's tools for Claude Code, over MCP.")
    configure_parser(parser)
    return run(parser.parse_args(argv))
