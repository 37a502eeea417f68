"""Warm spares of a remote team: started on its host ahead of need, and taken by a new pair there."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.deathsig import real_cli
from tests.harness import live_processes_in, process_alive, send, start_iris, wait_until_gone
from tests.ssh.remote_team import REMOTE_TEAM, remote_config, remote_folder
from tests.ssh.sshd import Sshd, descendants


def claude(pid: int) -> bool:
    """Tell whether ``pid`` runs the Claude Code CLI."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(real_cli())
    except OSError:
        return False


async def claude_processes_in(folder: Path, count: int, within_s: float = 30) -> list[int]:
    """Wait (bounded) until exactly ``count`` Claude Code processes run in ``folder`` (the remote script's own
    shell and its stdin pump work there too, so the CLI is told by its executable); return them."""
    async with asyncio.timeout(within_s):
        while len(found := sorted(p for p in live_processes_in(folder) if claude(p))) != count:
            await asyncio.sleep(0.05)
    return found


async def test_a_new_pair_of_a_remote_team_is_answered_by_the_spare_on_its_host(
    tmp_path: Path, sshd: Sshd
) -> None:
    async with start_iris(tmp_path, remote_config(tmp_path, sshd, warmSpares=1)) as iris:
        folder = remote_folder(tmp_path)
        [spare] = await claude_processes_in(folder, 1)  # Claude Code started on the host before any message
        assert spare in descendants(sshd.pid)

        reply = await send(iris, "remember plum", to=REMOTE_TEAM, frm="first")

        assert reply.response == "ok, remembering plum"
        assert spare in await claude_processes_in(
            folder, 2
        )  # the spare served it; a new spare started behind it
        assert (await send(iris, "recall", to=REMOTE_TEAM, frm="first")).response == "you told me: plum"
        await iris.stub.TeamSleep(pb.TeamSleepRequest(team=REMOTE_TEAM, from_team="first"))
        await wait_until_gone(spare)  # it was the pair's process
        assert not process_alive(spare)
