"""A real Iris behind the gateway, served by uvicorn on a real port (streams need a real connection)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from rest_gateway import create_app
from tests.harness import Iris, start_iris


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a port bound before start, so there is no race) and yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    await task
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task
        sock.close()


@dataclass
class Gateway:
    """A running Iris, the gateway in front of it, and an HTTP client holding the admin key."""

    iris: Iris
    url: str
    client: httpx.AsyncClient


@asynccontextmanager
async def gateway_for(iris: Iris, app: FastAPI | None = None) -> AsyncIterator[Gateway]:
    async with serving(app or create_app(iris.target)) as url:
        headers = {"authorization": f"Bearer {iris.admin_key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            yield Gateway(iris, url, client)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with start_iris(tmp_path) as iris, gateway_for(iris) as running:
        yield running
