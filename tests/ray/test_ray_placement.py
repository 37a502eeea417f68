"""Teams placed on a Ray cluster (``placement: {kind: ray}``): the core contract, answered from Ray nodes.

A local cluster (``conftest.ray_cluster``: a head without CPUs and two workers) runs each pair's Claude Code
in an actor on a worker node; these tests talk to Iris exactly as any client does and look at the processes
on the machine to see where they run.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness import (
    process_alive,
    send,
    start_iris,
    status_of,
)
from tests.ray.cluster import LocalRayCluster, parent_of
from tests.ray.conftest import ray_config

FULL_SLOW_ANSWER = "".join(f"chunk {i} " for i in range(1, 101))


async def test_a_message_is_answered_by_claude_code_in_an_actor_on_a_worker_node(
    tmp_path: Path, ray_cluster: LocalRayCluster
) -> None:
    async with start_iris(tmp_path, ray_config(tmp_path, ray_cluster)) as iris:
        reply = await send(iris, "say the whole answer")
        assert (reply.status, reply.response) == ("completed", "the whole answer")
        pid = (await status_of(iris)).pid
        assert process_alive(pid)
        node = ray_cluster.node_of(pid)
        assert node is not None and node.startswith("worker-")
        assert parent_of(pid) != os.getpid()  # a Ray worker's child, not Iris's
        assert (await send(iris, "say again")).response == "again"
        assert (await status_of(iris)).pid == pid  # the same process serves the pair's turns
