"""session_fork: run the user's spawn script to open a session in an interactive terminal.

The script is the user's (``$IRIS_HOME/scripts/spawn.sh``), so Iris only checks it exists and is executable
and runs it with the original iris-mcp's arguments: team path, the full ``claude`` command, SSH host and SSH
options
(the last two empty for local teams).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import OperationTimeoutError, PreconditionFailedError

__all__ = ["ForkOutcome", "run_spawn_script", "spawn_script_path"]

logger = logging.getLogger(__name__)

_SCRIPT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ForkOutcome:
    """What the spawn script did."""

    success: bool
    """True when the script exited 0."""
    script: Path
    """The script that ran."""
    message: str
    """What happened, for people."""


def spawn_script_path(iris_home: Path) -> Path:
    """Return where the spawn script must be."""
    return iris_home / "scripts" / "spawn.sh"


async def run_spawn_script(iris_home: Path, team_path: Path, session_id: str) -> ForkOutcome:
    """Run the spawn script for a session and wait (bounded) for it to exit.

    Raises:
        PreconditionFailedError: the script is missing or not executable.
        OperationTimeoutError: the script did not exit within 30 s (it is killed and reaped).

    """
    script = spawn_script_path(iris_home)
    if not script.is_file():
        raise PreconditionFailedError(
            "No spawn script: create scripts/spawn.sh in the Iris home and make it executable",
            details={"script": "scripts/spawn.sh"},
        )
    if not os.access(script, os.X_OK):
        raise PreconditionFailedError(
            "The spawn script scripts/spawn.sh is not executable (chmod +x it)",
            details={"script": "scripts/spawn.sh"},
        )
    command = shlex.join(["claude", "--resume", session_id, "--fork-session"])
    # Output goes to a file, not a pipe: a script that starts a terminal in the background exits at once,
    # while the terminal would hold a pipe open for as long as it lives.
    with tempfile.TemporaryFile() as output:
        proc = await asyncio.create_subprocess_exec(
            str(script),
            str(team_path),
            command,
            "",
            "",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(_SCRIPT_TIMEOUT_S):
                await proc.wait()
        except TimeoutError as exc:
            raise OperationTimeoutError(
                f"The spawn script did not finish within {_SCRIPT_TIMEOUT_S:g}s"
            ) from exc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        output.seek(0)
        tail = output.read()[-2000:].decode(errors="replace").strip()
    if proc.returncode == 0:
        return ForkOutcome(True, script, f"Terminal fork launched for session {session_id}")
    # The script's output may name local paths: it goes to the server log, the caller gets the exit code.
    logger.warning("spawn script exited %s: %s", proc.returncode, tail)
    return ForkOutcome(
        False, script, f"The spawn script exited with code {proc.returncode}; see the server log"
    )
