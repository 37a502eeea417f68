"""The Ray tests' cluster: one per test session, a head and two worker nodes, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import write_config
from tests.ray.cluster import LocalRayCluster, start_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    cluster = start_cluster(workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


def ray_config(root: Path, cluster: LocalRayCluster, **settings: Any) -> Path:
    """A config whose teams all run on the test cluster (``settings.placement``), one CPU and 256 MB each."""
    placement = {"kind": "ray", "address": cluster.address, "cpus": 1, "memoryMb": 256}
    return write_config(root, settings={"placement": placement, **settings})
