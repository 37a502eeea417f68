"""Messages to teams over gRPC, answered by real Claude Code against the offline model."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    Iris,
    error_reason,
    report_of,
    send,
    start_iris,
    status_of,
    tell_events,
    wait_until_running,
    write_config,
)

FULL_SLOW_ANSWER = "".join(f"chunk {i} " for i in range(1, 101))
"""What ``slow 100 100`` answers when nobody stops it: 100 chunks over about ten seconds."""


async def test_tell_streams_chunks_in_order_and_ends_with_complete(iris: Iris) -> None:
    events = await tell_events(
        iris, pb.TellRequest(from_team="caller", to_team="alpha", message="chunks one|two|three")
    )
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["start", "chunk", "chunk", "chunk", "complete"]
    assert [e.chunk.text for e in events[1:4]] == ["one", "two", "three"]
    start, complete = events[0].start, events[-1].complete
    assert start.message_id == complete.message_id and start.session_id == complete.session_id
    assert complete.status == "completed"
    assert complete.response == "onetwothree"
    assert complete.duration > 0 and complete.cost_usd > 0


async def test_tell_reports_tool_use_with_name_and_input(iris: Iris) -> None:
    events = await tell_events(
        iris,
        pb.TellRequest(
            from_team="caller",
            to_team="alpha",
            message='tool Bash {"command": "echo tool-ran", "description": "say it"}',
        ),
    )
    tool_uses = [e.tool_use for e in events if e.WhichOneof("event") == "tool_use"]
    assert [t.tool for t in tool_uses] == ["Bash"]
    assert tool_uses[0].input["command"] == "echo tool-ran"
    assert "tool-ran" in events[-1].complete.response


async def test_tell_with_a_timeout_ends_with_the_partial_answer_while_the_turn_goes_on(iris: Iris) -> None:
    # A warm process, and a four-second turn: the 1.5 s timeout lands mid-turn, not in a cold start.
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team="caller"))
    full = "".join(f"chunk {i} " for i in range(1, 21))
    events = await tell_events(
        iris, pb.TellRequest(from_team="caller", to_team="alpha", message="slow 20 200", timeout=1500)
    )
    assert events[0].WhichOneof("event") == "start"
    complete = events[-1].complete
    assert complete.status == "timeout"
    chunks = "".join(e.chunk.text for e in events if e.WhichOneof("event") == "chunk")
    assert chunks.startswith("chunk 1 ") and complete.response == chunks and chunks != full
    async with asyncio.timeout(30):
        while (report := await report_of(iris)).entries[-1].status != "completed":
            await asyncio.sleep(0.05)
    assert report.entries[-1].message_id == complete.message_id
    assert report.entries[-1].response == full


async def test_tell_with_timeout_minus_one_ends_right_after_start(iris: Iris) -> None:
    events = await tell_events(
        iris,
        pb.TellRequest(from_team="caller", to_team="alpha", message="say later", timeout=-1, persist=True),
    )
    assert [e.WhichOneof("event") for e in events] == ["start", "complete"]
    assert events[1].complete.status == "async"
    assert events[1].complete.message_id == events[0].start.message_id


async def test_tell_refuses_a_bad_timeout_before_accepting_anything(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await tell_events(iris, pb.TellRequest(from_team="caller", to_team="alpha", message="hi", timeout=-2))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    report = await report_of(iris)
    assert list(report.entries) == []


async def test_send_message_returns_the_whole_response_with_status(iris: Iris) -> None:
    reply = await send(iris, "say the whole answer")
    assert reply.status == "completed"
    assert reply.response == "the whole answer"
    assert reply.from_team == "caller" and reply.to_team == "alpha"
    assert reply.message_id.startswith("msg_") and reply.session_id


async def test_conversation_is_kept_across_messages(iris: Iris) -> None:
    await send(iris, "remember apple")
    await send(iris, "remember pear")
    assert (await send(iris, "recall")).response == "you told me: apple, pear"


async def test_conversation_survives_sleep_and_wake_in_a_new_process(iris: Iris) -> None:
    first = await send(iris, "remember plum")
    awake = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team="caller"))
    slept = await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="caller"))
    assert slept.status == "asleep"
    again = await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team="caller"))
    assert again.pid != awake.pid and again.session_id == first.session_id
    reply = await send(iris, "recall")
    assert reply.response == "you told me: plum"
    assert reply.session_id == first.session_id


async def test_two_callers_to_one_team_get_separate_sessions(iris: Iris) -> None:
    await send(iris, "remember red", frm="one")
    await send(iris, "remember blue", frm="two")
    one, two = await asyncio.gather(send(iris, "recall", frm="one"), send(iris, "recall", frm="two"))
    assert one.response == "you told me: red"
    assert two.response == "you told me: blue"
    assert one.session_id != two.session_id


async def test_concurrent_messages_to_one_pair_are_both_answered_in_order(iris: Iris) -> None:
    first = asyncio.create_task(send(iris, "slow 3 50"))
    await wait_until_running(iris)
    second = asyncio.create_task(send(iris, "say second"))
    a, b = await asyncio.gather(first, second)
    assert (a.status, b.status) == ("completed", "completed")
    assert a.response == "chunk 1 chunk 2 chunk 3 " and b.response == "second"
    report = await report_of(iris)
    assert [e.message_id for e in report.entries] == [a.message_id, b.message_id]
    first_entry, second_entry = report.entries
    assert second_entry.started_at >= first_entry.completed_at


async def test_timeout_returns_partial_text_and_the_turn_finishes_into_the_report(iris: Iris) -> None:
    # A warm process, and a four-second turn: the 1.5 s timeout lands mid-turn, not in a cold start.
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="alpha", from_team="caller"))
    full = "".join(f"chunk {i} " for i in range(1, 21))
    reply = await send(iris, "slow 20 200", timeout_ms=1500)
    assert reply.status == "timeout"
    assert reply.response.startswith("chunk 1 ") and full.startswith(reply.response)
    assert reply.response != full
    async with asyncio.timeout(30):
        while True:
            report = await report_of(iris)
            entry = report.entries[-1]
            if entry.status == "completed":
                break
            assert entry.status == "running"
            await asyncio.sleep(0.05)
    assert entry.message_id == reply.message_id
    assert entry.response == full


async def test_minus_one_returns_at_once_and_zero_waits_for_the_end(iris: Iris) -> None:
    queued = await send(iris, "slow 5 100", timeout_ms=-1)
    assert queued.status == "async" and queued.response == ""
    waited = await send(iris, "say done", timeout_ms=0)
    assert waited.status == "completed" and waited.response == "done"
    report = await report_of(iris)
    assert report.entries[0].status == "completed"
    assert report.entries[0].response == "".join(f"chunk {i} " for i in range(1, 6))


async def test_quick_message_queues_and_replies_async(iris: Iris) -> None:
    reply = await iris.stub.QuickMessage(
        pb.QuickMessageRequest(from_team="caller", to_team="alpha", message="say later")
    )
    assert reply.status == "async" and reply.message_id
    done = await send(iris, "say after")
    assert done.response == "after"
    report = await report_of(iris)
    assert [(e.request, e.response) for e in report.entries] == [
        ("say later", "later"),
        ("say after", "after"),
    ]


async def test_cancel_interrupts_the_running_turn_and_keeps_the_process(iris: Iris) -> None:
    waiting = asyncio.create_task(send(iris, "slow 100 100", timeout_ms=0))
    await wait_until_running(iris)
    before = await status_of(iris)
    cancel = await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))
    reply = await asyncio.wait_for(waiting, 5)  # the ten-second turn ended early
    assert cancel.cancelled and reply.status == "cancelled"
    assert cancel.message_id == reply.message_id
    # The answer stopped where the cancel caught it: a beginning of the full answer, far from all of it.
    assert FULL_SLOW_ANSWER.startswith(reply.response)
    assert reply.response.count("chunk ") < 50
    after = await send(iris, "say still here")
    assert after.response == "still here"
    assert (await status_of(iris)).pid == before.pid


async def test_cancel_with_nothing_running_says_so(iris: Iris) -> None:
    cancel = await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))
    assert not cancel.cancelled


async def test_kill_9_mid_turn_fails_the_turn_at_once_and_the_next_message_resumes(iris: Iris) -> None:
    await send(iris, "remember fig")
    waiting = asyncio.create_task(send(iris, "slow 100 100", timeout_ms=0))
    await wait_until_running(iris)
    os.kill((await status_of(iris)).pid, signal.SIGKILL)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await asyncio.wait_for(waiting, 5)  # the ten-second turn ended early
    assert failure.value.code() == grpc.StatusCode.INTERNAL
    assert error_reason(failure.value) == "ProcessError"
    killed = (await report_of(iris)).entries[-1]
    assert killed.status == "error"
    assert FULL_SLOW_ANSWER.startswith(killed.response)
    assert killed.response.count("chunk ") < 50
    assert (await send(iris, "recall")).response == "you told me: fig"


async def test_a_full_queue_is_refused_with_resource_exhausted(tmp_path: Path) -> None:
    async with start_iris(tmp_path, write_config(tmp_path, settings={"maxQueuedMessages": 1})) as iris:
        await send(iris, "slow 20 100", timeout_ms=-1)
        await wait_until_running(iris)
        await send(iris, "say queued", timeout_ms=-1)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send(iris, "say one too many", timeout_ms=-1)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(refused.value) == "TooManyRequestsError"
        await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))


async def test_a_turn_past_turn_timeout_fails_the_same_way_over_send_message_and_tell(tmp_path: Path) -> None:
    config = write_config(tmp_path, settings={"turnTimeout": 800})
    async with start_iris(tmp_path, config) as iris:
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await send(iris, "slow 10 300", timeout_ms=0)
        events: list[pb.TellResponse] = []
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async with asyncio.timeout(60):
                async for event in iris.stub.Tell(
                    pb.TellRequest(from_team="caller", to_team="beta", message="slow 10 300")
                ):
                    events.append(event)  # noqa: PERF401 - the events before the error are the point
    for failed in (unary.value, streamed.value):
        assert failed.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error_reason(failed) == "TimeoutError"
    # The stream still said how the turn ended before the status did.
    assert events[-1].complete.status == "error" and "turnTimeout" in events[-1].complete.error
