"""A turn's life: every legal move is in one table, any other move raises, and each end is published once."""

from __future__ import annotations

import itertools

import pytest

from iris_core.turns import TRANSITIONS, IllegalTransitionError, Pair, Turn, TurnStatus

FINAL = [s for s in TurnStatus if s.final]


async def reach(status: TurnStatus) -> Turn:
    """A turn brought to ``status`` through legal moves only."""
    turn = Turn(message_id="msg_1", pair=Pair("caller", "alpha"), session_id="s", request="hi")
    if status is TurnStatus.QUEUED:
        return turn
    turn.start_running()
    if status.final:
        await turn.end(status)
    return turn


def test_the_table_allows_exactly_the_documented_moves() -> None:
    assert dict(TRANSITIONS) == {
        TurnStatus.QUEUED: {TurnStatus.RUNNING, TurnStatus.CANCELLED, TurnStatus.ERROR, TurnStatus.REQUEUED},
        TurnStatus.RUNNING: {
            TurnStatus.COMPLETED,
            TurnStatus.CANCELLED,
            TurnStatus.ERROR,
            TurnStatus.REQUEUED,
            TurnStatus.QUEUED,
        },
    }
    assert set(FINAL) == {TurnStatus.COMPLETED, TurnStatus.CANCELLED, TurnStatus.ERROR, TurnStatus.REQUEUED}


@pytest.mark.parametrize(("start", "to"), list(itertools.product(TurnStatus, FINAL)))
async def test_ending_a_turn_is_allowed_only_where_the_table_says(start: TurnStatus, to: TurnStatus) -> None:
    turn = await reach(start)
    if to in TRANSITIONS.get(start, frozenset()):
        await turn.end(to, error="why")
        assert turn.status is to and turn.done
        assert [e.WhichOneof("event") for e in turn.events] == ["complete"]
    else:
        with pytest.raises(IllegalTransitionError):
            await turn.end(to)
        assert turn.status is start


@pytest.mark.parametrize("start", list(TurnStatus))
async def test_only_a_queued_turn_can_start_running(start: TurnStatus) -> None:
    turn = await reach(start)
    if start is TurnStatus.QUEUED:
        turn.start_running()
        assert turn.status is TurnStatus.RUNNING and turn.started_at > 0
    else:
        with pytest.raises(IllegalTransitionError):
            turn.start_running()


async def test_a_turn_cannot_end_in_a_state_that_is_not_final() -> None:
    turn = await reach(TurnStatus.RUNNING)
    with pytest.raises(IllegalTransitionError):
        await turn.end(TurnStatus.QUEUED)
    assert not turn.done


async def test_a_requeued_turn_tells_its_callers_error_while_it_stays_queued_for_the_next_start() -> None:
    turn = await reach(TurnStatus.RUNNING)
    await turn.publish_chunk("par")
    await turn.requeue_for_restart()
    complete = turn.events[-1].complete
    assert turn.status is TurnStatus.REQUEUED and turn.done
    assert (complete.status, complete.response) == ("error", "par")
    assert "run again at restart" in complete.error


async def test_the_answer_is_the_final_text_once_completed_and_the_streamed_text_before() -> None:
    turn = await reach(TurnStatus.RUNNING)
    await turn.publish_chunk("a")
    await turn.publish_chunk("b")
    assert turn.response == "ab"
    await turn.end(TurnStatus.COMPLETED, final_text="the answer", cost_usd=0.25)
    complete = turn.events[-1].complete
    assert (complete.status, complete.response, complete.cost_usd) == ("completed", "the answer", 0.25)
    assert [e.WhichOneof("event") for e in turn.events] == ["chunk", "chunk", "complete"]


@pytest.mark.parametrize("start", list(TurnStatus))
async def test_only_a_running_turn_goes_back_to_the_queue_and_it_counts_its_attempts(
    start: TurnStatus,
) -> None:
    turn = await reach(start)
    if start is TurnStatus.RUNNING:
        turn.sent = True
        turn.back_to_queue()
        assert (turn.status, turn.sent, turn.attempts) == (TurnStatus.QUEUED, False, 1)
        turn.start_running()
        assert turn.attempts == 2
    else:
        with pytest.raises(IllegalTransitionError):
            turn.back_to_queue()
        assert turn.status is start
