"""The tool list, as an MCP client sees it: the original iris-mcp's 17 tools, then the v1 API's, with their
parameters and required ones."""

from __future__ import annotations

import grpc
import pytest

from mcp_adapter.tools import iris_tools
from tests.mcp.conftest import adapter_client

# The original iris-mcp's tool reference: every tool's parameters, and the required ones. fromTeam is
# required there; here it defaults to the adapter's own team, so a team's Claude can leave it out.
ORIGINAL_TOOLS: dict[str, tuple[set[str], set[str]]] = {
    "send_message": (
        {"toTeam", "message", "fromTeam", "timeout", "persist", "ttlDays"},
        {"toTeam", "message"},
    ),
    "ask_message": (
        {"toTeam", "message", "fromTeam", "timeout", "persist", "ttlDays"},
        {"toTeam", "message"},
    ),
    "quick_message": ({"toTeam", "message", "fromTeam"}, {"toTeam", "message"}),
    "session_cancel": ({"team", "fromTeam"}, {"team"}),
    "session_reboot": ({"toTeam", "fromTeam"}, {"toTeam"}),
    "session_delete": ({"toTeam", "fromTeam"}, {"toTeam"}),
    "session_fork": ({"toTeam", "fromTeam"}, {"toTeam"}),
    "session_report": ({"team", "fromTeam"}, {"team"}),
    "team_wake": ({"team", "fromTeam"}, {"team"}),
    "team_launch": ({"team", "fromTeam"}, {"team"}),
    "team_sleep": ({"team", "fromTeam", "force"}, {"team"}),
    "team_wake_all": ({"fromTeam", "parallel"}, set()),
    "team_status": ({"fromTeam", "team", "includeNotifications"}, set()),
    "list_teams": (set(), set()),
    "get_logs": ({"logs_since", "storeName", "format", "level", "getAllStores"}, set()),
    "get_date": (set(), set()),
    "permissions__approve": ({"tool_name", "input", "reason"}, set()),
}

# Tools of the programmatic v1 API, which the original iris-mcp's MCP server did not have.
V1_TOOLS: dict[str, tuple[set[str], set[str]]] = {
    "ask": ({"team", "question", "timeout", "context", "fromTeam"}, {"team", "question"}),
    "execute": (
        {"team", "task", "priority", "callback", "idempotencyKey", "timeout", "fromTeam", "ttlDays"},
        {"team", "task"},
    ),
    "get_message": ({"messageId"}, {"messageId"}),
    "cancel_message": ({"messageId"}, {"messageId"}),
}

# Parameters Iris adds beyond the original iris-mcp's: answering a pending "ask" prompt, keeping a quick
# message across a restart, and paging a session report (see the contract).
EXTRA = {
    "permissions__approve": {"requestId", "decision", "fromTeam", "tool_use_id"},
    "quick_message": {"persist", "ttlDays"},
    "session_report": {"pageSize", "pageToken"},
}


async def test_an_mcp_client_lists_the_original_17_tools_and_the_v1_ones_with_their_parameters() -> None:
    async with (
        grpc.aio.insecure_channel("127.0.0.1:1") as channel,
        adapter_client(channel, api_key="") as client,
    ):
        listed = await client.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert list(tools) == [*ORIGINAL_TOOLS, *V1_TOOLS]
    for name, (params, required) in {**ORIGINAL_TOOLS, **V1_TOOLS}.items():
        schema = tools[name].input_schema
        assert schema["type"] == "object"
        assert set(schema["properties"]) == params | EXTRA.get(name, set()), name
        assert set(schema.get("required", [])) == required, name
        assert schema["additionalProperties"] is False
        assert tools[name].description, name
        assert all(p.get("description") for p in schema["properties"].values()), name


def test_descriptions_are_the_original_designs_words() -> None:
    described = {tool.name: tool.description for tool in iris_tools()}
    assert described["send_message"].startswith("Send a message to a team and wait for response.")
    assert described["quick_message"].startswith("Quickly send a message to a team without waiting")
    assert described["team_wake_all"] == (
        "Wake up all configured teams sequentially. Sounds the air-raid siren and brings all teams online."
    )


def test_schemas_are_derived_from_the_request_messages() -> None:
    tools = {tool.name: tool for tool in iris_tools()}
    send = tools["send_message"].input_schema["properties"]
    assert send["timeout"]["type"] == "integer" and send["persist"]["type"] == "boolean"
    # The description is the contract's comment on SendMessageRequest.timeout.
    assert "-1 returns at once" in send["timeout"]["description"]
    level = tools["get_logs"].input_schema["properties"]["level"]
    assert level["anyOf"] == [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    assert tools["permissions__approve"].input_schema["properties"]["input"]["type"] == "object"
    assert tools["send_message"].streamed_by is not None and tools["send_message"].streamed_by.name == "Tell"
    assert tools["quick_message"].streamed_by is None


@pytest.mark.parametrize("name", ["send_message", "ask_message"])
def test_streamed_tools_stream_through_an_rpc_with_every_field_of_theirs(name: str) -> None:
    tool = {t.name: t for t in iris_tools()}[name]
    assert tool.streamed_by is not None and tool.streamed_by.server_streaming
    theirs = set(tool.streamed_by.input_type.fields_by_name)
    assert set(tool.method.input_type.fields_by_name) <= theirs
