"""What survives a restart: sessions, reports, conversations and persisted messages; and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from contextlib import AsyncExitStack, closing
from pathlib import Path

import grpc

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import live_processes_in, start_iris, with_key, write_config


async def report(stub: iris_pb2_grpc.IrisAsyncStub, team: str = "alpha") -> pb.SessionReportResponse:
    return await stub.SessionReport(pb.SessionReportRequest(team=team, from_team="caller"))


async def persisted_and_running(stub: iris_pb2_grpc.IrisAsyncStub) -> pb.SendMessageResponse:
    """Send caller->alpha a persisted 4 s turn and wait (bounded) until it runs: a stop now cuts it off."""
    accepted = await stub.SendMessage(
        pb.SendMessageRequest(
            from_team="caller", to_team="alpha", message="slow 40 100", timeout=-1, persist=True
        )
    )
    async with asyncio.timeout(30):
        while (await report(stub)).entries[0].status != "running":
            await asyncio.sleep(0.02)
    return accepted


async def test_restarting_keeps_sessions_reports_and_the_conversation(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with start_iris(tmp_path, config) as iris:
        first = await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="alpha", message="remember kiwi")
        )
        before = await report(iris.stub)
    async with start_iris(tmp_path, config) as iris:
        after = await report(iris.stub)
        assert after.session_id == before.session_id and list(after.entries) == list(before.entries)
        assert after.entries[0].response == "ok, remembering kiwi"
        assert [e.WhichOneof("event") for e in after.entries[0].events][0] == "start"
        again = await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="alpha", message="recall")
        )
        assert again.session_id == first.session_id
        assert again.response == "you told me: kiwi"


async def test_a_persisted_message_cut_off_by_shutdown_runs_again_after_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with start_iris(tmp_path, config) as iris:
        lost = await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="beta", message="slow 40 100", timeout=-1)
        )
        kept = await persisted_and_running(iris.stub)
    async with start_iris(tmp_path, config) as iris:
        async with asyncio.timeout(60):
            while (entry := (await report(iris.stub)).entries[0]).status != "completed":
                assert entry.status in ("queued", "running")
                await asyncio.sleep(0.05)
        assert entry.message_id == kept.message_id
        assert entry.response == "".join(f"chunk {i} " for i in range(1, 41))
        assert entry.attempts == 2  # cut off once, run again on the session rewound to before it
        beta = (await report(iris.stub, "beta")).entries[0]
        assert beta.message_id == lost.message_id
        assert beta.status == "error" and "shut down" in beta.error


async def test_sigterm_stops_the_server_and_leaves_no_claude_process(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {**os.environ, "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1"}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iris_app.cli",
        "serve",
        "--config",
        str(config),
        "--home",
        str(tmp_path / "iris-home"),
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--offline-model",
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert server.stderr is not None
        async with asyncio.timeout(30):
            while not (
                match := re.search(rb"gRPC listening on 127\.0\.0\.1:(\d+)", await server.stderr.readline())
            ):
                pass
        key = (tmp_path / "iris-home" / "admin.key").read_text().strip()
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{int(match[1])}", interceptors=with_key(key)
        ) as channel:
            stub = iris_pb2_grpc.IrisStub(channel)
            await stub.TeamWakeAll(pb.TeamWakeAllRequest(from_team="caller", parallel=True))
            await stub.SendMessage(
                pb.SendMessageRequest(from_team="caller", to_team="alpha", message="slow 100 100", timeout=-1)
            )
            status = await stub.TeamStatus(pb.TeamStatusRequest(from_team="caller"))
        pids = [t.pid for t in status.teams]
        assert all(pids) and sorted(live_processes_in(tmp_path / "teams")) == sorted(pids)
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await server.stderr.read()
            assert await server.wait() == 0
        assert live_processes_in(tmp_path / "teams") == []
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def test_shutdown_answers_a_caller_waiting_on_a_running_turn(tmp_path: Path) -> None:
    from iris_app.app import running_iris
    from iris_core.config import load_config

    config = load_config(write_config(tmp_path))
    async with AsyncExitStack() as stack:
        run = await stack.enter_async_context(
            running_iris(config, tmp_path / "iris-home", host="127.0.0.1", grpc_port=0, offline_model=True)
        )
        key = (tmp_path / "iris-home" / "admin.key").read_text().strip()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{run.grpc.port}", interceptors=with_key(key))
        stub = iris_pb2_grpc.IrisStub(channel)
        waiting = asyncio.ensure_future(
            stub.SendMessage(
                pb.SendMessageRequest(from_team="caller", to_team="alpha", message="slow 100 100", timeout=0)
            )
        )
        async with asyncio.timeout(30):
            while [e.status for e in (await report(stub)).entries] != ["running"]:
                await asyncio.sleep(0.02)
        await stack.aclose()
        try:
            reply = await asyncio.wait_for(waiting, 10)
        finally:
            await channel.close()
    assert reply.status == "error" and "shut down" in reply.error


async def test_a_persisted_quick_message_is_delivered_after_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with start_iris(tmp_path, config) as iris:
        await iris.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="alpha", message="slow 40 100", timeout=-1)
        )
        quick = await iris.stub.QuickMessage(
            pb.QuickMessageRequest(from_team="caller", to_team="alpha", message="say delivered", persist=True)
        )
        async with asyncio.timeout(30):
            while (await report(iris.stub)).entries[0].status != "running":
                await asyncio.sleep(0.02)
    async with start_iris(tmp_path, config) as iris:
        async with asyncio.timeout(60):
            while (entry := (await report(iris.stub)).entries[-1]).status != "completed":
                assert entry.status in ("queued", "running"), entry
                await asyncio.sleep(0.05)
        assert (entry.message_id, entry.response) == (quick.message_id, "delivered")


async def test_a_persisted_turn_whose_session_was_replaced_is_closed_at_start_not_run(tmp_path: Path) -> None:
    """A turn of a session rebooted or deleted before its end was written can never run: it is closed."""
    config = write_config(tmp_path)
    async with start_iris(tmp_path, config) as iris:
        cut = await persisted_and_running(iris.stub)
    # As if the pair's session had been replaced (a reboot) and Iris died before the turn's end was written.
    with closing(sqlite3.connect(tmp_path / "iris-home" / "iris.db")) as db, db:
        db.execute(
            "UPDATE sessions SET session_id = 'replaced' WHERE from_team = 'caller' AND to_team = 'alpha'"
        )
    async with start_iris(tmp_path, config) as iris:
        with closing(sqlite3.connect(tmp_path / "iris-home" / "iris.db")) as db:
            status, error = db.execute(
                "SELECT status, error FROM turns WHERE message_id = ?", (cut.message_id,)
            ).fetchone()
        assert (status, error) == ("error", "the turn's session was rebooted or deleted before it finished")
        await asyncio.sleep(1)  # time enough for a driver to start (and kill) processes, were one queued
        assert live_processes_in(tmp_path / "teams" / "alpha") == []
        assert (await iris.stub.GetStatus(pb.GetStatusRequest())).processes.total == 0
