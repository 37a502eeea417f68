"""The client side of TLS: `iris gateway --tls-ca` and `iris mcp --tls-ca` in front of an Iris serving TLS.

Trusting the server's certificate, both answer; without it, or trusting another certificate, a call fails at
once with the standard error body instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from tests.harness import MCP_TOOLS, Iris, self_signed, start_iris, write_config


@contextlib.asynccontextmanager
async def tls_iris(tmp_path: Path) -> AsyncIterator[tuple[Iris, Path, Path]]:
    """An Iris serving gRPC over TLS; yields it, the certificate it serves and another (untrusted) one."""
    cert_file, key_file = self_signed(tmp_path / "tls")
    other_cert, _ = self_signed(tmp_path / "other")
    config = write_config(tmp_path, api={"tls": {"certFile": str(cert_file), "keyFile": str(key_file)}})
    async with start_iris(tmp_path, config) as iris:
        yield iris, cert_file, other_cert


def tls_target(iris: Iris) -> str:
    return f"localhost:{iris.running.grpc.port}"  # the name the certificate is for


@contextlib.asynccontextmanager
async def iris_gateway(target: str, tls_ca: Path | None) -> AsyncIterator[str]:
    """Run ``iris gateway --target TARGET [--tls-ca CERT]`` on a free port; yield its URL; stop it after."""
    flags = ["--tls-ca", str(tls_ca)] if tls_ca is not None else []
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iris_app.cli",
        "gateway",
        "--target",
        target,
        "--http-port",
        "0",
        *flags,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(30):
            while not (
                found := re.search(
                    rb"REST listening on http://127\.0\.0\.1:(\d+)", await child.stderr.readline()
                )
            ):
                assert child.returncode is None, "the gateway stopped while starting"
        drain = asyncio.create_task(child.stderr.read())  # keep its log pipe from filling up
        yield f"http://127.0.0.1:{int(found[1])}"
        child.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await child.wait() == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


def adapter(target: str, key: str, tls_ca: Path | None) -> StdioServerParameters:
    """``iris mcp`` over stdio for ``target``, as Claude Code would start it."""
    flags = ["--tls-ca", str(tls_ca)] if tls_ca is not None else []
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "iris_app.cli", "mcp", "--target", target, "--from-team", "web", *flags],
        env={
            "IRIS_API_KEY": key,
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1",
        },
    )


def body(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result.content
    return result.structured_content


# --- iris gateway --tls-ca ----------------------------------------------------------------------------------


async def test_iris_gateway_trusting_the_servers_certificate_answers_rest(tmp_path: Path) -> None:
    async with tls_iris(tmp_path) as (iris, cert, _), iris_gateway(tls_target(iris), cert) as url:
        headers = {"authorization": f"Bearer {iris.admin_key}"}
        async with (
            httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client,
            asyncio.timeout(90),
        ):
            teams = await client.get("/api/teams")
            told = await client.post(
                "/api/teams/tell", json={"toTeam": "alpha", "fromTeam": "web", "message": "say over tls"}
            )
    assert teams.status_code == 200 and teams.json()["totalTeams"] == 3
    assert told.status_code == 200 and told.json()["response"] == "over tls"


@pytest.mark.parametrize("trust", ["no-ca", "wrong-ca"])
async def test_iris_gateway_without_the_right_certificate_fails_with_an_error_body_not_a_hang(
    tmp_path: Path, trust: str
) -> None:
    async with tls_iris(tmp_path) as (iris, _, other):
        async with iris_gateway(tls_target(iris), None if trust == "no-ca" else other) as url:
            headers = {"authorization": f"Bearer {iris.admin_key}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
                async with asyncio.timeout(30):
                    failed = await client.get("/api/teams")
    assert failed.status_code == 503
    error = failed.json()
    assert error["error"] == "UnavailableError" and error["code"] == "UNAVAILABLE", error
    assert error["message"] == "The Iris server is not reachable"


# --- iris mcp --tls-ca --------------------------------------------------------------------------------------


async def test_iris_mcp_trusting_the_servers_certificate_lists_and_calls_tools(tmp_path: Path) -> None:
    async with tls_iris(tmp_path) as (iris, cert, _):
        async with Client(adapter(tls_target(iris), iris.admin_key, cert)) as client, asyncio.timeout(90):
            listed = await client.list_tools()
            teams = await client.call_tool("list_teams", {})
            sent = await client.call_tool("send_message", {"toTeam": "alpha", "message": "say mcp over tls"})
    assert len(listed.tools) == len(MCP_TOOLS)
    assert not teams.is_error and [t["name"] for t in body(teams)["teams"]] == ["alpha", "beta", "gamma"]
    assert not sent.is_error
    assert body(sent)["response"] == "mcp over tls" and body(sent)["fromTeam"] == "web"


@pytest.mark.parametrize("trust", ["no-ca", "wrong-ca"])
async def test_iris_mcp_without_the_right_certificate_returns_a_tool_error_not_a_hang(
    tmp_path: Path, trust: str
) -> None:
    async with tls_iris(tmp_path) as (iris, _, other):
        tls_ca = None if trust == "no-ca" else other
        async with Client(adapter(tls_target(iris), iris.admin_key, tls_ca)) as client, asyncio.timeout(30):
            listed = await client.list_tools()  # listing needs no server
            failed = await client.call_tool("list_teams", {})
    assert len(listed.tools) == len(MCP_TOOLS)
    assert failed.is_error
    assert body(failed)["error"] == "UnavailableError" and body(failed)["code"] == "UNAVAILABLE"
    assert body(failed)["statusCode"] == 503
    assert body(failed)["message"] == "The Iris server is not reachable"
