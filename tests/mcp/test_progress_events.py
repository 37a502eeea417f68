"""MCP progress for a turn's tool use and its permission request, as the SDK's client sees send_message."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import mcp_types as types

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, start_iris, write_config
from tests.mcp.conftest import ProgressLog, adapter_client

ASKED = re.compile(r"waiting for permission to use (\S+) \(requestId (\S+)\)")


def bash_write(file_name: str, text: str) -> str:
    """A script line making the offline model call Bash to write ``text`` into ``file_name``."""
    return "tool Bash " + json.dumps({"command": f"echo {text} > {file_name}", "description": "write a file"})


def body(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result.content
    return result.structured_content


async def test_a_turn_that_uses_a_tool_reports_using_it_as_progress(iris: Iris) -> None:
    progress = ProgressLog()
    async with adapter_client(iris.channel, api_key=iris.admin_key, from_team="web") as client:
        async with asyncio.timeout(60):
            result = await client.call_tool(
                "send_message",
                {"toTeam": "alpha", "message": bash_write("used.txt", "tool-ran")},
                progress_callback=progress,
            )
    assert not result.is_error
    assert body(result)["status"] == "completed" and body(result)["response"].startswith("tool result")
    messages = progress.messages
    assert "using Bash" in messages
    assert messages[0] == "alpha accepted the message"
    assert messages.index("using Bash") < messages.index("done: completed") == len(messages) - 1
    assert not any(ASKED.match(m) for m in messages)  # grantPermission yes: nothing is asked
    assert (iris.config.teams["alpha"].path / "used.txt").read_text().strip() == "tool-ran"


async def test_an_ask_team_announces_the_permission_request_as_progress_and_an_approval_finishes_the_turn(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, teams={"alpha": {"grantPermission": "ask"}})
    async with start_iris(tmp_path, config) as iris:
        asked: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        log = ProgressLog()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            await log(progress, total, message)
            if found := ASKED.match(message or ""):
                asked.put_nowait((found[1], found[2]))

        async def approve_first_request() -> pb.PermissionsApproveResponse:
            tool, request_id = await asked.get()
            assert tool == "Bash"
            return await iris.stub.PermissionsApprove(
                pb.PermissionsApproveRequest(request_id=request_id, decision="allow", from_team="web")
            )

        async with adapter_client(iris.channel, api_key=iris.admin_key, from_team="web") as client:
            async with asyncio.timeout(60), asyncio.TaskGroup() as group:
                approval = group.create_task(approve_first_request())
                call = group.create_task(
                    client.call_tool(
                        "send_message",
                        {"toTeam": "alpha", "message": bash_write("asked.txt", "approved-over-mcp")},
                        progress_callback=on_progress,
                    )
                )
        result = call.result()
        team = iris.config.teams["alpha"].path
    assert approval.result().behavior == "allow"
    assert not result.is_error
    assert body(result)["status"] == "completed" and body(result)["response"].startswith("tool result")
    announcements = [m for m in log.messages if ASKED.match(m)]
    assert len(announcements) == 1 and re.search(r"requestId perm_\S+\)$", announcements[0])
    messages = log.messages
    assert messages.index("using Bash") < messages.index(announcements[0]) < messages.index("done: completed")
    assert (team / "asked.txt").read_text().strip() == "approved-over-mcp"
