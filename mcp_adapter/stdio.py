"""MCP over stdio: what Claude Code runs (``iris mcp --from-team NAME``), one adapter per session."""

from __future__ import annotations

from pathlib import Path

from mcp.server.stdio import stdio_server

from iris_client.channels import iris_channel

from .calls import DEFAULT_HEARTBEAT_S, Caller, ToolCalls
from .server import build_server

__all__ = ["serve_stdio"]


async def serve_stdio(
    target: str,
    *,
    api_key: str,
    from_team: str,
    tls_ca: Path | None = None,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
) -> None:
    """Serve the tools over this process's stdin/stdout until the client closes stdin.

    Every call goes to the Iris gRPC server at ``target`` with ``api_key``, as team ``from_team`` unless the
    call names another. Connecting is lazy: the adapter starts, and lists its tools, even before Iris is up.
    """
    channel = iris_channel(target, tls_ca)
    caller = Caller.with_key(api_key, from_team)
    server = build_server(
        ToolCalls(lambda: channel, heartbeat_s=heartbeat_s), lambda ctx: caller, from_team=from_team
    )
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await channel.close()
