"""Attacks on remote teams: what the user's ssh setup or a hostile remote side could make of Iris's ssh."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.children import MARKER_ENV
from iris_core.deathsig import real_cli
from iris_core.placement import ssh_relay
from iris_core.turns import Pair
from tests.harness import error_reason, iris_serve, live_processes_in, send, start_iris, status_of
from tests.ssh.remote_team import REMOTE_TEAM, remote_config, remote_folder
from tests.ssh.sshd import Sshd
from tests.ssh.test_remote_team import wait_until_nothing_remote

_FLOOD_BYTES = 64 * 1024 * 1024


def _local_processes_naming(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_an_ssh_config_asking_for_a_persistent_master_leaves_no_connection_behind(
    tmp_path: Path, sshd: Sshd
) -> None:
    # A user's ~/.ssh/config often multiplexes (ControlMaster auto, ControlPersist): a master outlives Iris.
    control = Path(tempfile.mkdtemp(prefix="cm", dir="/tmp"))  # a socket path must be short
    try:
        await _with_a_multiplexing_config(tmp_path, sshd, control)
    finally:
        for pid in _local_processes_naming(str(control)):  # a master this test made Iris start
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(control, ignore_errors=True)


async def _with_a_multiplexing_config(tmp_path: Path, sshd: Sshd, control: Path) -> None:
    user_config = tmp_path / "ssh_config"
    user_config.write_text(
        f"Host *\n  ControlMaster auto\n  ControlPath {control}/%p\n  ControlPersist 600\n"
    )
    options = {
        "port": sshd.port,
        "identity": str(sshd.identity),
        "extraSshArgs": ["-F", str(user_config), "-o", f"UserKnownHostsFile={sshd.known_hosts}"],
    }
    async with start_iris(tmp_path, remote_config(tmp_path, sshd, remoteOptions=options)) as iris:
        reply = await send(iris, "say hello from afar", to=REMOTE_TEAM)
        assert reply.status == "completed"
    await wait_until_nothing_remote(tmp_path, sshd)  # no master's connection left at sshd
    assert not _local_processes_naming(str(user_config))  # nor a master here
    assert not _entries(control)


async def test_a_remote_side_flooding_stderr_without_a_newline_does_not_grow_the_relay(
    tmp_path: Path, sshd: Sshd
) -> None:
    hostile = remote_folder(tmp_path).parent / "hostile-claude"
    hostile.parent.mkdir(parents=True, exist_ok=True)
    hostile.write_text(
        f"#!/bin/sh\nhead -c {_FLOOD_BYTES} /dev/zero | tr '\\0' x >&2\nexec '{real_cli()}' \"$@\"\n"
    )
    hostile.chmod(0o755)
    async with start_iris(tmp_path, remote_config(tmp_path, sshd, claudePath=str(hostile))) as iris:
        reply = await send(iris, "say hello from afar", to=REMOTE_TEAM, timeout_ms=60_000)
        assert reply.status == "completed"
        relay = (await status_of(iris, REMOTE_TEAM)).pid
        peak_kb = _peak_memory_kb(relay)
        assert peak_kb < _FLOOD_BYTES // 1024 // 2, f"the relay held {peak_kb} kB of one stderr line"
    await wait_until_nothing_remote(tmp_path, sshd)


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def _peak_memory_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_a_long_stderr_line_is_cut_and_the_tunnel_port_still_found() -> None:
    log = ssh_relay._Log(
        io.BytesIO(b"x" * 10_000 + b"\nAllocated port 4711 for remote forward to h:1\nlast\n")
    )
    assert log.until_allocated_port() == "4711"
    log.rest()
    assert [len(line) for line in log.tail] == [ssh_relay._MAX_LINE, len(log.tail[1]), 4]


async def test_a_remote_spare_serves_a_new_pair_whose_conversation_survives_a_sleep(
    tmp_path: Path, sshd: Sshd
) -> None:
    async with start_iris(tmp_path, remote_config(tmp_path, sshd, warmSpares=1)) as iris:
        spares = iris.running.service.teams._pool._slots.spares
        async with asyncio.timeout(30):
            while spares.ready(REMOTE_TEAM) != 1:
                await asyncio.sleep(0.02)
        woke = await iris.stub.TeamWake(pb.TeamWakeRequest(team=REMOTE_TEAM, from_team="first"))
        assert not spares.promised(Pair("first", REMOTE_TEAM))  # the wake took it
        assert (
            await send(iris, "remember plum", to=REMOTE_TEAM, frm="first")
        ).response == "ok, remembering plum"
        assert (await status_of(iris, REMOTE_TEAM, "first")).pid == woke.pid
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team=REMOTE_TEAM, from_team="first"))
        assert (await send(iris, "recall", to=REMOTE_TEAM, frm="first")).response == "you told me: plum"
    await wait_until_nothing_remote(tmp_path, sshd)


async def test_kill_9_of_iris_leaves_no_remote_spare(tmp_path: Path, sshd: Sshd) -> None:
    async with iris_serve(tmp_path, remote_config(tmp_path, sshd, warmSpares=2)) as served:
        async with asyncio.timeout(60):
            while len(live_processes_in(remote_folder(tmp_path))) < 2:
                await asyncio.sleep(0.05)
        served.process.kill()
        async with asyncio.timeout(30):
            await served.process.wait()
    await wait_until_nothing_remote(tmp_path, sshd)


async def test_a_changed_host_key_is_refused_even_with_strict_checking_off(
    tmp_path: Path, sshd: Sshd
) -> None:
    impostor = tmp_path / "impostor_key"
    _new_key(impostor)
    known = tmp_path / "known_hosts_of_another_host"
    kind, key = (impostor.parent / "impostor_key.pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    options = {
        "port": sshd.port,
        "identity": str(sshd.identity),
        "strictHostKeyChecking": False,
        # The user's own extra options cannot loosen the policy either: ssh takes an option's first value.
        "extraSshArgs": ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=no"],
    }
    async with start_iris(tmp_path, remote_config(tmp_path, sshd, remoteOptions=options)) as iris:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send(iris, "say hi", to=REMOTE_TEAM)
        assert error_reason(refused.value) == "ProcessError"
    assert known.read_text() == f"[127.0.0.1]:{sshd.port} {kind} {key}\n"


def _new_key(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)


@pytest.mark.parametrize("ignores_term", [False, True])
async def test_a_background_tool_process_is_not_left_on_the_host_when_the_team_sleeps(
    tmp_path: Path, sshd: Sshd, ignores_term: bool
) -> None:
    trap = "trap '' TERM; " if ignores_term else ""
    command = f"({trap}exec sleep 300) >/dev/null 2>&1 </dev/null & echo started"
    run = "tool Bash " + json.dumps({"command": command, "description": "start a background job"})
    config = remote_config(tmp_path, sshd, claudePath=str(_unmarked_cli(tmp_path)))
    async with start_iris(tmp_path, config) as iris:
        reply = await send(iris, run, to=REMOTE_TEAM, timeout_ms=60_000)
        assert reply.status == "completed", reply
        assert "started" in reply.response, reply.response
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team=REMOTE_TEAM, from_team="caller"))
        await wait_until_nothing_remote(tmp_path, sshd)


def _unmarked_cli(root: Path) -> Path:
    """A remote CLI without Iris's child marker: on a real host Iris's own sweep of marked processes (which
    sees this machine only) cannot reach what runs there, so the remote side must clean up by itself."""
    cli = remote_folder(root).parent / "unmarked-claude"
    cli.parent.mkdir(parents=True, exist_ok=True)
    cli.write_text(f"#!/bin/sh\nunset {MARKER_ENV}\nexec '{real_cli()}' \"$@\"\n")
    cli.chmod(0o755)
    return cli


async def test_kill_9_of_iris_leaves_no_background_tool_process_on_the_host(
    tmp_path: Path, sshd: Sshd
) -> None:
    command = "(trap '' TERM; exec sleep 300) >/dev/null 2>&1 </dev/null & echo started"
    run = "tool Bash " + json.dumps({"command": command, "description": "start a background job"})
    config = remote_config(tmp_path, sshd, claudePath=str(_unmarked_cli(tmp_path)))
    async with iris_serve(tmp_path, config) as served:
        request = pb.SendMessageRequest(from_team="caller", to_team=REMOTE_TEAM, message=run, timeout=60_000)
        reply = await served.stub.SendMessage(request, timeout=90)
        assert "started" in reply.response, reply
        served.process.kill()
        async with asyncio.timeout(30):
            await served.process.wait()
    await wait_until_nothing_remote(tmp_path, sshd)
