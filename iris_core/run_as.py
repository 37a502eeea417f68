"""Teams contained by the operating system: a team's Claude Code runs as the team's own unprivileged user.

A team with ``runAs: <user>`` has every Claude Code process of it started as that user (its uid, its primary
group and its supplementary groups, its home as ``HOME``). The kernel then keeps the team's Claude, and every
tool it runs, away from what Iris holds and from the other teams:

- another user's ``/proc/<pid>/environ`` is unreadable, so the key Iris hands a team's Claude (in its
  environment) is readable by that team's own processes only, and Iris's own environment by none of them;
- ``$IRIS_HOME`` is Iris's alone (``secure_home``: mode 0700), so ``admin.key``, the key store, the record and
  the logs are out of reach;
- a team's folder and home belong to its user, so another team's Claude cannot read its files or transcripts.

Switching users needs root, and happens in the launcher (``deathsig``), in the child, before it arms the
parent-death signal (a change of credentials clears that signal) and execs the CLI. The identity travels to
the launcher in ``RUN_AS_ENV``, which the launcher removes before the exec. Before switching, the launcher
also starts a new session (no controlling terminal to push keystrokes into) and drops every inherited
variable but those Iris gives the team (``KEEP_ENV``) and the shared ones (``SHARED_NAMES``,
``SHARED_PREFIXES``): Iris's own environment may hold an admin key, or another team's ``${VAR}`` secret.
"""

from __future__ import annotations

import os
import pwd
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

__all__ = [
    "KEEP_ENV",
    "RUN_AS_ENV",
    "SHARED_NAMES",
    "SHARED_PREFIXES",
    "Identity",
    "end_processes_of",
    "identity_of",
    "secure_home",
]

RUN_AS_ENV = "IRIS_RUN_AS"
"""``uid:gid:group,group,...`` the launcher switches to before it execs Claude Code."""
KEEP_ENV = "IRIS_KEEP_ENV"
"""Comma-separated names of the variables Iris gives the process; for a contained team the launcher drops
every other inherited one (Iris's own environment may hold keys and other teams' secrets)."""
SHARED_NAMES = (
    "PATH",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TERM",
    "TZ",
    "TMPDIR",
    "PWD",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    # W3C trace context the claude-agent-sdk sets for the process's start (a trace and a span id, no secret),
    # so a contained team's Claude Code spans join Iris's trace too. TRACESTATE is not shared: it is free text
    # a caller chose, which the process would keep for later callers. OTEL_* is not shared: it may carry the
    # collector's credentials (OTEL_EXPORTER_OTLP_HEADERS); a team that exports telemetry sets it in its env.
    "TRACEPARENT",
)
"""Inherited variables a contained team keeps besides Iris's own: the locale, the path, the proxies, the trace
context."""
SHARED_PREFIXES = ("LC_", "ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_AGENT_SDK_")
"""Inherited variables a contained team keeps by prefix: the model's endpoint and credentials (shared by
every team, see the README) and Claude Code's and its SDK's own settings."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The unprivileged user a team's Claude Code runs as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    """Supplementary groups, from the group database (the primary group included)."""
    home: Path

    def environment(self) -> dict[str, str]:
        """Return the variables that say who the process is and where its Claude Code keeps its files."""
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "CLAUDE_CONFIG_DIR": str(self.home / ".claude"),
        }

    def launcher_value(self) -> str:
        """Return the identity as ``RUN_AS_ENV`` carries it to the launcher."""
        return f"{self.uid}:{self.gid}:{','.join(str(g) for g in self.groups)}"


def identity_of(name: str) -> Identity:
    """Look ``name`` up in the user database.

    Raises:
        ConfigurationError: no such user, or it is root (running a team as root contains nothing).

    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigurationError(f"runAs: there is no user named {name!r} on this machine") from None
    if entry.pw_uid == 0:
        raise ConfigurationError(f"runAs: {name!r} is root; a team must run as an unprivileged user")
    groups = tuple(sorted(set(os.getgrouplist(name, entry.pw_gid))))
    return Identity(name, entry.pw_uid, entry.pw_gid, groups, Path(entry.pw_dir))


def end_processes_of(uids: Iterable[int], *, within_s: float = 5.0) -> int:
    """SIGKILL every process whose real uid is one of ``uids``; wait (bounded) until they are gone.

    A ``runAs`` user belongs to one team of this Iris, so at start and at stop whatever runs as it is a
    leftover: a tool the team's Claude started in the background, perhaps with a cleared environment (which
    escapes the marker ``children`` looks for), perhaps waiting to take a port while Iris is down. Blocking;
    returns how many processes were killed.
    """
    wanted = {uid for uid in uids if uid != 0}
    if not wanted:
        return 0
    killed = [pid for pid in _pids_of(wanted) if _kill(pid)]
    deadline = time.monotonic() + within_s
    while killed and time.monotonic() < deadline and _pids_of(wanted) & set(killed):
        time.sleep(0.02)
    return len(killed)


def _pids_of(uids: set[int]) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                if int(line.split()[1]) in uids and "\nState:\tZ" not in status:
                    found.add(int(entry.name))
                break
    return found


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return False
    return True


def can_switch_users() -> bool:
    """Return True if this process may start children as other users (it runs as root)."""
    return os.geteuid() == 0


def secure_home(home: Path) -> None:
    """Create ``$IRIS_HOME`` if needed and make it Iris's alone (0700): keys, record, logs, launcher."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
