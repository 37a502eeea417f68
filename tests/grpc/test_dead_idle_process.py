"""A turn never goes to a child that has already exited: the pair restarts and resumes its session."""

from __future__ import annotations

import os
import signal

from tests.harness import Iris, send, status_of, wait_until_gone


async def test_a_message_right_after_an_idle_child_dies_is_answered_by_a_new_process(iris: Iris) -> None:
    await send(iris, "remember fig", timeout_ms=0)
    for _ in range(3):
        pid = (await status_of(iris)).pid
        os.kill(pid, signal.SIGKILL)
        await wait_until_gone(pid)  # dead, maybe not yet reaped; the next message follows at once
        reply = await send(iris, "recall", timeout_ms=0)
        assert (reply.status, reply.response) == ("completed", "you told me: fig")
        assert (await status_of(iris)).pid not in (0, pid)
