"""Running a turn on a pair's process, and writing how each turn ended.

The pool decides which process a turn runs on and owns every queue; this module runs one turn: sends the
prompt, turns Claude Code's messages into the turn's events, ends the turn however it ends (result, cancel,
process death, the turn deadline, shutdown) through the turn's own transitions, and records it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from .claude_process import ApiRateLimit, TextDelta, ToolCall, TurnResult
from .clock import now_ms
from .config import Settings
from .errors import IrisError, OperationTimeoutError, ProcessError, ProcessGoneError
from .metrics import IrisMetrics
from .placement import TeamProcess
from .rewind import prompt_uuid
from .store import Store
from .turns import Turn, TurnStatus, cut_text

__all__ = ["TurnRunner"]

logger = logging.getLogger(__name__)

_MAX_ATTEMPTS = 2
"""A turn whose process was found dead before it began runs again once; a second such death fails it."""

Owned = Callable[[Coroutine[Any, Any, None], str], Awaitable[None]]
"""Runs a coroutine to its end as a task its owner awaits at shutdown, even if the caller is cancelled."""


class TurnRunner:
    """Runs and records turns; knows nothing of slots, queues or process lifecycles (the pool's job)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        retire: Callable[[TeamProcess], Awaitable[None]],
        is_closing: Callable[[], bool],
        owned: Owned,
        on_started: Callable[[Turn], None] | None = None,
        on_recorded: Callable[[Turn], Coroutine[Any, Any, None]] | None = None,
        metrics: IrisMetrics | None = None,
    ) -> None:
        """Create a runner.

        Args:
            store: where turns are recorded.
            settings: for the turn deadline.
            retire: kills and reaps a process that failed a turn (the pool's stop).
            is_closing: whether the pool is shutting down.
            owned: runs a record write as a task of the pool, so a cancelled caller cannot cut it short.
            on_started: told of each turn as it starts running (the event log's ``turn.started``).
            on_recorded: writes an ended turn's cost to the cost ledger, after its record (never raises
                into the turn: a failed write is logged).
            metrics: counts each turn's end, first chunk, cost and tokens (None: metrics are off).

        """
        self._store = store
        self._settings = settings
        self._retire = retire
        self._is_closing = is_closing
        self._owned = owned
        self._on_recorded = on_recorded
        self._on_started = on_started
        self._metrics = metrics
        self._ended_turns: weakref.WeakSet[Turn] = weakref.WeakSet()
        """Turns already logged and counted as ended: a shutdown may record a turn twice."""

    async def run(self, process: TeamProcess, turn: Turn) -> bool:
        """Run one turn on the pair's process, publishing its events and ending it however it ends.

        A turn may already have been ended by someone else meanwhile (a shutdown, a discard); the runner then
        leaves it as it is.

        Returns:
            True when the turn went back to the queue to run again on a new process (its process was found
            dead before the turn began, the first time); False when it has ended.

        """
        if turn.cancel_requested:
            await turn.end(TurnStatus.CANCELLED)
            return False
        turn.start_running()  # in memory only: reports overlay live turns, the record is written at the end
        if self._on_started is not None:
            self._on_started(turn)
        logger.debug(
            "turn %s of %s started (attempt %d)",
            turn.message_id,
            turn.pair,
            turn.attempts,
            extra={
                "message_id": turn.message_id,
                "team": turn.pair.to_team,
                "from_team": turn.pair.from_team,
            },
        )
        turn.max_events_bytes = self._settings.max_turn_events_bytes
        turn.max_response_bytes = self._settings.max_response_bytes

        async def on_sent() -> None:
            turn.sent = True
            turn.rewind_prompts = ()  # the new attempt is in the transcript: no later process rewinds
            if turn.cancel_requested:  # a cancel arrived before the prompt reached Claude
                await process.interrupt()

        async def on_started() -> None:
            if turn.cancel_requested:  # again: an interrupt sent with the prompt may have found no turn yet
                await process.interrupt()

        prompt = prompt_uuid(turn.message_id, turn.attempts)
        if turn.persist:  # counted before the prompt is sent, so a crash from here on can be rewound
            attempt = self._store.record_attempt(turn.message_id, turn.attempts)
            await self._write(f"the attempt of {turn.message_id}", attempt)
        try:
            async with asyncio.timeout(self._turn_timeout_s):
                turn_events = process.run_turn(
                    turn.request, prompt_uuid=prompt, on_sent=on_sent, on_started=on_started
                )
                async for event in turn_events:
                    await self._apply(turn, event)
        except TimeoutError:
            failure = OperationTimeoutError(
                f"The turn did not finish within {self._turn_timeout_s:g}s (settings.turnTimeout)"
            )
            if not turn.done:
                await turn.end(TurnStatus.ERROR, error=failure.message, failure=failure)
            await self._retire(process)
        except ProcessGoneError as exc:
            tries = turn.attempts - turn.recovered_attempts
            retry = tries < _MAX_ATTEMPTS and not self._is_closing() and not turn.cancel_requested
            if not retry:
                return await self._failed(process, turn, exc)
            logger.info("%s: %s; running %s again on a new process", turn.pair, exc.message, turn.message_id)
            turn.back_to_queue()
            await self._retire(process)
            return True
        except ProcessError as exc:
            return await self._failed(process, turn, exc)
        return False

    async def _failed(self, process: TeamProcess, turn: Turn, exc: ProcessError) -> bool:
        """End a turn whose process failed under it (unless someone ended it first); replace the process."""
        logger.warning("%s: %s", turn.pair, exc.message)
        if self._is_closing():
            await self.end_for_shutdown(turn)
        elif turn.done:
            pass
        elif turn.cancel_requested:
            await turn.end(TurnStatus.CANCELLED)
        else:
            await turn.end(TurnStatus.ERROR, error=exc.message, failure=exc)
        await self._retire(process)
        return False

    @property
    def _turn_timeout_s(self) -> float | None:
        ms = self._settings.turn_timeout_ms
        return ms / 1000 if ms > 0 else None

    async def _apply(self, turn: Turn, event: TextDelta | ToolCall | ApiRateLimit | TurnResult) -> None:
        if turn.done:
            return  # ended by a shutdown or a discard while Claude Code was still answering
        if isinstance(event, TextDelta):
            if turn.chunk_count == 0:
                self._first_chunk(turn)
            await turn.publish_chunk(event.text)
        elif isinstance(event, ApiRateLimit):
            logger.info("%s: the Anthropic API's rate limit is now %s", turn.pair, event.status)
            if self._metrics is not None:
                self._metrics.api_rate_limit(turn.pair.to_team, event.status)
        elif isinstance(event, ToolCall):
            await turn.publish_tool_use(event.name, event.input, event.tool_use_id)
        elif turn.cancel_requested:
            turn.spend = event.spend
            await turn.end(TurnStatus.CANCELLED, cost_usd=event.cost_usd, usage=event.usage)
        elif event.is_error:
            turn.spend = event.spend
            detail = event.text or "; ".join(event.errors) or "Claude Code reported an error"
            await turn.end(TurnStatus.ERROR, error=detail, cost_usd=event.cost_usd, usage=event.usage)
        else:
            turn.spend = event.spend
            await turn.end(
                TurnStatus.COMPLETED, final_text=event.text, cost_usd=event.cost_usd, usage=event.usage
            )
        if isinstance(event, TurnResult):
            # Let the turn's waiters answer (their reply goes out) before this driver goes on to the
            # bookkeeping that follows a turn: the record, the cost, the end of Claude Code's stream.
            await asyncio.sleep(0)

    def _first_chunk(self, turn: Turn) -> None:
        since_ms = max(now_ms() - turn.created_at, 0)
        logger.debug(
            "turn %s of %s: first chunk after %d ms",
            turn.message_id,
            turn.pair,
            since_ms,
            extra={"message_id": turn.message_id, "team": turn.pair.to_team, "first_chunk_ms": since_ms},
        )
        if self._metrics is not None:
            self._metrics.first_chunk(turn.pair.to_team, since_ms / 1000)

    def _ended(self, turn: Turn) -> None:
        """Log and count a turn's end: once per turn, as its final record is written."""
        if turn in self._ended_turns:
            return
        self._ended_turns.add(turn)
        team = turn.pair.to_team
        logger.debug(
            "turn %s of %s ended %s after %d ms, $%.6f",
            turn.message_id,
            turn.pair,
            turn.status.value,
            turn.duration_ms,
            turn.cost_usd,
            extra={
                "message_id": turn.message_id,
                "team": team,
                "from_team": turn.pair.from_team,
                "status": turn.status.value,
                "duration_ms": turn.duration_ms,
                "cost_usd": turn.cost_usd,
            },
        )
        if self._metrics is None:
            return
        self._metrics.turn_ended(team, turn.status.value, turn.duration_ms / 1000)
        # The API key of a turn other than a job's is not on the Turn yet: counted under key "" until it is.
        key = turn.key_name
        self._metrics.observe_turn_cost(team, key, turn.cost_usd, turn.usage)

    async def record(self, turn: Turn) -> None:
        """Write how the turn ended (a requeued turn stays queued in the record). Never raises."""
        if turn.status is TurnStatus.REQUEUED:
            requeue = self._store.mark_queued(turn.message_id)
            await self._write(f"the re-queueing of {turn.message_id}", requeue)
            return
        self._ended(turn)
        # The record is bounded like the turn's kept events: the answer is cut to settings.maxResponseBytes
        # (a caller waiting for the turn had all of it from memory), and the entry says it was.
        response, cut = cut_text(turn.response, self._settings.max_response_bytes)
        # One owned step for the end and the cost: both only queue their rows (the record's and the
        # ledger's write-behind), written together later, off the reply's path.
        await self._owned(
            self._record_end(turn, response, cut or turn.truncated), f"record-{turn.message_id}"
        )

    async def _record_end(self, turn: Turn, response: str, truncated: bool) -> None:
        """Record the turn's end, then its cost; each failure is logged, never raised (see ``_write``)."""
        try:
            await self._finish(turn, response, truncated)
        except Exception as exc:  # noqa: BLE001 - best effort by design, see _write
            logger.error("could not record the end of %s: %r", turn.message_id, exc)
        if self._on_recorded is not None:
            try:
                await self._on_recorded(turn)
            except Exception as exc:  # noqa: BLE001 - best effort by design, see _write
                logger.error("could not record the cost of %s: %r", turn.message_id, exc)

    async def _finish(self, turn: Turn, response: str, truncated: bool) -> None:
        await self._store.finish_turn(
            turn.message_id,
            status=turn.status.value,
            response=response,
            error=turn.error,
            events=turn.events,
            started_at=turn.started_at,
            completed_at=turn.completed_at,
            duration_ms=turn.duration_ms,
            cost_usd=turn.cost_usd,
            attempts=turn.attempts,
            metadata=turn.metadata(),
            progress=turn.progress(),
        )
        if truncated:
            await self._store.mark_truncated(turn.message_id)
        if turn.persist:  # a job's end is durable at once: a crash must not run a finished job again
            await self._store.flush()

    async def _write(self, what: str, write: Coroutine[Any, Any, None]) -> None:
        """Run a record write to its end even if the caller is cancelled; a failure is logged, not raised.

        A turn's outcome reaches its callers from memory; the record is the copy that survives restarts,
        so a failing disk must not also fail the turn, its siblings or the pool.
        """

        async def guarded() -> None:
            try:
                await write
            except Exception as exc:  # noqa: BLE001 - best effort by design, see above
                logger.error("could not record %s: %r", what, exc)

        await self._owned(guarded(), f"record-{what}")

    async def end_for_shutdown(self, turn: Turn) -> None:
        """End a turn the server is shutting down under: persisted ones are requeued for the next start."""
        if turn.done:
            return
        if turn.persist:
            await turn.requeue_for_restart()
        else:
            await turn.end(TurnStatus.ERROR, error="server shut down before the turn finished")
        await self.record(turn)

    async def end_unrun(
        self, turns: Iterable[Turn], status: TurnStatus, why: str, *, failure: IrisError | None = None
    ) -> None:
        """End turns taken off a queue before they ran: in memory first (waiters released), then recorded."""
        ended = list(turns)
        if self._is_closing():
            for turn in ended:
                await self.end_for_shutdown(turn)
            return
        for turn in ended:
            if not turn.done:
                await turn.end(status, error=why, failure=failure)
        for turn in ended:
            await self.record(turn)
