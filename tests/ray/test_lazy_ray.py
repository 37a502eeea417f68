"""Ray is loaded only when a team is placed on it, and then leaves Iris's logging alone."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from tests.harness import send, start_iris
from tests.ray.cluster import ROOT, LocalRayCluster
from tests.ray.conftest import ray_config


def test_the_server_the_stdio_adapter_and_the_placements_import_no_ray() -> None:
    code = (
        "import sys\n"
        "import iris_app.app, iris_app.cli, mcp_adapter.stdio, iris_core.service, iris_core.placement\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.split('.')[0] == 'ray')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def test_connecting_to_ray_leaves_the_logging_of_iris_as_it_was(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    factory = logging.getLogRecordFactory()
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
        assert (await send(iris, "say hi")).response == "hi"
        assert "ray" in sys.modules
        assert logging.getLogRecordFactory() is factory  # Ray's import replaces it: every record would change
        assert logging.getLogger("ray").handlers == []  # and Ray's own records go through Iris's handlers
        assert logging.getLogger("ray").propagate
