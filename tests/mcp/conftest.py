"""MCP clients for tests: the SDK's own client, in memory against the adapter or over HTTP at /mcp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_adapter import build_server
from mcp_adapter.calls import Caller, ToolCalls


@dataclass
class ProgressLog:
    """Progress notifications received by one tool call, in order."""

    received: list[tuple[float, str]] = field(default_factory=list)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.received.append((progress, message or ""))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.received]


@asynccontextmanager
async def adapter_client(
    channel: grpc.aio.Channel, *, api_key: str, from_team: str = "", heartbeat_s: float = 5.0
) -> AsyncIterator[Client]:
    """The adapter over ``channel``, with a fixed caller (as over stdio), and an in-memory client to it."""
    calls = ToolCalls(lambda: channel, heartbeat_s=heartbeat_s)
    caller = Caller.with_key(api_key, from_team)
    server = build_server(calls, lambda ctx: caller, from_team=from_team)
    async with Client(server) as client:
        yield client


@asynccontextmanager
async def http_client(url: str, headers: Mapping[str, str] | Mapping[bytes, bytes]) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP sending ``headers`` with every request."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client
