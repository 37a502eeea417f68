"""Tool permissions over gRPC: the original policy, grantPermission yes/no, "ask" answered (or not)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, error_reason, start_iris, write_config

CALLER = "caller"


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def bash_write(file_name: str, text: str) -> str:
    """A script line making the offline model call Bash to write ``text`` into ``file_name``."""
    return "tool Bash " + json.dumps({"command": f"echo {text} > {file_name}", "description": "write a file"})


@pytest.fixture
async def asking(tmp_path: Path) -> AsyncIterator[Iris]:
    """An Iris whose team alpha has grantPermission "ask" (with the default, long, permission timeout)."""
    config = write_config(tmp_path, teams={"alpha": {"grantPermission": "ask"}})
    async with start_iris(tmp_path, config) as iris:
        yield iris


OnRequest = Callable[[pb.TellPermissionRequest], Awaitable[None]]


async def tell(iris: Iris, message: str, on_request: OnRequest | None = None) -> list[pb.TellResponse]:
    """Follow a Tell stream to its end (bounded), answering each permission request with ``on_request``."""
    events: list[pb.TellResponse] = []
    async with asyncio.timeout(60):
        async for event in iris.stub.Tell(pb.TellRequest(from_team=CALLER, to_team="alpha", message=message)):
            events.append(event)
            if event.WhichOneof("event") == "permission_request" and on_request is not None:
                await on_request(event.permission_request)
    assert events[-1].WhichOneof("event") == "complete"
    return events


def permission_requests(events: list[pb.TellResponse]) -> list[pb.TellPermissionRequest]:
    return [e.permission_request for e in events if e.WhichOneof("event") == "permission_request"]


async def answer(iris: Iris, request_id: str, decision: str) -> pb.PermissionsApproveResponse:
    return await iris.stub.PermissionsApprove(
        pb.PermissionsApproveRequest(request_id=request_id, decision=decision, from_team=CALLER)
    )


# --- the original iris-mcp's policy ----------------------------------------------------------------------


async def test_policy_allows_iris_tools_with_their_input_unchanged(iris: Iris) -> None:
    tool_input = struct({"team": "beta", "nested": {"n": 1, "list": ["a", True]}})
    decision = await iris.stub.PermissionsApprove(
        pb.PermissionsApproveRequest(tool_name="mcp__iris__list_teams", input=tool_input, reason="see teams")
    )
    assert decision.behavior == "allow"
    assert decision.updated_input == tool_input


async def test_policy_denies_every_other_tool_without_an_input(iris: Iris) -> None:
    decision = await iris.stub.PermissionsApprove(
        pb.PermissionsApproveRequest(tool_name="Bash", input=struct({"command": "rm -rf /"}))
    )
    assert decision.behavior == "deny" and decision.message
    assert not decision.HasField("updated_input")


async def test_policy_without_a_tool_name_or_request_id_is_invalid(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await iris.stub.PermissionsApprove(pb.PermissionsApproveRequest(reason="no tool named"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused.value) == "ValidationError"


# --- grantPermission "ask" ---------------------------------------------------------------------------------


async def test_ask_announces_the_tool_and_an_allow_lets_it_run(asking: Iris) -> None:
    team = asking.config.teams["alpha"].path
    answers: list[pb.PermissionsApproveResponse] = []
    asked_at = int(time.time() * 1000)

    async def allow(request: pb.TellPermissionRequest) -> None:
        answers.append(await answer(asking, request.request_id, "allow"))

    events = await tell(asking, bash_write("allowed.txt", "asked-and-allowed"), allow)

    [request] = permission_requests(events)
    assert request.tool == "Bash" and request.request_id
    assert request.input["command"] == "echo asked-and-allowed > allowed.txt"
    assert request.expires_at > asked_at
    assert [a.behavior for a in answers] == ["allow"]
    complete = events[-1].complete
    assert complete.status == "completed"
    assert "tool result" in complete.response
    assert (team / "allowed.txt").read_text().strip() == "asked-and-allowed"


async def test_ask_with_a_deny_keeps_the_tool_from_running_and_the_turn_completes(asking: Iris) -> None:
    team = asking.config.teams["alpha"].path
    answers: list[pb.PermissionsApproveResponse] = []

    async def deny(request: pb.TellPermissionRequest) -> None:
        answers.append(await answer(asking, request.request_id, "deny"))

    events = await tell(asking, bash_write("denied.txt", "should-not-exist"), deny)

    assert len(permission_requests(events)) == 1
    assert [a.behavior for a in answers] == ["deny"]
    complete = events[-1].complete
    assert complete.status == "completed"
    assert complete.response.startswith("tool result") and "denied by the caller" in complete.response
    assert not (team / "denied.txt").exists()


async def test_a_decision_other_than_allow_or_deny_is_invalid_and_the_request_stays_open(
    asking: Iris,
) -> None:
    team = asking.config.teams["alpha"].path
    refusals: list[grpc.aio.AioRpcError] = []

    async def waver_then_allow(request: pb.TellPermissionRequest) -> None:
        try:
            await answer(asking, request.request_id, "maybe")
        except grpc.aio.AioRpcError as exc:
            refusals.append(exc)
        await answer(asking, request.request_id, "allow")

    await tell(asking, bash_write("wavered.txt", "finally"), waver_then_allow)

    [refused] = refusals
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(refused) == "ValidationError"
    assert (team / "wavered.txt").read_text().strip() == "finally"


async def test_answering_an_unknown_or_already_answered_request_is_not_found(asking: Iris) -> None:
    answered: list[str] = []

    async def allow(request: pb.TellPermissionRequest) -> None:
        await answer(asking, request.request_id, "allow")
        answered.append(request.request_id)

    await tell(asking, bash_write("once.txt", "once"), allow)

    for request_id in ("perm_doesnotexist", *answered):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await answer(asking, request_id, "allow")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(missing.value).endswith("NotFoundError")


async def test_ask_with_nobody_answering_is_denied_when_the_permission_timeout_ends(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, settings={"permissionTimeout": 300}, teams={"alpha": {"grantPermission": "ask"}}
    )
    async with start_iris(tmp_path, config) as iris:
        team = iris.config.teams["alpha"].path
        events = await tell(iris, bash_write("unanswered.txt", "nobody-said-yes"))

        [request] = permission_requests(events)
        complete = events[-1].complete
        assert complete.status == "completed"
        assert complete.response.startswith("tool result") and "denied" in complete.response
        assert not (team / "unanswered.txt").exists()
        with pytest.raises(grpc.aio.AioRpcError) as expired:
            await answer(iris, request.request_id, "allow")
        assert expired.value.code() == grpc.StatusCode.NOT_FOUND


# --- grantPermission "yes" / "no" --------------------------------------------------------------------------


async def granted_bash_write(tmp_path: Path, grant: str) -> tuple[list[pb.TellResponse], Path]:
    """Run a Bash write on team alpha with ``grant``; return the turn's events and the file it targets."""
    config = write_config(tmp_path, teams={"alpha": {"grantPermission": grant}})
    async with start_iris(tmp_path, config) as iris:
        events = await tell(iris, bash_write("granted.txt", f"grant-{grant}"))
        return events, iris.config.teams["alpha"].path / "granted.txt"


async def test_grant_permission_yes_lets_a_bash_write_run_without_asking(tmp_path: Path) -> None:
    events, written = await granted_bash_write(tmp_path, "yes")
    assert permission_requests(events) == []
    assert [e.tool_use.tool for e in events if e.WhichOneof("event") == "tool_use"] == ["Bash"]
    complete = events[-1].complete
    assert complete.status == "completed" and complete.response.startswith("tool result")
    assert "deni" not in complete.response
    assert written.read_text().strip() == "grant-yes"


async def test_grant_permission_no_denies_a_bash_write_without_asking(tmp_path: Path) -> None:
    events, written = await granted_bash_write(tmp_path, "no")
    assert permission_requests(events) == []
    assert [e.tool_use.tool for e in events if e.WhichOneof("event") == "tool_use"] == ["Bash"]
    complete = events[-1].complete
    assert complete.status == "completed" and complete.response.startswith("tool result")
    assert "No such tool available: Bash" in complete.response
    assert not written.exists()


@pytest.mark.parametrize(
    "call",
    [
        'tool Bash {"command": "id", "description": "who am I"}',
        'tool Bash {"command": "cat notes.txt", "description": "read notes"}',
        'tool Bash {"command": "ls", "description": "list"}',
        'tool Read {"file_path": "NOTES"}',
    ],
    ids=["bash-id", "bash-cat", "bash-ls", "read"],
)
async def test_grant_permission_no_allows_no_built_in_tool_not_even_a_read_only_one(
    tmp_path: Path, call: str
) -> None:
    config = write_config(tmp_path, teams={"alpha": {"grantPermission": "no"}})
    notes = tmp_path / "teams" / "alpha" / "notes.txt"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text("top-secret-notes\n")
    async with start_iris(tmp_path, config) as iris:
        events = await tell(iris, call.replace("NOTES", str(notes)))
    response = events[-1].complete.response
    tool = call.split()[1]
    assert f"No such tool available: {tool}" in response
    assert "top-secret-notes" not in response and "uid=" not in response and "notes.txt" not in response
