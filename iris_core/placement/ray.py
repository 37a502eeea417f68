"""Placement on a Ray cluster (``placement: {kind: ray}``): not built yet."""

from __future__ import annotations

from pathlib import Path

from ..claude_process import LaunchSpec
from ..errors import ProcessError
from .process import TeamProcess

__all__ = ["RayPlacementLauncher"]


class RayPlacementLauncher:
    """Starts a team's Claude Code processes inside Ray actors on the team's cluster."""

    def __init__(self, home: Path) -> None:
        self._home = home

    async def launch(self, spec: LaunchSpec, timeout_s: float) -> TeamProcess:
        """Start the process of ``spec`` in a Ray actor."""
        del timeout_s
        raise ProcessError(f"Ray placement is not built yet ({spec.pair})")

    async def aclose(self) -> None:
        """Disconnect from the cluster, if connected."""
