"""An Iris config with a remote team ``far`` on the test sshd, configured as a user would."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iris_core.deathsig import real_cli
from tests.harness import write_config
from tests.ssh.sshd import Sshd

REMOTE_TEAM = "far"


def remote_folder(root: Path) -> Path:
    """The remote team's folder on the "remote" host (loopback: a folder of this test)."""
    return root / "remote-host" / REMOTE_TEAM


def remote_config(root: Path, sshd: Sshd, *, settings: Mapping[str, Any] | None = None, **team: Any) -> Path:
    """Write a config whose team ``far`` runs on ``sshd``'s host (in ``remote_folder(root)``)."""
    folder = remote_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    far = {
        "path": str(folder),
        "remote": f"ssh {sshd.destination}",
        "claudePath": real_cli(),
        "grantPermission": "yes",
        "remoteOptions": {
            "port": sshd.port,
            "identity": str(sshd.identity),
            "extraSshArgs": ["-o", f"UserKnownHostsFile={sshd.known_hosts}"],
        },
        **team,
    }
    return write_config(root, settings=settings, teams={REMOTE_TEAM: far})
