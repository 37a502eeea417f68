"""Warm spares of a Ray-placed team: actors started on the cluster ahead of need, taken by a new pair."""

from __future__ import annotations

from pathlib import Path

from tests.grpc.test_warm_spares import processes_in
from tests.harness import send, start_iris, status_of
from tests.ray.cluster import LocalRayCluster
from tests.ray.conftest import ray_config


async def test_a_new_pair_of_a_ray_team_takes_the_spare_actor(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    config = ray_config(tmp_path, ray_cluster, warmSpares=1)
    async with start_iris(tmp_path, config) as iris:
        alpha = iris.config.teams["alpha"].path
        [spare] = await processes_in(alpha, 1, within_s=60)  # an actor's Claude Code, before any message
        node = ray_cluster.node_of(spare)
        assert node is not None and node.startswith("worker-")

        reply = await send(iris, "remember fig", frm="first")

        assert reply.response == "ok, remembering fig"
        assert (await status_of(iris, "alpha", "first")).pid == spare
        assert spare in await processes_in(alpha, 2, within_s=60)  # refilled: a second actor
        assert (await send(iris, "recall", frm="first")).response == "you told me: fig"
