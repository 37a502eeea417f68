"""Cancel means cancel from the moment a turn is accepted: queued and cold-starting turns end as cancelled."""

from __future__ import annotations

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, report_of, send, status_of, wait_until_running


async def test_cancel_during_a_cold_start_cancels_the_turns_waiting_for_the_process(iris: Iris) -> None:
    first = await send(iris, "remember never", timeout_ms=-1)  # a new pair: its process is starting
    second = await send(iris, "remember never again", timeout_ms=-1)
    cancel = await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))
    assert cancel.cancelled and cancel.message_id == first.message_id
    assert cancel.message == "2 queued turns cancelled"
    report = await report_of(iris)
    assert [(e.message_id, e.status, e.response) for e in report.entries] == [
        (first.message_id, "cancelled", ""),
        (second.message_id, "cancelled", ""),
    ]
    after = await send(iris, "recall", timeout_ms=0)
    assert after.response == "you told me: nothing"  # neither cancelled turn ever reached Claude
    assert (await status_of(iris)).awake


async def test_cancel_interrupts_the_running_turn_and_cancels_the_ones_behind_it(iris: Iris) -> None:
    await send(iris, "say warm", timeout_ms=0)
    running = await send(iris, "slow 100 100", timeout_ms=-1)
    await wait_until_running(iris)  # or the cancel may find both still queued (seen under a loaded machine)
    queued = await send(iris, "remember never", timeout_ms=-1)
    cancel = await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))
    assert cancel.cancelled and cancel.message_id == running.message_id
    assert cancel.message == "Turn interrupted; 1 queued turn cancelled"
    statuses = {e.message_id: e.status for e in (await report_of(iris)).entries}
    assert (statuses[running.message_id], statuses[queued.message_id]) == ("cancelled", "cancelled")
    assert (await send(iris, "recall", timeout_ms=0)).response == "you told me: nothing"
