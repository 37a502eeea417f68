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
the launcher in ``RUN_AS_ENV``, which the launcher removes before the exec.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

__all__ = ["RUN_AS_ENV", "Identity", "identity_of", "secure_home"]

RUN_AS_ENV = "IRIS_RUN_AS"
"""``uid:gid:group,group,...`` the launcher switches to before it execs Claude Code."""


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


def can_switch_users() -> bool:
    """Return True if this process may start children as other users (it runs as root)."""
    return os.geteuid() == 0


def secure_home(home: Path) -> None:
    """Create ``$IRIS_HOME`` if needed and make it Iris's alone (0700): keys, record, logs, launcher."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
