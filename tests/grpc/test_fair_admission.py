"""Fair admission: when every process slot is busy, a new pair's turn waits its turn in a fair line instead
of being refused, and pairs that keep their process busy give it up at turn boundaries, so none starves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import send, start_iris, wait_until_running, write_config

TEAMS = ("alpha", "beta", "gamma", "delta")


def config(tmp_path: Path) -> Path:
    extra = {"delta": {"grantPermission": "yes"}}
    return write_config(tmp_path, settings={"maxProcesses": 2, "admissionTimeout": 60000}, teams=extra)


async def test_new_pairs_arriving_while_every_slot_is_busy_are_all_answered(tmp_path: Path) -> None:
    async with start_iris(tmp_path, config(tmp_path)) as iris:
        for team in ("alpha", "beta"):  # both slots busy for a few seconds
            await send(iris, "slow 20 100", to=team, frm="busy", timeout_ms=-1)
            await wait_until_running(iris, team, "busy")
        pairs = [(f"client{i}", TEAMS[i % len(TEAMS)]) for i in range(6)]
        async with asyncio.timeout(110):
            replies = await asyncio.gather(
                *(send(iris, f"say {frm}", to=team, frm=frm, timeout_ms=0) for frm, team in pairs),
                return_exceptions=True,
            )
    assert [r.response if isinstance(r, pb.SendMessageResponse) else r for r in replies] == [
        frm for frm, _ in pairs
    ]


async def test_a_pair_that_keeps_its_process_busy_gives_it_up_to_a_waiting_pair(tmp_path: Path) -> None:
    settings = {"maxProcesses": 1, "admissionTimeout": 4000}
    async with start_iris(tmp_path, write_config(tmp_path, settings=settings)) as iris:
        hogging = asyncio.Event()
        answered: list[str] = []

        async def hog() -> None:  # alpha's queue never runs dry for longer than the admission bound
            pending = {
                asyncio.ensure_future(send(iris, "slow 4 100", frm="hog", timeout_ms=0)) for _ in range(2)
            }
            hogging.set()
            async with asyncio.timeout(60):
                for _ in range(14):
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    answered.extend(task.result().status for task in done)
                    pending.add(asyncio.ensure_future(send(iris, "slow 4 100", frm="hog", timeout_ms=0)))
                await asyncio.gather(*pending)

        hogger = asyncio.create_task(hog())
        await hogging.wait()
        await wait_until_running(iris, "alpha", "hog")  # the hog holds the one slot, a turn queued behind
        async with asyncio.timeout(60):
            reply = await send(iris, "say let me in", to="beta", frm="waiter", timeout_ms=0)
        await hogger
    assert (reply.status, reply.response) == ("completed", "let me in")
    assert answered and set(answered) == {"completed"}
