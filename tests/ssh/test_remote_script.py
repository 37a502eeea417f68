"""The remote script and its start-up lines, run by this machine's ``sh`` with a stand-in Claude Code.

Every argument and variable must arrive exactly as sent, whatever it holds (spaces, quotes, ``$(...)``,
newlines, backslashes, an empty string), and nothing of it may be run by a shell; the session is resumed
when the host has its transcript; what follows the start-up lines on stdin reaches Claude Code untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from iris_core.config import SshRemote
from iris_core.errors import ProcessError
from iris_core.placement.ssh import ssh_command
from iris_core.placement.ssh_relay import PORT_PLACEHOLDER, encode, forwarded_env, startup_lines
from iris_core.placement.ssh_remote import REMOTE_SCRIPT, remote_command

SESSION = "0b6d5c3e-1f2a-4b7c-9d8e-112233445566"
HOSTILE = [
    "plain",
    "two words",
    "",
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; echo '",
    '"; touch pwned; echo "',
    "line one\nline two",
    "back\\slash \\n \\0101 \\c",
    "%b %s",
    "-x",
    "ümlaut ✓",
    '--mcp-config={"url": "http://127.0.0.1:' + PORT_PLACEHOLDER + '/mcp"}',
]

FAKE_CLAUDE = """
import json, os, sys
print(json.dumps({"args": sys.argv[1:], "cwd": os.getcwd(), "stdin": sys.stdin.read(),
                  "env": {k: v for k, v in os.environ.items() if k.startswith(("T_", "ANTHROPIC_"))}}))
"""


def fake_claude(folder: Path) -> Path:
    """A stand-in for Claude Code that prints what it was given as JSON."""
    path = folder / "fake claude"
    path.write_text(f"#!{sys.executable}\n{FAKE_CLAUDE}")
    path.chmod(0o700)
    return path


def run_remote(
    folder: Path,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path,
    after: str = "",
    shell: Sequence[str] = ("sh", "-c", REMOTE_SCRIPT, "iris-claude"),
    home: Path | None = None,
) -> dict[str, Any]:
    plan = {"env": sorted(env), "dir": str(cwd), "cli": str(fake_claude(folder)), "session": SESSION}
    lines = startup_lines(plan, dict(env), list(args), "4242")
    base = {"PATH": os.environ["PATH"], "HOME": str(home or folder / "home")}
    done = subprocess.run(
        list(shell),
        input=(lines + after).encode(),
        capture_output=True,
        timeout=30,
        env=base,
        cwd=folder,
        start_new_session=True,  # as sshd starts a session: the script leads its own process group
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_arguments_and_variables_arrive_exactly_and_nothing_is_run(tmp_path: Path) -> None:
    team = tmp_path / "team with 'quotes' and $dollar"
    team.mkdir()
    env = {f"T_{i}": value for i, value in enumerate(HOSTILE)}
    got = run_remote(tmp_path, HOSTILE, env, cwd=team, after='{"type": "user"}\n')
    expected_args = [a.replace(PORT_PLACEHOLDER, "4242") for a in HOSTILE]
    assert got["args"] == expected_args
    assert got["env"] == env
    assert got["cwd"] == str(team)
    assert got["stdin"] == '{"type": "user"}\n'
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.parametrize("login_shell", ["bash", "sh"])
def test_the_remote_command_survives_a_login_shell(tmp_path: Path, login_shell: str) -> None:
    got = run_remote(
        tmp_path, ["a b", "c"], {"T_KEY": "v"}, cwd=tmp_path, shell=(login_shell, "-c", remote_command())
    )
    assert got["args"] == ["a b", "c"] and got["env"] == {"T_KEY": "v"}


def test_the_session_is_resumed_when_the_host_has_its_transcript(tmp_path: Path) -> None:
    args = ["--verbose", f"--session-id={SESSION}"]
    assert run_remote(tmp_path, args, {}, cwd=tmp_path)["args"] == args
    transcript = tmp_path / "home" / ".claude" / "projects" / "-some-folder" / f"{SESSION}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text("{}\n")
    assert run_remote(tmp_path, args, {}, cwd=tmp_path)["args"] == ["--verbose", f"--resume={SESSION}"]


def test_the_transcript_is_looked_for_under_the_teams_own_config_dir(tmp_path: Path) -> None:
    config_dir = tmp_path / "claude config"
    (config_dir / "projects" / "p").mkdir(parents=True)
    (config_dir / "projects" / "p" / f"{SESSION}.jsonl").write_text("{}\n")
    got = run_remote(
        tmp_path, [f"--session-id={SESSION}"], {"CLAUDE_CONFIG_DIR": str(config_dir)}, cwd=tmp_path
    )
    assert got["args"] == [f"--resume={SESSION}"]


def test_bad_start_up_lines_are_refused_with_a_launcher_message(tmp_path: Path) -> None:
    for lines in ("", "something else\n", "iris-ssh 1\nxbad\n", "iris-ssh 1\ne=1BAD=x\n.\n"):
        done = subprocess.run(
            ["sh", "-c", REMOTE_SCRIPT, "iris-claude"],
            input=lines.encode(),
            capture_output=True,
            timeout=30,
            start_new_session=True,
        )
        assert done.returncode == 97
        assert done.stderr.startswith(b"iris launcher: ")


def test_a_missing_folder_or_cli_is_named(tmp_path: Path) -> None:
    plan = {"env": [], "dir": str(tmp_path / "nowhere"), "cli": "no-such-claude", "session": SESSION}
    done = subprocess.run(
        ["sh", "-c", REMOTE_SCRIPT, "iris-claude"],
        input=startup_lines(plan, {}, [], "").encode(),
        capture_output=True,
        timeout=30,
        start_new_session=True,
    )
    assert done.returncode == 97 and b"cannot enter the team folder" in done.stderr


def test_values_with_a_newline_or_backslash_are_escaped_and_others_sent_as_they_are() -> None:
    assert encode("a", "x y") == "a=x y\n"
    assert encode("a", "x\ny") == "a%x\\0012y\n"
    assert encode("a", "x\\y") == "a%x\\0134y\n"


def test_only_the_teams_variables_and_claude_settings_are_forwarded() -> None:
    environ = {
        "HOME": "/root",
        "PATH": "/usr/bin",
        "SECRET_OF_IRIS": "no",
        "ANTHROPIC_BASE_URL": "http://x",
        "CLAUDE_CODE_ENTRYPOINT": "sdk-py",
        "TEAM_VAR": "yes",
        "TRACEPARENT": "00-abc",
        "PWD": "/here",
    }
    assert forwarded_env(environ, ["TEAM_VAR"]) == {
        "ANTHROPIC_BASE_URL": "http://x",
        "CLAUDE_CODE_ENTRYPOINT": "sdk-py",
        "TEAM_VAR": "yes",
        "TRACEPARENT": "00-abc",
    }


def test_the_ssh_command_follows_the_remote_options() -> None:
    remote = SshRemote(
        destination="dev@build.example",
        port=2222,
        identity=Path("/keys/id"),
        strict_host_key_checking=False,
        connect_timeout_ms=1500,
        extra_ssh_args=("-o", "UserKnownHostsFile=/k"),
    )
    argv = ssh_command(remote, tunnel_to=("127.0.0.1", 1615), ssh="/usr/bin/ssh")
    joined = " ".join(argv[:-1])
    assert argv[0] == "/usr/bin/ssh" and "-T" in argv and "BatchMode=yes" in argv
    assert "StrictHostKeyChecking=accept-new" in argv and "ConnectTimeout=2" in argv
    assert "-p 2222" in joined and "-i /keys/id" in joined and "-a" in argv
    assert "ExitOnForwardFailure=yes" in argv and "-R 0:127.0.0.1:1615" in joined
    assert argv[-3:] == ["--", "dev@build.example", remote_command()]
    assert argv.index("UserKnownHostsFile=/k") < argv.index("--")
    strict = ssh_command(SshRemote(destination="h"))
    assert "StrictHostKeyChecking=yes" in strict and "-R" not in strict


async def test_a_spec_a_remote_shell_could_not_take_is_refused(tmp_path: Path) -> None:
    from iris_core.children import ChildRegistry
    from iris_core.claude_process import LaunchSpec
    from iris_core.placement.ssh import SshPlacement

    children = ChildRegistry(tmp_path / "children.db")
    placement = SshPlacement(tmp_path, children, None)
    remote = SshRemote(destination="h")
    try:
        for spec in (
            LaunchSpec(
                cwd=Path("/t"), env={"BAD-NAME": "x"}, session_id=SESSION, resume=False, remote=remote
            ),
            LaunchSpec(cwd=Path("relative"), env={}, session_id=SESSION, resume=False, remote=remote),
        ):
            with pytest.raises(ProcessError):
                await placement.launch(spec, 5)
    finally:
        children.close()
