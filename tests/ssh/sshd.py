"""A real OpenSSH server for the SSH tests: 127.0.0.1, a free port, a throw-away host key and user key.

Debian's ``openssh-server`` provides ``/usr/sbin/sshd`` (``.ci/run`` installs it). The server runs in the
foreground (``-D -e``) as the current user with its own config, keys, authorized keys and pid file in a
temporary folder, so nothing of the machine's own SSH setup is used or changed. A missing ``sshd`` fails the
test with a message saying how to install it: the SSH tests never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
_PRIVSEP_DIR = Path("/run/sshd")
_READY_WITHIN_S = 20.0
_STOP_WITHIN_S = 10.0


@dataclass(frozen=True)
class Sshd:
    """A running test sshd and how to reach it."""

    port: int
    identity: Path
    """The user's private key (no passphrase)."""
    known_hosts: Path
    """A known_hosts file holding the server's host key."""
    user: str
    process: asyncio.subprocess.Process

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1"

    @property
    def pid(self) -> int:
        return self.process.pid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "iris-test", "-f", str(path)],
        check=True,
        timeout=30,
    )


def _prepare(folder: Path) -> tuple[Path, int]:
    """Make the keys, authorized keys, known hosts and config in ``folder``; return the config and port."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    host_key, user_key = folder / "host_key", folder / "user_key"
    for key in (host_key, user_key):
        if not key.exists():
            _keygen(key)
    authorized = folder / "authorized_keys"
    authorized.write_text((folder / "user_key.pub").read_text())
    if os.geteuid() == 0 and not _PRIVSEP_DIR.is_dir():  # sshd's privilege separation needs it
        _PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    port = _free_port()
    config = folder / "sshd_config"
    settings = [
        "ListenAddress 127.0.0.1",
        f"Port {port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}",
        f"PidFile {folder / 'sshd.pid'}",
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "AllowTcpForwarding yes",
        "X11Forwarding no",
        "PrintMotd no",
        "LogLevel VERBOSE",
    ]
    config.write_text("\n".join(settings) + "\n")
    public = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    return config, port


def _sshd_missing() -> bool:
    return not SSHD.exists()


@contextlib.asynccontextmanager
async def running_sshd(folder: Path) -> AsyncIterator[Sshd]:
    """Start sshd on 127.0.0.1 (a free port) with keys made now in ``folder``; stop it (bounded) after."""
    assert not _sshd_missing(), (
        f"{SSHD} is missing: the SSH tests need Debian's OpenSSH server "
        "(apt-get install -y openssh-server; .ci/run installs it)"
    )
    config, port = _prepare(folder)
    user = pwd.getpwuid(os.getuid()).pw_name
    process = await asyncio.create_subprocess_exec(
        str(SSHD), "-D", "-e", "-f", str(config), stderr=asyncio.subprocess.PIPE
    )
    log: list[bytes] = []

    async def drain() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log.append(line)

    reading = asyncio.ensure_future(drain())
    try:
        async with asyncio.timeout(_READY_WITHIN_S):
            while True:
                assert process.returncode is None, b"".join(log).decode(errors="replace")
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    break
                await asyncio.sleep(0.05)
        yield Sshd(port, folder / "user_key", folder / "known_hosts", user, process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(_STOP_WITHIN_S):
                    await process.wait()
            except TimeoutError:
                process.kill()
                async with asyncio.timeout(_STOP_WITHIN_S):
                    await process.wait()
        async with asyncio.timeout(_STOP_WITHIN_S):
            await reading


def descendants(pid: int) -> list[int]:
    """Live (non-zombie) processes below ``pid``: what an sshd started (its sessions and their commands)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = list(parents.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(parents.get(child, ()))
    return sorted(found)


def describe(pids: list[int]) -> list[str]:
    """``pid command line`` of each pid, for a failure message."""
    lines = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
        except OSError:
            cmdline = b"(gone)"
        lines.append(f"{pid} {cmdline.decode(errors='replace')}")
    return lines
