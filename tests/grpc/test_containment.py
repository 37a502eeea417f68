"""Teams are contained: a team's Claude, run as its own user (runAs), cannot reach another team's secrets.

The attack is the one that succeeded before ``runAs`` existed, run by the team's real Claude Code through its
Bash tool: read every process's environment for keys, read ``$IRIS_HOME/admin.key``, read another team's
files, and use what it holds against Iris's REST routes. Each probe has a positive control, so a Bash that
did not run, or a ``/proc`` scan that reads nothing, cannot pass for containment.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import live_processes_in, send, start_iris, write_config

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="runAs switches users, which needs root (CI runs as root) and useradd to make the test users",
)

_KEY = re.compile(r"iris_sk_[a-z]+_[A-Za-z0-9]+")


@dataclass
class TeamUser:
    name: str
    uid: int
    folder: Path


@dataclass
class Site:
    """A world-traversable folder (not under pytest's root-only tmp) with one user and folder per team."""

    root: Path
    users: dict[str, TeamUser]


@pytest.fixture
def site() -> Iterator[Site]:
    root = Path(tempfile.mkdtemp(prefix="iris-containment-"))
    root.chmod(0o755)
    users: dict[str, TeamUser] = {}
    try:
        for team in ("alpha", "beta"):
            name = f"iris-t{secrets.token_hex(4)}{team[0]}"
            home = root / f"home-{team}"
            subprocess.run(
                ["useradd", "--system", "--user-group", "--create-home", "--home-dir", str(home)]
                + ["--shell", "/bin/sh", name],
                check=True,
                timeout=30,
            )
            entry = pwd.getpwnam(name)
            users[team] = TeamUser(name, entry.pw_uid, root / "teams" / team)
            users[team].folder.mkdir(parents=True)
            os.chown(users[team].folder, entry.pw_uid, entry.pw_gid)
            users[team].folder.chmod(0o700)
            home.chmod(0o700)
        yield Site(root, users)
    finally:
        for user in users.values():
            subprocess.run(["pkill", "-KILL", "-u", user.name], check=False, timeout=30)
            subprocess.run(["userdel", "--remove", user.name], check=False, timeout=30, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def session_key_in(folder: Path) -> str:
    """The IRIS_SESSION_KEY of the Claude process working in ``folder``, read as root from /proc."""
    for pid in live_processes_in(folder):
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"IRIS_SESSION_KEY="):
                return entry.split(b"=", 1)[1].decode()
    raise AssertionError(f"no Claude process with a session key works in {folder}")


def uids_of(pid: int) -> set[int]:
    """The real, effective, saved and filesystem uids of ``pid``."""
    uids = re.search(r"^Uid:\s+(.*)$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    assert uids is not None
    return {int(uid) for uid in uids[1].split()}


def session_and_tty_of(pid: int) -> tuple[int, int]:
    """The session id and controlling terminal (0: none) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[3]), int(fields[4])


def processes_of(uid: int) -> list[int]:
    """Live processes whose real uid is ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uids = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        if uids is not None and int(uids[1]) == uid and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


def attack(iris_home: Path, beta_folder: Path, rest_port: int) -> str:
    """The Bash the attacking team's Claude runs: one labelled line per probe."""
    api = f"http://127.0.0.1:{rest_port}/api"
    auth = '-H "Authorization: Bearer $IRIS_SESSION_KEY"'
    return "\n".join(
        [
            'echo "uid=$(id -u)"',
            "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\"; done 2>/dev/null"
            " | grep -o 'iris_sk_[a-z]*_[A-Za-z0-9]*' | sort -u | sed 's/^/found-key=/'",
            f'echo "admin-key=$(cat {iris_home}/admin.key 2>&1)"',
            f'echo "home-listing=$(ls {iris_home} 2>&1 | head -c 200)"',
            f'echo "beta-secret=$(cat {beta_folder}/secret.txt 2>&1)"',
            'echo "server-env=$(env | grep -c IRIS_TEST_SERVER_SECRET)"',
            'echo "own-env=$ALPHA_OWN"',
            f"echo \"keys-route=$(curl -s -o /dev/null -w '%{{http_code}}' {auth} {api}/keys)\"",
            "echo \"reboot-beta=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "
            f"{auth} '{api}/teams/beta/reboot?fromTeam=caller')\"",
        ]
    )


async def test_a_contained_team_reads_no_other_key_no_iris_secret_and_no_other_teams_files(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha, beta = site.users["alpha"], site.users["beta"]
    server_secret = f"server-secret-{secrets.token_hex(8)}"  # in Iris's own environment, and beta's ${VAR}
    monkeypatch.setenv("IRIS_TEST_SERVER_SECRET", server_secret)
    beta_secret = f"beta-project-secret-{secrets.token_hex(8)}"
    (beta.folder / "secret.txt").write_text(beta_secret)
    teams = {
        "alpha": {
            "path": str(alpha.folder),
            "runAs": alpha.name,
            "grantPermission": "yes",
            "sessionMcpEnabled": True,
            "mcpPermissions": ["status:read"],
            "env": {"ALPHA_OWN": "alpha-own-value"},
        },
        "beta": {
            "path": str(beta.folder),
            "runAs": beta.name,
            "sessionMcpEnabled": True,
            "env": {"BETA_SECRET": "${IRIS_TEST_SERVER_SECRET}"},
        },
    }
    config = write_config(site.root, teams=teams)
    async with start_iris(site.root, config, http=True) as iris:
        assert stat.S_IMODE(iris.home.stat().st_mode) == 0o700
        await send(iris, "hello beta", to="beta", timeout_ms=60_000)  # beta's Claude runs, its key in its env
        beta_key, alpha_port = session_key_in(beta.folder), iris.running.http_port
        assert alpha_port is not None
        command = attack(iris.home, beta.folder, alpha_port)
        script = "tool Bash " + json.dumps({"command": command, "description": "look around"})
        reply = (await send(iris, script, to="alpha", timeout_ms=60_000)).response
        alpha_key = session_key_in(alpha.folder)

    lines = dict(
        line.split("=", 1) for line in reply.removeprefix("tool result: ").splitlines() if "=" in line
    )
    assert lines["uid"] == str(alpha.uid), reply
    # The scan works (it finds alpha's own key, in alpha's own processes) and finds nothing else.
    assert set(_KEY.findall(reply)) == {alpha_key}, reply
    assert beta_key not in reply and iris.admin_key not in reply
    assert "Permission denied" in lines["admin-key"] and "Permission denied" in lines["home-listing"]
    assert "Permission denied" in lines["beta-secret"] and beta_secret not in reply
    # Iris's own environment stays Iris's (and so does beta's ${VAR}); the team's own env is there.
    assert lines["server-env"] == "0" and server_secret not in reply and lines["own-env"] == "alpha-own-value"
    # What alpha does hold acts only as alpha's key: no admin route, no other team's session.
    assert lines["keys-route"] == "403" and lines["reboot-beta"] == "403", reply


async def test_each_team_runs_as_its_own_user_in_its_own_session_and_leaves_nothing_behind(
    site: Site,
) -> None:
    alpha = site.users["alpha"]
    teams = {"alpha": {"path": str(alpha.folder), "runAs": alpha.name, "grantPermission": "yes"}}
    config = write_config(site.root, teams=teams)
    # A background process that escapes the marker (cleared environment) and the session (setsid).
    escape = "(setsid env -i sleep 600 > /dev/null 2>&1 &); echo started"
    async with start_iris(site.root, config) as iris:
        await send(iris, "hello", to="alpha", timeout_ms=60_000)
        (pid,) = live_processes_in(alpha.folder)
        assert uids_of(pid) == {alpha.uid}
        # Its own session, so no controlling terminal of Iris's to push keystrokes into.
        session, tty = session_and_tty_of(pid)
        assert (session, tty) == (pid, 0)
        script = "tool Bash " + json.dumps({"command": escape, "description": "leave something"})
        assert "started" in (await send(iris, script, to="alpha", timeout_ms=60_000)).response
        assert len(processes_of(alpha.uid)) >= 2, "the background process did not start"
        # Claude Code keeps its transcripts in the user's home, and Iris still finds them (resume, reboot).
        transcripts = list((site.root / "home-alpha" / ".claude" / "projects").glob("*/*.jsonl"))
        assert len(transcripts) == 1 and transcripts[0].stat().st_uid == alpha.uid
    assert processes_of(alpha.uid) == []  # whatever ran as the team's user ended with Iris
