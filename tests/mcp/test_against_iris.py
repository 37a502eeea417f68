"""The adapter against a real Iris (offline model): answers, progress, timeouts and errors as tool errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import mcp_types as types

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import MCP_TOOLS, Iris, start_iris, write_config
from tests.mcp.conftest import ProgressLog, adapter_client, http_client


def body(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result.content
    return result.structured_content


async def test_ask_message_answers_as_the_adapters_team_with_progress_while_it_streams(iris: Iris) -> None:
    progress = ProgressLog()
    async with adapter_client(
        iris.channel, api_key=iris.admin_key, from_team="web", heartbeat_s=0.2
    ) as client:
        async with asyncio.timeout(60):
            result = await client.call_tool(
                "ask_message", {"toTeam": "alpha", "message": "slow 3 600"}, progress_callback=progress
            )
    reply = body(result)
    assert not result.is_error
    assert reply["status"] == "completed" and reply["response"] == "chunk 1 chunk 2 chunk 3 "
    assert reply["fromTeam"] == "web" and reply["toTeam"] == "alpha" and reply["messageId"].startswith("msg_")
    # The text arrives as progress, in order, and silences longer than the heartbeat are filled.
    chunks = [m for m in progress.messages if m.startswith("chunk ")]
    assert chunks == ["chunk 1 ", "chunk 2 ", "chunk 3 "]
    assert any(m.startswith("still working") for m in progress.messages)
    values = [p for p, _ in progress.received]
    assert values == sorted(set(values))  # strictly increasing, as MCP requires
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team="web", team="alpha"))
    assert status.awake  # the pair web -> alpha is the one that answered


async def test_send_message_with_a_timeout_replies_timeout_and_the_turn_goes_on(iris: Iris) -> None:
    async with adapter_client(iris.channel, api_key=iris.admin_key, from_team="web") as client:
        result = await client.call_tool(
            "send_message", {"toTeam": "alpha", "message": "slow 6 200", "timeout": 500}
        )
        assert body(result)["status"] == "timeout"
        async with asyncio.timeout(30):
            while True:
                report = body(await client.call_tool("session_report", {"team": "alpha"}))
                if report["entries"][-1]["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
    assert report["entries"][-1]["messageId"] == body(result)["messageId"]


async def test_quick_message_then_report_and_the_utility_tools(iris: Iris) -> None:
    async with adapter_client(iris.channel, api_key=iris.admin_key, from_team="web") as client:
        queued = body(await client.call_tool("quick_message", {"toTeam": "beta", "message": "say noted"}))
        assert queued["status"] == "async"
        teams = body(await client.call_tool("list_teams", {}))
        date = body(await client.call_tool("get_date", {}))
        logs = body(await client.call_tool("get_logs", {"level": ["info", "warn"], "format": "raw"}))
    assert [t["name"] for t in teams["teams"]] == ["alpha", "beta", "gamma"]
    assert isinstance(date["timestamp"], int) and date["iso"].endswith("Z")
    assert logs["count"] == len(logs["logs"])


async def test_iris_errors_come_back_as_tool_errors_with_the_standard_body(iris: Iris) -> None:
    async with adapter_client(iris.channel, api_key=iris.admin_key) as client:
        unknown_team = await client.call_tool("team_wake", {"team": "nobody"})
        bad_name = await client.call_tool("ask_message", {"toTeam": "../etc", "message": "hi"})
    assert unknown_team.is_error and body(unknown_team)["error"] == "TeamNotFoundError"
    assert body(unknown_team)["code"] == "NOT_FOUND" and body(unknown_team)["statusCode"] == 404
    assert bad_name.is_error and body(bad_name)["error"] == "ValidationError"


async def test_a_call_without_a_valid_key_is_a_tool_error_not_a_crash(iris: Iris) -> None:
    async with grpc.aio.insecure_channel(iris.target) as keyless:  # the harness's channel adds the admin key
        async with adapter_client(keyless, api_key="iris_sk_live_" + "x" * 40) as client:
            unknown = await client.call_tool("list_teams", {})
            still_serving = await client.list_tools()
        async with adapter_client(keyless, api_key="") as client:
            missing = await client.call_tool("ask_message", {"toTeam": "alpha", "message": "hi"})
    for result in (unknown, missing):
        assert result.is_error
        assert body(result)["error"] == "UnauthorizedError" and body(result)["code"] == "UNAUTHENTICATED"
    assert len(still_serving.tools) == len(MCP_TOOLS)


async def test_a_key_without_the_permission_is_forbidden(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="reader", permissions=["status:read"]))
    async with (
        grpc.aio.insecure_channel(iris.target) as keyless,
        adapter_client(keyless, api_key=created.key) as client,
    ):
        allowed = await client.call_tool("list_teams", {})
        refused = await client.call_tool("ask_message", {"toTeam": "alpha", "message": "hi"})
    assert not allowed.is_error
    assert refused.is_error and body(refused)["error"] == "ForbiddenError"


async def test_streamable_http_at_mcp_on_the_gateway_port(tmp_path: Path) -> None:
    async with start_iris(tmp_path, http=True) as iris:
        url = f"http://127.0.0.1:{iris.running.http_port}/mcp"
        headers = {"Authorization": f"Bearer {iris.admin_key}", "X-Iris-From-Team": "ci"}
        progress = ProgressLog()
        async with http_client(url, headers) as client:
            listed = await client.list_tools()
            result = await client.call_tool(
                "ask_message", {"toTeam": "beta", "message": "chunks a|b|c"}, progress_callback=progress
            )
        async with http_client(url, {"X-API-Key": iris.admin_key}) as client:
            as_key_name = body(
                await client.call_tool("send_message", {"toTeam": "beta", "message": "say hi"})
            )
        async with http_client(url, {}) as client:
            refused = await client.call_tool("list_teams", {})
    assert len(listed.tools) == len(MCP_TOOLS)
    assert body(result)["response"] == "abc" and body(result)["fromTeam"] == "ci"
    assert [m for m in progress.messages if m in "abc"] == ["a", "b", "c"]
    assert as_key_name["fromTeam"] == "admin"  # no X-Iris-From-Team: Iris uses the key's name
    assert refused.is_error and body(refused)["error"] == "UnauthorizedError"


async def test_a_turn_that_fails_inside_iris_is_a_tool_error_not_an_answer(tmp_path: Path) -> None:
    async with start_iris(tmp_path, write_config(tmp_path, settings={"turnTimeout": 800})) as iris:
        async with adapter_client(iris.channel, api_key=iris.admin_key, from_team="web") as client:
            result = await client.call_tool("ask_message", {"toTeam": "alpha", "message": "slow 10 300"})
    assert result.is_error
    assert body(result)["error"] == "TimeoutError" and body(result)["code"] == "DEADLINE_EXCEEDED"
    assert "turnTimeout" in body(result)["message"]


async def test_over_http_a_credential_grpc_cannot_carry_is_refused_like_rest_refuses_it(
    tmp_path: Path,
) -> None:
    async with start_iris(tmp_path, http=True) as iris:
        url = f"http://127.0.0.1:{iris.running.http_port}/mcp"
        async with http_client(
            url, {b"authorization": "Bearer iris_sk_live_\xe9".encode("latin-1")}
        ) as client:
            result = await client.call_tool("list_teams", {})
    assert result.is_error
    assert body(result)["error"] == "UnauthorizedError" and body(result)["details"] == {
        "header": "authorization"
    }
