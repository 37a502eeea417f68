"""A real Iris behind the gateway, served by uvicorn on a real port (streams need a real connection)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from iris_app.rest_server import serving_app
from rest_gateway import create_app
from tests.harness import Iris, start_iris


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (any free port) the way ``iris serve`` does, and yield its URL."""
    async with serving_app(app, host="127.0.0.1", port=0) as port:
        yield f"http://127.0.0.1:{port}"


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
