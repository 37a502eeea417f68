"""Nothing is left on the remote side when Iris stops, gracefully or killed with SIGKILL mid-turn.

Iris runs as ``iris serve`` (a process of its own, so it can be killed); the remote side is whatever the test
sshd started (its sessions, the remote script, Claude Code) and any process in the remote team's folder.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import iris_serve, live_processes_in
from tests.ssh.remote_team import REMOTE_TEAM, remote_config, remote_folder
from tests.ssh.sshd import Sshd, descendants
from tests.ssh.test_remote_team import wait_until_nothing_remote


async def start_a_long_turn(stub: iris_pb2_grpc.IrisAsyncStub, root: Path, sshd: Sshd) -> None:
    """Start a remote turn of about 20 s and wait (bounded) until it runs, on the remote side."""
    request = pb.SendMessageRequest(
        from_team="caller", to_team=REMOTE_TEAM, message="slow 200 100", timeout=-1
    )
    await stub.SendMessage(request, timeout=30)
    async with asyncio.timeout(60):
        while True:
            report = await stub.SessionReport(
                pb.SessionReportRequest(team=REMOTE_TEAM, from_team="caller"), timeout=10
            )
            if [e.status for e in report.entries] == ["running"]:
                break
            await asyncio.sleep(0.05)
    assert live_processes_in(remote_folder(root)) and descendants(sshd.pid)


async def test_a_graceful_stop_of_iris_leaves_nothing_on_the_remote_side(tmp_path: Path, sshd: Sshd) -> None:
    async with iris_serve(tmp_path, remote_config(tmp_path, sshd)) as served:
        await start_a_long_turn(served.stub, tmp_path, sshd)
        served.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await served.process.wait() == 0
    await wait_until_nothing_remote(tmp_path, sshd)


async def test_kill_9_of_iris_mid_turn_leaves_nothing_on_the_remote_side(tmp_path: Path, sshd: Sshd) -> None:
    async with iris_serve(tmp_path, remote_config(tmp_path, sshd)) as served:
        await start_a_long_turn(served.stub, tmp_path, sshd)
        served.process.kill()
        async with asyncio.timeout(30):
            await served.process.wait()
    await wait_until_nothing_remote(tmp_path, sshd)
