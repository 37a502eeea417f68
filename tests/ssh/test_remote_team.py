"""A remote team over a real sshd behaves as a local one: it answers and streams, keeps its conversation
across sleep and wake, is cancelled mid-turn, is put to sleep by force, asks permission, and uses Iris's MCP
tools through a reverse tunnel; no secret is on a command line, and nothing is left on the remote side."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    error_reason,
    live_processes_in,
    send,
    start_iris,
    status_of,
    tell_events,
    wait_until_running,
)
from tests.ssh.remote_team import REMOTE_TEAM, remote_config, remote_folder
from tests.ssh.sshd import Sshd, descendants, describe

CALLER = "caller"
_GONE_WITHIN_S = 30.0
"""How long the remote side may take to end once its connection is gone (the remote script's grace is 5 s)."""


async def wait_until_nothing_remote(root: Path, sshd: Sshd) -> None:
    """Wait (bounded) until sshd runs nothing for Iris and no process runs in the remote team's folder."""
    try:
        async with asyncio.timeout(_GONE_WITHIN_S):
            while descendants(sshd.pid) or live_processes_in(remote_folder(root)):
                await asyncio.sleep(0.05)
    except TimeoutError:
        left = sorted(set(descendants(sshd.pid)) | set(live_processes_in(remote_folder(root))))
        raise AssertionError(f"left on the remote side: {describe(left)}") from None


async def test_a_remote_team_answers_and_streams(
    tmp_path: Path, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_OWN_SECRET", "stays-here")  # Iris's environment, not the team's
    async with start_iris(tmp_path, remote_config(tmp_path, sshd)) as iris:
        reply = await send(iris, "say hello from afar", to=REMOTE_TEAM)
        assert (reply.status, reply.response) == ("completed", "hello from afar")
        events = await tell_events(
            iris, pb.TellRequest(from_team=CALLER, to_team=REMOTE_TEAM, message="chunks one|two|three")
        )
        assert [e.chunk.text for e in events if e.WhichOneof("event") == "chunk"] == ["one", "two", "three"]
        assert events[-1].complete.status == "completed"
        # Claude Code runs on the "remote" side: started by sshd, in the team's folder there.
        remote = live_processes_in(remote_folder(tmp_path))
        assert remote and set(remote) <= set(descendants(sshd.pid))
        # It got what Iris gives the team (the offline model, the child marker), not Iris's own variables.
        assert any(_has_env(pid, b"ANTHROPIC_BASE_URL=http://127.0.0.1:") for pid in remote)
        assert any(_has_env(pid, b"IRIS_CLAUDE_PROCESS=") for pid in remote)
        assert not any(_has_env(pid, b"IRIS_OWN_SECRET=") for pid in remote)
        # Iris's pid for it is the local relay's, which is no child of sshd.
        assert (await status_of(iris, REMOTE_TEAM)).pid not in descendants(sshd.pid)
    await wait_until_nothing_remote(tmp_path, sshd)


async def test_a_remote_team_keeps_its_conversation_across_sleep_and_wake(tmp_path: Path, sshd: Sshd) -> None:
    async with start_iris(tmp_path, remote_config(tmp_path, sshd)) as iris:
        assert (await send(iris, "remember plum", to=REMOTE_TEAM)).response == "ok, remembering plum"
        first = (await status_of(iris, REMOTE_TEAM)).pid
        slept = await iris.stub.TeamSleep(pb.TeamSleepRequest(team=REMOTE_TEAM, from_team=CALLER))
        assert slept.status == "asleep"
        await wait_until_nothing_remote(tmp_path, sshd)
        assert (await send(iris, "recall", to=REMOTE_TEAM)).response == "you told me: plum"
        assert (await status_of(iris, REMOTE_TEAM)).pid != first


async def test_a_remote_turn_is_cancelled_and_the_process_serves_the_next(tmp_path: Path, sshd: Sshd) -> None:
    async with start_iris(tmp_path, remote_config(tmp_path, sshd)) as iris:
        await send(iris, "say warm", to=REMOTE_TEAM)
        before = (await status_of(iris, REMOTE_TEAM)).pid
        waiting = asyncio.create_task(send(iris, "slow 100 100", to=REMOTE_TEAM, timeout_ms=0))
        await wait_until_running(iris, REMOTE_TEAM, CALLER)
        cancel = await iris.stub.SessionCancel(pb.SessionCancelRequest(team=REMOTE_TEAM, from_team=CALLER))
        reply = await asyncio.wait_for(waiting, 30)
        assert cancel.cancelled and reply.status == "cancelled"
        assert reply.response.count("chunk ") < 100
        assert (await send(iris, "say still here", to=REMOTE_TEAM)).response == "still here"
        assert (await status_of(iris, REMOTE_TEAM)).pid == before


async def test_force_sleep_mid_turn_ends_the_remote_claude(tmp_path: Path, sshd: Sshd) -> None:
    async with start_iris(tmp_path, remote_config(tmp_path, sshd)) as iris:
        await send(iris, "remember fig", to=REMOTE_TEAM)
        waiting = asyncio.create_task(send(iris, "slow 200 100", to=REMOTE_TEAM, timeout_ms=0))
        await wait_until_running(iris, REMOTE_TEAM, CALLER)
        forced = await iris.stub.TeamSleep(
            pb.TeamSleepRequest(team=REMOTE_TEAM, from_team=CALLER, force=True)
        )
        assert forced.status == "asleep"
        try:
            reply = await asyncio.wait_for(waiting, 30)
            assert reply.status in ("cancelled", "error")
        except grpc.aio.AioRpcError as failed:  # the killed process failed the turn
            assert error_reason(failed) == "ProcessError"
        await wait_until_nothing_remote(tmp_path, sshd)
        assert (await send(iris, "recall", to=REMOTE_TEAM)).response == "you told me: fig"


async def test_a_remote_team_asks_permission_and_runs_the_approved_tool(tmp_path: Path, sshd: Sshd) -> None:
    config = remote_config(tmp_path, sshd, grantPermission="ask")
    write = "tool Bash " + json.dumps({"command": "echo approved > answer.txt", "description": "write"})
    async with start_iris(tmp_path, config) as iris:
        events: list[pb.TellResponse] = []
        async with asyncio.timeout(90):
            async for event in iris.stub.Tell(
                pb.TellRequest(from_team=CALLER, to_team=REMOTE_TEAM, message=write)
            ):
                events.append(event)
                if event.WhichOneof("event") == "permission_request":
                    assert event.permission_request.tool == "Bash"
                    decision = pb.PermissionsApproveRequest(
                        request_id=event.permission_request.request_id, decision="allow", from_team=CALLER
                    )
                    await iris.stub.PermissionsApprove(decision)
        assert [e.WhichOneof("event") for e in events].count("permission_request") == 1
        assert events[-1].complete.status == "completed"
    assert (remote_folder(tmp_path) / "answer.txt").read_text() == "approved\n"


async def test_a_remote_claude_uses_iris_tools_through_a_reverse_tunnel(tmp_path: Path, sshd: Sshd) -> None:
    config = remote_config(tmp_path, sshd, sessionMcpEnabled=True)
    async with start_iris(tmp_path, config, http=True) as iris:
        ask = 'tool mcp__iris__ask_message {"toTeam": "beta", "message": "say pong from beta"}'
        events = await tell_events(
            iris, pb.TellRequest(from_team=CALLER, to_team=REMOTE_TEAM, message=ask), within_s=90
        )
        complete = events[-1].complete
        assert complete.status == "completed", complete.error
        prefix = "tool result: "
        assert complete.response.startswith(prefix), complete.response
        answer = json.loads(complete.response[len(prefix) :])
        assert answer["response"] == "pong from beta" and answer["fromTeam"] == REMOTE_TEAM
        # The session key and the model key travel inside the channel: no remote command line shows them.
        remote = descendants(sshd.pid)
        assert remote
        for pid in remote:
            cmdline = _command_line(pid)
            assert b"iris_sk_" not in cmdline and b"offline-model-key" not in cmdline
        # ...but the remote Claude Code has them in its environment.
        claude = [
            p for p in live_processes_in(remote_folder(tmp_path)) if _has_env(p, b"IRIS_SESSION_KEY=iris_sk_")
        ]
        assert claude


def _command_line(pid: int) -> bytes:
    """What ``ps`` shows every user of the (remote) machine for ``pid``."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _has_env(pid: int, prefix: bytes) -> bool:
    try:
        return any(v.startswith(prefix) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return False


async def test_an_unknown_host_key_is_refused_unless_strict_checking_is_off(
    tmp_path: Path, sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="iris_core.claude_process")
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    options = {
        "port": sshd.port,
        "identity": str(sshd.identity),
        "extraSshArgs": ["-o", f"UserKnownHostsFile={known}"],
    }
    config = remote_config(tmp_path, sshd, remoteOptions=options)
    async with start_iris(tmp_path, config) as iris:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send(iris, "say hi", to=REMOTE_TEAM)
        assert error_reason(refused.value) == "ProcessError"
    assert known.read_text() == ""
    said = [r.getMessage() for r in caplog.records if "iris launcher: ssh to" in r.getMessage()]
    assert said and "Host key verification failed" in said[0], said
    trusting = remote_config(tmp_path, sshd, remoteOptions={**options, "strictHostKeyChecking": False})
    async with start_iris(tmp_path, trusting) as iris:
        assert (await send(iris, "say hi", to=REMOTE_TEAM)).response == "hi"
    host_key = sshd.known_hosts.read_text().split()[2]
    assert host_key in known.read_text()  # accept-new recorded the new host's key


async def test_without_rest_a_remote_team_starts_without_iris_tools_or_their_key(
    tmp_path: Path, sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="iris_core.placement.ssh")
    config = remote_config(tmp_path, sshd, sessionMcpEnabled=True)
    async with start_iris(tmp_path, config) as iris:  # no REST: Iris's tools would be a local stdio adapter
        assert (await send(iris, "say hi", to=REMOTE_TEAM)).response == "hi"
        remote = live_processes_in(remote_folder(tmp_path))
        assert remote and not any(_has_env(pid, b"IRIS_SESSION_KEY=") for pid in remote)
    assert any("starts without the Iris MCP tools" in r.getMessage() for r in caplog.records)
