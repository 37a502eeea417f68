"""Key and audit administration from the command line, and the audit rows of the session and wake RPCs."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import astuple
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import Iris, audit_entries, start_iris, wait_until_running, with_key, write_config


async def iris_cli(*args: str, home: Path, via_env: bool = False) -> tuple[int, str, str]:
    """Run ``iris ARGS`` on ``home`` (``$IRIS_HOME`` with ``via_env``, else ``--home``): code, out, err."""
    env = dict(os.environ)
    env.pop("IRIS_HOME", None)
    if via_env:
        env["IRIS_HOME"] = str(home)
    else:
        args = (*args, "--home", str(home))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iris_app.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await child.communicate()
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


def audit_rows(iris: Iris) -> list[tuple[str, ...]]:
    return [astuple(entry) for entry in audit_entries(iris.home)]


async def list_teams_with(iris: Iris, key: str) -> pb.ListTeamsResponse:
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(key)) as channel:
        return await iris_pb2_grpc.IrisStub(channel).ListTeams(pb.ListTeamsRequest(), timeout=30)


# --- iris key list / revoke, iris audit tail ---------------------------------------------------------------


async def test_key_list_shows_a_created_keys_record_but_never_the_key(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(
        pb.CreateApiKeyRequest(name="listed-bot", permissions=["status:read", "team:tell"])
    )
    code, out, err = await iris_cli("key", "list", home=iris.home, via_env=True)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if "listed-bot" in line]
    assert created.info.id in line and "active" in line and "status:read,team:tell" in line
    assert any(" admin " in line for line in out.splitlines())
    for secret in (created.key, created.key[13:], iris.admin_key, iris.admin_key[13:]):
        assert secret not in out and secret not in err


async def test_key_revoke_makes_the_key_refused_by_the_running_server(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="doomed", permissions=["status:read"]))
    assert (
        await list_teams_with(iris, created.key)
    ).total_teams == 3  # works, and is now in the verify cache
    code, _, err = await iris_cli("key", "revoke", "doomed", home=iris.home)
    assert code == 0 and "Revoked key doomed" in err
    refused: grpc.aio.AioRpcError | None = None
    async with asyncio.timeout(10):  # a verified key may be reused for up to 1 s
        while refused is None:
            try:
                await list_teams_with(iris, created.key)
            except grpc.aio.AioRpcError as exc:
                refused = exc
            await asyncio.sleep(0.05)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (refused.details() or "")
    _, listed, _ = await iris_cli("key", "list", home=iris.home)
    assert "revoked" in next(line for line in listed.splitlines() if "doomed" in line)


async def test_key_revoke_of_an_unknown_name_fails_with_a_message(iris: Iris) -> None:
    code, out, err = await iris_cli("key", "revoke", "nobody-by-that-name", home=iris.home)
    assert code != 0 and out == ""
    assert err.startswith("iris: ") and "Traceback" not in err


async def test_audit_tail_since_shows_the_recent_rows_and_leaves_older_ones_out(iris: Iris) -> None:
    await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="tail-bot", permissions=["status:read"]))
    await iris.stub.SendMessage(pb.SendMessageRequest(from_team="c", to_team="alpha", message="say audited"))
    await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="c"))
    async with asyncio.timeout(10):  # rows of answered calls are written just after the reply
        while not any(row[2] == "TeamSleep" for row in audit_rows(iris)):
            await asyncio.sleep(0.02)
    with sqlite3.connect(iris.home / "audit.db") as db:  # a row from two hours ago
        db.execute(
            "INSERT INTO audit (time, event, key_name, method, team, outcome) VALUES (?, ?, ?, ?, ?, ?)",
            (int(time.time() * 1000) - 2 * 3600 * 1000, "call", "admin", "OldCall", "beta", "OK"),
        )
    code, out, err = await iris_cli("audit", "tail", "--since", "1h", home=iris.home)
    code_all, out_all, _ = await iris_cli("audit", "tail", home=iris.home, via_env=True)
    assert code == 0 and code_all == 0, err
    lines = out.splitlines()
    assert any("key_created" in line and "key=tail-bot" in line for line in lines)
    for method in ("SendMessage", "TeamSleep"):
        assert any(
            f"method={method}" in line and "team=alpha" in line and "key=admin" in line and " OK " in line
            for line in lines
        ), out
    assert "OldCall" not in out
    assert "method=OldCall" in out_all  # the row exists; only --since left it out
    assert iris.admin_key not in out and "say audited" not in out


# --- audit rows of the session and wake RPCs ---------------------------------------------------------------


async def test_each_session_and_wake_call_writes_one_audit_row_with_method_team_key_and_outcome(
    tmp_path: Path,
) -> None:
    async with start_iris(tmp_path, write_config(tmp_path)) as iris:
        spawn = iris.home / "scripts" / "spawn.sh"
        spawn.parent.mkdir(parents=True, exist_ok=True)
        spawn.write_text("#!/bin/sh\nexit 0\n")
        spawn.chmod(0o755)
        created = await iris.stub.CreateApiKey(
            pb.CreateApiKeyRequest(
                name="operator",
                permissions=["team:wake", "team:cancel", "team:clear", "team:fork", "team:impersonate"],
            )
        )
        queued = await iris.stub.QuickMessage(
            pb.QuickMessageRequest(from_team="ops", to_team="alpha", message="slow 40 250")
        )
        assert queued.status == "async"
        await wait_until_running(iris, "alpha", "ops")
        async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
            op = iris_pb2_grpc.IrisStub(channel)
            cancelled = await op.SessionCancel(
                pb.SessionCancelRequest(team="alpha", from_team="ops"), timeout=30
            )
            woke = await op.TeamWake(pb.TeamWakeRequest(team="beta", from_team="ops"), timeout=60)
            forked = await op.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team="ops"), timeout=60)
            with pytest.raises(grpc.aio.AioRpcError) as no_session:
                await op.SessionFork(pb.SessionForkRequest(to_team="gamma", from_team="ops"), timeout=60)
            await op.SessionReboot(pb.SessionRebootRequest(to_team="alpha", from_team="ops"), timeout=60)
            await op.SessionDelete(pb.SessionDeleteRequest(to_team="beta", from_team="ops"), timeout=60)
        assert cancelled.cancelled and woke.status and forked.success
        assert no_session.value.code() == grpc.StatusCode.NOT_FOUND
        expected = Counter(
            [
                ("call", "operator", "SessionCancel", "alpha", "OK", ""),
                ("call", "operator", "TeamWake", "beta", "OK", ""),
                ("call", "operator", "SessionFork", "alpha", "OK", ""),
                ("call", "operator", "SessionFork", "gamma", "NOT_FOUND", ""),
                ("call", "operator", "SessionReboot", "alpha", "OK", ""),
                ("call", "operator", "SessionDelete", "beta", "OK", ""),
            ]
        )
        async with asyncio.timeout(10):  # rows are written just after each reply
            while sum(1 for row in audit_rows(iris) if row[:2] == ("call", "operator")) < len(expected):
                await asyncio.sleep(0.02)
        # One more audited call: any late duplicate of the rows above would be written before its row.
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team="gamma", from_team="ops"))
        async with asyncio.timeout(10):
            while not any(row[2] == "TeamSleep" and row[3] == "gamma" for row in audit_rows(iris)):
                await asyncio.sleep(0.02)
        rows = audit_rows(iris)
    assert Counter(row for row in rows if row[:2] == ("call", "operator")) == expected
    assert ("call", "admin", "QuickMessage", "alpha", "OK", "") in rows
