"""MCP over stdio: what Claude Code runs (``iris mcp --from-team NAME``), one adapter per session.

Served by the adapter's own small JSON-RPC server (``stdio_server``), not the MCP SDK's: one of these runs
per Claude Code session, and the SDK alone would make each hold some 50 MB more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from iris_client.channels import iris_channel

from .calls import DEFAULT_HEARTBEAT_S, Caller, ToolCalls
from .stdio_server import MAX_LINE_BYTES, Output, StdioMcpServer
from .tools import iris_tools

__all__ = ["serve_stdio"]


async def _stdio() -> tuple[asyncio.StreamReader, Output]:
    """Return stdin as a stream and stdout as the server's output, neither blocking the loop.

    A pipe (what an MCP client gives) is read and written by the loop; stdin or stdout redirected from or to a
    regular file, which the loop cannot watch, is read in a thread and written directly.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:
        data = await asyncio.to_thread(sys.stdin.buffer.read)
        reader.feed_data(data)
        reader.feed_eof()
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout)
    except ValueError:
        return reader, Output(None)
    return reader, Output(asyncio.StreamWriter(transport, protocol, None, loop))


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
    server = StdioMcpServer(
        iris_tools(),
        ToolCalls(lambda: channel, heartbeat_s=heartbeat_s),
        Caller.with_key(api_key, from_team),
        from_team=from_team,
    )
    blocking = _blocking_of((0, 1))
    try:
        reader, output = await _stdio()
        await server.serve(reader, output)
    finally:
        await channel.close()
        # The loop made stdin and stdout non-blocking: undone where a terminal's shell shares them (a pipe is
        # the client's own, and one still being written to by the loop must not block it now).
        for fd, was in blocking.items():
            with contextlib.suppress(OSError):
                os.set_blocking(fd, was)


def _blocking_of(fds: tuple[int, ...]) -> dict[int, bool]:
    """Return whether each of ``fds`` that is a terminal is blocking."""
    blocking = {}
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                blocking[fd] = os.get_blocking(fd)
    return blocking
