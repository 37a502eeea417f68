"""Teams talk to each other: team A's real Claude Code calls Iris's MCP tools to reach team B's Claude Code.

Claude Code -> MCP adapter -> gRPC -> pool -> Claude Code and back. The offline model plays team A's model:
``tool NAME JSON`` makes it call a tool, and it answers ``tool result: <text>`` with what the tool returned.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, live_processes_in, start_iris, write_config

ASK_BETA = 'tool mcp__iris__ask_message {"toTeam": "beta", "message": "say pong from beta"}'


def tool_result(response: str) -> Any:
    """The JSON a tool returned, from team A's final answer ``tool result: <text>``."""
    prefix = "tool result: "
    assert response.startswith(prefix), response
    return json.loads(response[len(prefix) :])


def command_line(pid: int) -> bytes:
    """What ``ps`` shows every user of the machine for ``pid``."""
    return Path(f"/proc/{pid}/cmdline").read_bytes()


async def tell(iris: Iris, team: str, message: str) -> list[pb.TellResponse]:
    request = pb.TellRequest(from_team="tester", to_team=team, message=message)
    async with asyncio.timeout(90):
        return [event async for event in iris.stub.Tell(request)]


@pytest.mark.parametrize("http", [True, False], ids=["mcp-over-http", "mcp-over-stdio"])
async def test_team_a_asks_team_b_through_iris_tools_and_gets_the_answer(tmp_path: Path, http: bool) -> None:
    # grantPermission "ask": any other tool would wait for a decision; Iris's own tools need none.
    config = write_config(tmp_path, teams={"alpha": {"sessionMcpEnabled": True, "grantPermission": "ask"}})
    async with start_iris(tmp_path, config, http=http) as iris:
        events = await tell(iris, "alpha", ASK_BETA)
        kinds = [e.WhichOneof("event") for e in events]
        assert "permission_request" not in kinds
        assert [e.tool_use.tool for e in events if e.HasField("tool_use")] == ["mcp__iris__ask_message"]
        complete = events[-1].complete
        assert complete.status == "completed", complete.error
        answer = tool_result(complete.response)
        assert answer["response"] == "pong from beta" and answer["status"] == "completed"
        assert answer["fromTeam"] == "alpha" and answer["toTeam"] == "beta"
        # The inner call is a turn of its own pair, alpha -> beta, in Iris's record.
        report = await iris.stub.SessionReport(pb.SessionReportRequest(team="beta", from_team="alpha"))
        assert [e.message_id for e in report.entries] == [answer["messageId"]]
        # The key alpha's Claude holds is in no command line that other users of the machine can read.
        alphas = live_processes_in(tmp_path / "teams" / "alpha")
        assert alphas
        for pid in alphas:
            assert b"iris_sk_" not in command_line(pid)
    assert live_processes_in(tmp_path / "teams") == []  # Claude processes and any stdio adapters are gone


async def test_a_teams_key_holds_only_the_permissions_its_config_grants(tmp_path: Path) -> None:
    teams = {"alpha": {"sessionMcpEnabled": True, "mcpPermissions": ["status:read"]}}
    async with start_iris(tmp_path, write_config(tmp_path, teams=teams), http=True) as iris:
        listed = tool_result(
            (await tell(iris, "alpha", "tool mcp__iris__list_teams {}"))[-1].complete.response
        )
        refused = (await tell(iris, "alpha", ASK_BETA))[-1].complete.response
    assert [t["name"] for t in listed["teams"]] == ["alpha", "beta", "gamma"]
    assert "ForbiddenError" in refused and "team:tell" in refused


async def test_a_teams_key_calls_only_as_that_team(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"sessionMcpEnabled": True}})
    async with start_iris(tmp_path, config, http=True) as iris:
        await tell(iris, "beta", "say a secret for tester")  # the pair tester -> beta has a conversation
        peek = 'tool mcp__iris__session_report {"team": "beta", "fromTeam": "tester"}'
        refused = (await tell(iris, "alpha", peek))[-1].complete.response
        own = tool_result(
            (await tell(iris, "alpha", 'tool mcp__iris__session_report {"team": "beta"}'))[
                -1
            ].complete.response
        )
    assert "ForbiddenError" in refused and "secret" not in refused
    assert own["fromTeam"] == "alpha" and own["entries"] == []


async def test_a_team_without_session_mcp_has_no_iris_tools(iris: Iris) -> None:
    response = (await tell(iris, "beta", "tool mcp__iris__list_teams {}"))[-1].complete.response
    # Claude Code refused the call itself, having no such tool: not a call that reached Iris and failed.
    assert response.startswith("tool result: <tool_use_error>")
    assert "No such tool available: mcp__iris__list_teams" in response
    assert '"teams"' not in response


async def test_a_persisted_turn_run_again_after_a_restart_has_the_iris_tools(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"sessionMcpEnabled": True}})
    list_teams = "tool mcp__iris__list_teams {}"
    async with start_iris(tmp_path, config, http=True) as iris:
        await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="tester", to_team="alpha", message="slow 40 100", timeout=-1)
        )
        kept = await iris.stub.SendMessage(  # queued behind the slow turn when the server stops
            pb.SendMessageRequest(
                from_team="tester", to_team="alpha", message=list_teams, timeout=-1, persist=True
            )
        )
    async with start_iris(tmp_path, config, http=True) as iris:
        async with asyncio.timeout(60):
            while True:
                report = await iris.stub.SessionReport(
                    pb.SessionReportRequest(team="alpha", from_team="tester")
                )
                entry = next(e for e in report.entries if e.message_id == kept.message_id)
                if entry.status == "completed":
                    break
                await asyncio.sleep(0.05)
    assert [t["name"] for t in tool_result(entry.response)["teams"]] == ["alpha", "beta", "gamma"]


def ask(team: str, message: str) -> str:
    """The offline model's script that makes a team's Claude ask ``team`` ``message``."""
    return "tool mcp__iris__ask_message " + json.dumps({"toTeam": team, "message": message})


async def test_a_question_that_would_wait_on_itself_is_refused_at_once_not_hung(tmp_path: Path) -> None:
    teams = {name: {"sessionMcpEnabled": True} for name in ("alpha", "beta")}
    async with start_iris(tmp_path, write_config(tmp_path, teams=teams), http=True) as iris:
        # tester -> alpha; alpha asks beta; beta asks alpha; alpha asks beta again, whose pair alpha -> beta
        # is busy with the turn waiting on this very chain.
        script = ask("beta", ask("alpha", ask("beta", "say too deep")))
        complete = (await tell(iris, "alpha", script))[-1].complete
    assert complete.status == "completed"
    assert "PreconditionFailedError" in complete.response and "wait on itself" in complete.response
    assert "alpha -> beta -> alpha" in complete.response
