"""MCP over streamable HTTP, served at ``/mcp`` on the REST gateway's port and sharing its channel to Iris.

Stateless: each POST is one MCP request whose progress and result stream back on its own response, so
nothing is kept per client between requests. The caller's credentials are its HTTP headers
(``Authorization: Bearer <key>`` or ``X-API-Key``), passed to gRPC as metadata exactly as the gateway does;
``X-Iris-From-Team`` names the calling team for calls that leave ``fromTeam`` out (each team's own Claude
Code sends it when Iris gives it this server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

from iris_client.call_errors import CallFailure
from iris_client.credentials import outgoing_metadata, unsendable

from .calls import DEFAULT_HEARTBEAT_S, Caller, CallRefused, ChannelSource, ToolCalls
from .server import build_server

__all__ = ["FROM_TEAM_HEADER", "MCP_PATH", "McpHttp", "mcp_http"]

MCP_PATH = "/mcp"
"""Where the gateway serves MCP."""

FROM_TEAM_HEADER = "x-iris-from-team"
"""Request header naming the calling team."""


def _caller_from_headers(headers: Mapping[str, str]) -> Caller:
    metadata = outgoing_metadata(headers)
    bad = unsendable(metadata)
    if bad is not None:  # as REST refuses it: gRPC metadata cannot carry it, and no valid key looks like it
        failure = CallFailure(
            "UnauthorizedError", f"Malformed {bad} header", grpc.StatusCode.UNAUTHENTICATED, {"header": bad}
        )
        raise CallRefused(failure)
    return Caller(metadata, headers.get(FROM_TEAM_HEADER, ""))


def _http_caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    headers = getattr(ctx.request, "headers", None)
    return _caller_from_headers(headers) if headers is not None else Caller()


@dataclass(frozen=True)
class McpHttp:
    """The ASGI app serving MCP, and the lifespan that must wrap it (the SDK's session manager)."""

    app: StreamableHTTPASGIApp
    """Mount it at ``MCP_PATH``."""
    manager: StreamableHTTPSessionManager
    """Run ``lifespan()`` around serving."""

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the session manager's task group while the app serves."""
        async with self.manager.run():
            yield


def mcp_http(
    channel: ChannelSource, *, heartbeat_s: float = DEFAULT_HEARTBEAT_S, version: str = ""
) -> McpHttp:
    """Build the HTTP MCP app calling Iris over ``channel()`` (the gateway's live channel)."""
    server = build_server(ToolCalls(channel, heartbeat_s=heartbeat_s), _http_caller)
    # No DNS-rebinding host check: like the REST routes beside it, every call needs an API key (unless the
    # operator turned auth off), and Iris may be reached under any host name it is served as.
    manager = StreamableHTTPSessionManager(app=server, stateless=True)
    return McpHttp(StreamableHTTPASGIApp(manager), manager)
