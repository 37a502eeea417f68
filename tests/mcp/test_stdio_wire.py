"""The stdio adapter's own JSON-RPC server over a real pipe: the SDK's client in both eras, and bad input.

The stdio adapter does not use the MCP SDK (to stay small), so these check it against the SDK's client, which
must see what the SDK's own server (``build_server``, in memory) shows it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from mcp_adapter.stdio_server import MAX_LINE_BYTES
from tests.harness import Iris
from tests.mcp.conftest import ProgressLog, adapter_client

REPO = Path(__file__).resolve().parents[2]
NO_IRIS = "127.0.0.1:1"
"""A target where nothing listens: the adapter still starts and answers (connecting is lazy)."""


def adapter_argv(target: str) -> list[str]:
    return [sys.executable, "-m", "mcp_adapter", "--target", target, "--from-team", "web"]


@asynccontextmanager
async def stdio_client(iris: Iris, mode: str) -> AsyncIterator[Client]:
    """The SDK's client, in ``mode`` (``auto`` opens the 2026 era, ``legacy`` the handshake), over stdio."""
    argv = adapter_argv(iris.target)
    params = StdioServerParameters(
        command=argv[0], args=argv[1:], env={**os.environ, "IRIS_API_KEY": iris.admin_key}, cwd=REPO
    )
    async with Client(params, mode=mode) as client:
        yield client


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_client_sees_over_stdio_what_the_sdk_server_shows_it(iris: Iris, mode: str) -> None:
    async with (
        asyncio.timeout(60),
        stdio_client(iris, mode) as over_stdio,
        adapter_client(iris.channel, api_key=iris.admin_key, from_team="web") as in_memory,
    ):
        assert over_stdio.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        listed = await over_stdio.list_tools()
        expected = await in_memory.list_tools()
        assert [t.model_dump() for t in listed.tools] == [t.model_dump() for t in expected.tools]
        progress = ProgressLog()
        result = await over_stdio.call_tool(
            "ask_message", {"toTeam": "alpha", "message": "slow 3 200"}, progress_callback=progress
        )
        assert not result.is_error and isinstance(result.structured_content, dict)
        assert result.structured_content["response"] == "chunk 1 chunk 2 chunk 3 "
        assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
        assert progress.messages[0] == "alpha accepted the message"
        assert progress.messages[-1] == "done: completed"
        values = [p for p, _ in progress.received]
        assert values == sorted(set(values))
        missing = await over_stdio.call_tool("no_such_tool", {})
        assert missing.is_error and isinstance(missing.structured_content, dict)
        assert missing.structured_content["error"] == "NotFoundError"


def exchange(lines: list[bytes]) -> list[dict[str, Any]]:
    """Send ``lines`` to a fresh adapter, close its stdin, and return every message it wrote."""
    done = subprocess.run(
        adapter_argv(NO_IRIS), input=b"".join(lines), capture_output=True, cwd=REPO, timeout=60, check=True
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def request(request_id: int, method: str, **params: Any) -> bytes:
    return (
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode() + b"\n"
    )


INITIALIZE = request(
    1, "initialize", protocolVersion="2025-11-25", capabilities={}, clientInfo={"name": "t", "version": "1"}
)


def test_bad_input_gets_a_json_rpc_error_and_the_adapter_goes_on() -> None:
    answers = exchange(
        [
            b"{not json\n",
            INITIALIZE,
            b"[1, 2]\n",
            b'{"jsonrpc": "2.0", "id": 2}\n',
            request(3, "no/such/method"),
            b'{"jsonrpc": "2.0", "id": 4, "method": "ping", "params": {"x": "'
            + b"a" * MAX_LINE_BYTES
            + b'"}}\n',
            request(5, "tools/call", name=7),
            request(6, "ping", x="b" * 2 * MAX_LINE_BYTES),  # refused before its end is read
            request(7, "ping"),
        ]
    )
    errors = [(a.get("id"), a["error"]["code"]) for a in answers if "error" in a]
    assert errors == [
        (None, -32700),
        (None, -32600),
        (2, -32600),
        (3, -32601),
        (None, -32600),
        (5, -32602),
        (None, -32600),
    ]
    assert answers[-1] == {"jsonrpc": "2.0", "id": 7, "result": {}}


def test_a_request_before_initialize_is_refused_and_ping_is_not() -> None:
    answers = exchange([request(1, "tools/list"), request(2, "ping")])
    assert answers == [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32602, "message": "Invalid request parameters", "data": ""},
        },
        {"jsonrpc": "2.0", "id": 2, "result": {}},
    ]


def test_the_stdio_adapter_does_not_load_the_mcp_sdk() -> None:
    """The SDK (its client, HTTP server and pydantic models) is what made each stdio adapter hold ~80 MB."""
    code = "import sys, json, mcp_adapter.cli, mcp_adapter.stdio; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert not {"mcp", "mcp_types", "pydantic", "starlette", "anyio"} & set(
        json.loads(loaded.stdout.replace("'", '"'))
    )


async def test_a_cancelled_call_stops_and_is_never_answered(iris: Iris) -> None:
    adapter = await asyncio.create_subprocess_exec(
        *adapter_argv(iris.target),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "IRIS_API_KEY": iris.admin_key},
    )
    assert adapter.stdin is not None and adapter.stdout is not None
    try:
        async with asyncio.timeout(60):
            adapter.stdin.write(INITIALIZE)
            call = {"name": "ask_message", "arguments": {"toTeam": "alpha", "message": "slow 30 300"}}
            adapter.stdin.write(request(2, "tools/call", **call, _meta={"progressToken": "p"}))
            first = json.loads(await adapter.stdout.readline())
            assert first["id"] == 1
            progress = json.loads(await adapter.stdout.readline())
            assert progress["method"] == "notifications/progress"
            assert progress["params"]["progressToken"] == "p" and progress["params"]["progress"] == 1
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}
            adapter.stdin.write(json.dumps(cancel).encode() + b"\n" + request(3, "ping"))
            while (message := json.loads(await adapter.stdout.readline())).get("id") != 3:
                assert "id" not in message  # progress sent before the cancel arrived, never an answer to 2
            await asyncio.sleep(1)  # a late answer to the cancelled call would be here by now
            adapter.stdin.close()
            rest = [json.loads(line) for line in (await adapter.stdout.read()).splitlines()]
            assert all("id" not in message for message in rest)
            assert await adapter.wait() == 0
    finally:
        if adapter.returncode is None:
            adapter.kill()
            await adapter.wait()
