"""Where a pair's Claude Code process runs: the pool's one launch seam.

The pool asks a ``Launcher`` for a process and gets a ``TeamProcess``; which of the three placements serves
it is read from the spec (``LaunchSpec.remote``, ``LaunchSpec.ray``), so sessions, records, auth and every
transport are the same whatever the placement:

- **local** (the default): a child of Iris (``claude_process.launch_claude``);
- **ssh** (a team's ``remote``): the same SDK client, whose CLI is ``ssh`` running Claude Code on the team's
  host (``ssh.SshPlacement``);
- **ray** (``placement: {kind: ray}``): a Ray actor on some node of a cluster owns the process and streams
  its events back (``ray.RayPlacementLauncher``).
"""

from .launchers import Placements
from .process import Launcher, TeamProcess

__all__ = ["Launcher", "Placements", "TeamProcess"]
