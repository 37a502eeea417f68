"""The official MCP Inspector's CLI, over stdio, against `python -m mcp_adapter` and a running Iris."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import MCP_TOOLS, Iris, start_iris

REPO = Path(__file__).resolve().parents[2]
INSPECTOR = REPO / "tests" / "mcp" / "inspector" / "node_modules" / ".bin" / "mcp-inspector"
INSPECTOR_TIMEOUT_S = 90


async def inspect(iris: Iris, *args: str, key: str | None = None) -> dict[str, Any]:
    """Run ``mcp-inspector --cli`` with the adapter as its stdio server; return its JSON output.

    The Inspector exits 0 even when the tool call failed, so the caller checks ``isError``.
    """
    if not os.access(INSPECTOR, os.X_OK):
        pytest.fail(f"the MCP Inspector is not installed at {INSPECTOR}; run `make test`, which installs it")
    argv = [
        str(INSPECTOR),
        "--cli",
        "-e",
        f"IRIS_API_KEY={iris.admin_key if key is None else key}",
        "--",
        sys.executable,
        "-m",
        "mcp_adapter",
        "--target",
        iris.target,
        "--from-team",
        "inspector",
        *args,
    ]
    # Its own process group, so a hung run is killed with the adapter it started.
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(INSPECTOR_TIMEOUT_S):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.communicate()
    assert proc.returncode == 0, f"mcp-inspector exited {proc.returncode}: {err.decode(errors='replace')}"
    try:
        result = json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(
            f"mcp-inspector printed no JSON:\n{out.decode(errors='replace')}\n{err.decode(errors='replace')}"
        ) from None
    assert isinstance(result, dict)
    return result


def call_args(tool: str, **arguments: str) -> list[str]:
    args = ["--method", "tools/call", "--tool-name", tool]
    for name, value in arguments.items():
        args += ["--tool-arg", f"{name}={value}"]
    return args


async def test_tools_list_shows_every_tool(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        result = await inspect(iris, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in result["tools"]}
    assert len(result["tools"]) == len(MCP_TOOLS)
    assert set(tools) == MCP_TOOLS
    assert all(tool["inputSchema"]["type"] == "object" for tool in tools.values())
    assert tools["ask_message"]["inputSchema"]["required"] == ["toTeam", "message"]
    assert tools["list_teams"]["inputSchema"].get("required", []) == []


async def test_list_teams_returns_the_configured_teams(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        result = await inspect(iris, *call_args("list_teams"))
    assert result["isError"] is False, result
    teams = result["structuredContent"]["teams"]
    assert [team["name"] for team in teams] == ["alpha", "beta", "gamma"]
    assert result["structuredContent"]["totalTeams"] == 3
    # The text block carries the same JSON body for clients that ignore structuredContent.
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


async def test_ask_message_gets_the_teams_answer(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        result = await inspect(iris, *call_args("ask_message", toTeam="alpha", message="say hi from alpha"))
    assert result["isError"] is False, result
    body = result["structuredContent"]
    assert body["response"] == "hi from alpha"
    assert body["status"] == "completed"
    assert body["toTeam"] == "alpha"
    assert body["fromTeam"] == "inspector"  # the adapter's --from-team, as the call left fromTeam out
    assert json.loads(result["content"][0]["text"]) == body


async def test_a_bad_key_is_an_error_result(tmp_path: Path) -> None:
    async with start_iris(tmp_path) as iris:
        result = await inspect(iris, *call_args("list_teams"), key="iris_sk_live_" + "x" * 40)
    assert result["isError"] is True, result
    body = result["structuredContent"]
    assert body["error"] == "UnauthorizedError"
    assert body["code"] == "UNAUTHENTICATED"
    assert body["statusCode"] == 401
    assert "teams" not in body
