"""Ray is loaded only when a team is placed on it: Iris's other entry points never pay its import."""

from __future__ import annotations

import subprocess
import sys

from tests.ray.cluster import ROOT


def test_the_server_the_stdio_adapter_and_the_placements_import_no_ray() -> None:
    code = (
        "import sys\n"
        "import iris_app.app, iris_app.cli, mcp_adapter.stdio, iris_core.service, iris_core.placement\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.split('.')[0] == 'ray')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
