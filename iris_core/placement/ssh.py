"""Remote teams over SSH (a team's ``remote``): not built yet."""

from __future__ import annotations

from pathlib import Path

from ..children import ChildRegistry
from ..claude_process import LaunchSpec
from ..errors import ProcessError
from .process import TeamProcess

__all__ = ["SshPlacement"]


class SshPlacement:
    """Starts a remote team's Claude Code on its host with the OpenSSH client."""

    def __init__(self, home: Path, children: ChildRegistry, death_launcher: Path | None) -> None:
        self._home = home
        self._children = children
        self._death_launcher = death_launcher

    async def launch(self, spec: LaunchSpec, timeout_s: float) -> TeamProcess:
        """Start the process of ``spec`` on its team's host."""
        del timeout_s
        raise ProcessError(f"remote teams are not built yet ({spec.pair})")

    async def aclose(self) -> None:
        """Nothing is held between launches."""
