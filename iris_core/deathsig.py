"""Claude Code dies with Iris, however Iris dies: a launcher that arms the kernel's parent-death signal.

The SDK starts the CLI as ``[cli_path, ...arguments]``. Iris gives it, as ``cli_path``, a tiny launcher
(written into ``$IRIS_HOME``) which, in the child, sets ``PR_SET_PDEATHSIG`` to SIGKILL and then ``exec``s the
real CLI with every argument. ``exec`` keeps the pid and keeps the death signal, so the pid the pool knows,
kills and reaps is Claude Code's own, and the kernel kills Claude Code the moment Iris ends: a clean stop, a
crash, or ``kill -9``.

Two details make it exact:

- The launcher checks that its parent is still the Iris that started it (``IRIS_DEATHSIG_PARENT``) after
  arming the signal; an Iris that died in between (before the signal could fire) makes it exit instead.
- The signal fires when the *thread* that forked the child ends, not the process. The SDK spawns from the
  event loop's thread (``asyncio`` forks in the loop's thread), and Iris runs its loop on the main thread for
  its whole life (``asyncio.run``), so that thread ends only with Iris. A loop run on another thread (a test
  harness, say) would take its children with it when that thread ends, which is after the loop, and so the
  pool, has stopped them anyway.

For a contained team (``runAs``) the launcher, still root, first drops the inherited environment but for
what Iris gives the team, starts a new session, and switches to the team's user (see ``run_as``): the
parent-death signal is armed after the switch, which would clear it.

The CLI's own children (tools such as Bash, stdio MCP servers) do not inherit the signal; ``children.py``
finds and kills them by a marker in their environment.

Linux only (``prctl``); elsewhere the real CLI is started directly and only the start-up reaping remains.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from pathlib import Path

from .run_as import KEEP_ENV, RUN_AS_ENV, SHARED_NAMES, SHARED_PREFIXES

__all__ = [
    "LAUNCHER_FILE",
    "LAUNCHER_MESSAGE_PREFIX",
    "PARENT_ENV",
    "TARGET_ENV",
    "real_cli",
    "supported",
    "write_launcher",
]

LAUNCHER_FILE = "claude-launcher"
"""The launcher's name in ``$IRIS_HOME``."""
TARGET_ENV = "IRIS_DEATHSIG_EXEC"
"""The real CLI the launcher execs (removed from the environment before the exec)."""
PARENT_ENV = "IRIS_DEATHSIG_PARENT"
"""The pid of the Iris that started the launcher (removed from the environment before the exec)."""

LAUNCHER_MESSAGE_PREFIX = "iris launcher:"
"""How the launcher's own messages on stderr begin (Iris logs them as warnings)."""

# The user switch comes first: a change of credentials clears the parent-death signal, so it is armed after.
_LAUNCHER_CODE = f"""
import ctypes, os, signal, sys
target = os.environ.pop({TARGET_ENV!r})
parent = int(os.environ.pop({PARENT_ENV!r}))
run_as = os.environ.pop({RUN_AS_ENV!r}, "")
keep = set(os.environ.pop({KEEP_ENV!r}, "").split(",")) | set({SHARED_NAMES!r})
if run_as:
    for name in list(os.environ):
        if name not in keep and not name.startswith({SHARED_PREFIXES!r}):
            del os.environ[name]
    os.setsid()
    uid, gid, groups = run_as.split(":")
    os.setgroups([int(g) for g in groups.split(",") if g])
    os.setgid(int(gid))
    os.setuid(int(uid))
if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
    sys.exit("{LAUNCHER_MESSAGE_PREFIX} prctl(PR_SET_PDEATHSIG) failed: " + os.strerror(ctypes.get_errno()))
if os.getppid() != parent:
    sys.exit("{LAUNCHER_MESSAGE_PREFIX} Iris exited before Claude Code started")
try:
    os.execv(target, [target, *sys.argv[1:]])
except OSError as exc:
    sys.exit(f"{LAUNCHER_MESSAGE_PREFIX} cannot run {{target}} as uid {{os.getuid()}}: {{exc}}")
"""


def supported() -> bool:
    """Return True where the parent-death signal exists (Linux)."""
    return sys.platform.startswith("linux")


def write_launcher(home: Path) -> Path | None:
    """Write the launcher into ``home`` (every start, so it names this Iris's Python); None where unsupported.

    A shell script that runs this Python isolated (``-I -S``: standard library only, no site, no
    PYTHONPATH), so nothing of the environment given to Claude Code changes what runs before it.
    """
    if not supported():
        return None
    home.mkdir(parents=True, exist_ok=True)
    path = home / LAUNCHER_FILE
    text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -I -S -c {shlex.quote(_LAUNCHER_CODE)} "$@"\n'
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    temporary.replace(path)
    return path


@functools.cache
def real_cli() -> str:
    """Return the Claude Code CLI the SDK would start (its bundled one, else ``claude`` on the PATH).

    Raises:
        claude_agent_sdk.CLINotFoundError: there is none.

    """
    from claude_agent_sdk import ClaudeAgentOptions
    from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

    return SubprocessCLITransport(prompt="", options=ClaudeAgentOptions())._find_cli()
