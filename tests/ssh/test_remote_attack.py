"""Attacks on remote teams: what the user's ssh setup or a hostile remote side could make of Iris's ssh."""

from __future__ import annotations

import io
import os
import shutil
import signal
import tempfile
from pathlib import Path

from iris_core.deathsig import real_cli
from iris_core.placement import ssh_relay
from tests.harness import send, start_iris, status_of
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
