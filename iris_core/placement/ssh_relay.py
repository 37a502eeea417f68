"""The local program of a remote team's process: runs ``ssh`` and feeds the remote side its start-up lines.

The SDK starts this file (through the parent-death launcher, with Python's ``-I -S``: standard library only)
exactly as it would start Claude Code, with Claude Code's arguments. It reads its plan from ``PLAN_ENV`` (the
ssh command and what the remote side needs), starts ``ssh``, and writes on ssh's stdin, before anything of
the SDK's, the start-up lines the remote script reads (``ssh_remote``): the environment Iris gives the team,
the team's folder, the CLI, the session id and every argument. Then it relays its own stdin to ssh's until
EOF; ssh's stdout is this process's own (no copy), so the SDK's stream-json control protocol runs unchanged.

Why the lines go on stdin: the remote command line is visible in ``ps`` to every user of the remote host and
is parsed by the remote login shell, so it carries nothing but a fixed script; secrets (``IRIS_SESSION_KEY``,
``ANTHROPIC_API_KEY``) and arguments (paths, JSON) travel inside the encrypted channel instead.

With a reverse tunnel (the team's Iris MCP server, ``-R 0:...``) ssh allocates the remote port; the relay
reads it from ssh's log ("Allocated port N for remote forward") before it writes the lines, and puts it where
``PORT_PLACEHOLDER`` stands in the arguments (the MCP server's URL).

``ssh`` is started with the parent-death signal armed, so killing this process (force sleep, a killed Iris)
kills ssh too, which drops the connection; the remote script then ends Claude Code (see ``ssh_remote``).
Keep this module standard-library only and free of package imports: it runs as a script.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

PLAN_ENV = "IRIS_SSH_PLAN"
"""The environment variable carrying the relay's plan (JSON; removed before ssh starts)."""
PORT_PLACEHOLDER = "@IRIS_TUNNEL_PORT@"
"""Stands for the remote end of the reverse tunnel in the arguments, until ssh has allocated it."""
PROTOCOL_LINE = "iris-ssh 1"
"""The first start-up line; the remote script refuses anything else."""
MESSAGE_PREFIX = "iris launcher:"
"""How the relay's own messages on stderr begin (Iris logs them as warnings; deathsig's prefix)."""
FORWARDED_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_AGENT_SDK_")
"""Variables forwarded to the remote Claude Code whenever set: its model and behaviour settings."""
FORWARDED_NAMES = ("TRACEPARENT", "TRACESTATE")
"""Single variables forwarded whenever set (the trace Claude Code joins)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALLOCATED = re.compile(rb"Allocated port (\d+) for remote forward")
_CHUNK = 65536
_MAX_LINE = 4096
"""The longest line of ssh's stderr the relay keeps and echoes (ssh's own are far shorter)."""
_TAIL_LINES = 5
_TAIL_WAIT_S = 2.0
"""How long ssh's last words may take to arrive once it has exited."""
_SSH_FAILED = 255
"""ssh's own exit code when the connection or authentication failed (the remote command's are 0..254)."""


def encode(tag: str, value: str) -> str:
    """Return one start-up line: ``tag``, then ``=`` and the value as is, or ``%`` and its ``%b`` escape.

    The remote script reads lines with ``IFS= read -r``, which keeps every byte but a newline; a value with
    a newline (or a backslash, which ``%b`` would read as an escape) is sent escaped for ``printf %b``.
    """
    if "\n" not in value and "\\" not in value:
        return f"{tag}={value}\n"
    escaped = value.replace("\\", "\\0134").replace("\n", "\\0012")
    return f"{tag}%{escaped}\n"


def forwarded_env(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """Return the variables of ``environ`` the remote Claude Code gets: ``names`` and the forwarded sets."""
    wanted = set(names)
    chosen = {
        name
        for name in environ
        if name.startswith(FORWARDED_PREFIXES) or name in FORWARDED_NAMES or name in wanted
    }
    return {name: environ[name] for name in sorted(chosen) if _NAME.fullmatch(name)}


def startup_lines(plan: Mapping[str, Any], environ: Mapping[str, str], args: Sequence[str], port: str) -> str:
    """Return every start-up line for the remote script, in the order it reads them."""
    lines = [PROTOCOL_LINE + "\n"]
    for name, value in forwarded_env(environ, plan["env"]).items():
        lines.append(encode("e", f"{name}={value}"))
    lines.append(encode("d", plan["dir"]))
    lines.append(encode("c", plan["cli"]))
    lines.append(encode("s", plan["session"]))
    lines.extend(encode("a", arg.replace(PORT_PLACEHOLDER, port)) for arg in args)
    lines.append(".\n")
    return "".join(lines)


def _arm_death_signal() -> None:
    """In ssh, before its exec: die with the relay (its only thread forks it, and lives as long as it)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


def _say(message: str) -> None:
    sys.stderr.write(f"{MESSAGE_PREFIX} {message}\n")
    sys.stderr.flush()


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    """Copy ``source`` to ``target`` until EOF or a closed target, then close ``target``."""
    try:
        while chunk := os.read(source.fileno(), _CHUNK):
            target.write(chunk)
            target.flush()
    except OSError:
        pass
    finally:
        try:
            target.close()
        except OSError:
            pass


class _Log:
    """ssh's stderr, echoed to ours as it comes, its last lines kept to explain a failed connection."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def until_allocated_port(self) -> str | None:
        """Echo lines up to the one naming the tunnel's remote port, and return it; None if ssh ends first."""
        for line in self._lines():
            self._echo(line)
            match = _ALLOCATED.search(line)
            if match is not None:
                return match.group(1).decode()
        return None

    def rest(self) -> None:
        """Echo the remaining lines until ssh closes its stderr."""
        for line in self._lines():
            self._echo(line)

    def _lines(self) -> Iterator[bytes]:
        """Yield ssh's stderr line by line, each cut to ``_MAX_LINE`` bytes (a longer one's rest dropped).

        The remote side writes there too: a line without end must not grow the relay (nor Iris's log).
        """
        dropping = False
        while piece := self._source.readline(_MAX_LINE):
            whole = piece.endswith(b"\n")
            if not dropping:
                yield piece if whole else piece + b"\n"
            dropping = not whole

    def _echo(self, line: bytes) -> None:
        self.tail.append(line.decode(errors="replace").strip())
        try:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
        except OSError:
            pass


def main(argv: Sequence[str]) -> int:
    """Run ssh as the plan says, feed it the start-up lines and relay stdin; return ssh's exit code."""
    environ = dict(os.environ)
    plan = json.loads(environ.pop(PLAN_ENV))
    ssh = subprocess.Popen(
        plan["ssh"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        preexec_fn=_arm_death_signal,  # noqa: PLW1509 - the relay has no other thread yet
    )
    assert ssh.stdin is not None and ssh.stderr is not None
    log = _Log(ssh.stderr)
    port = ""
    if plan["tunnel"]:
        found = log.until_allocated_port()
        if found is None:
            return _ended(ssh, log, plan, "before the reverse tunnel for Iris's MCP server was set up")
        port = found
    echo = threading.Thread(target=log.rest, daemon=True)
    echo.start()
    try:
        ssh.stdin.write(startup_lines(plan, environ, argv, port).encode())
        ssh.stdin.flush()
    except OSError:
        echo.join(_TAIL_WAIT_S)
        return _ended(ssh, log, plan, "before Claude Code could be started")
    threading.Thread(target=_copy, args=(sys.stdin.buffer, ssh.stdin), daemon=True).start()
    code = ssh.wait()
    echo.join(_TAIL_WAIT_S)
    if code == _SSH_FAILED:
        _say(f"ssh to {plan['destination']} failed (exit 255): {' / '.join(log.tail)}")
    return code


def _ended(ssh: subprocess.Popen[bytes], log: _Log, plan: Mapping[str, Any], when: str) -> int:
    code = ssh.wait()
    _say(f"ssh to {plan['destination']} ended {when} (exit {code}): {' / '.join(log.tail)}")
    return code


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code if code >= 0 else 128 - code)
