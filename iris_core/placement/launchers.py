"""The launcher the pool is given: one entry point that starts each process where its team runs."""

from __future__ import annotations

from pathlib import Path

from ..children import ChildRegistry
from ..claude_process import LaunchSpec, launch_claude
from .process import TeamProcess
from .ray import RayPlacementLauncher
from .ssh import SshPlacement

__all__ = ["Placements"]


class Placements:
    """Starts processes locally, over SSH or on Ray, as each spec's team asks; owns what those need.

    Used as the pool's ``Launcher`` (``await placements(spec, timeout_s)``). A placement that keeps state
    (Ray's connection to its cluster) is opened on its first launch and closed by ``aclose``, after the pool
    has stopped every process.
    """

    def __init__(self, home: Path, children: ChildRegistry, death_launcher: Path | None) -> None:
        self._children = children
        self._death_launcher = death_launcher
        self._ssh = SshPlacement(home, children, death_launcher)
        self._ray = RayPlacementLauncher(home)

    async def __call__(self, spec: LaunchSpec, timeout_s: float) -> TeamProcess:
        """Start the process ``spec`` describes, where its team runs, within ``timeout_s``."""
        if spec.remote is not None:
            return await self._ssh.launch(spec, timeout_s)
        if spec.ray is not None:
            return await self._ray.launch(spec, timeout_s)
        return await launch_claude(
            spec, timeout_s=timeout_s, children=self._children, launcher=self._death_launcher
        )

    async def aclose(self) -> None:
        """Release what the placements hold (connections to clusters); processes are stopped already."""
        await self._ray.aclose()
        await self._ssh.aclose()
