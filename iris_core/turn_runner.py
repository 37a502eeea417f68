"""Running a turn on a pair's process, and writing how each turn ended.

The pool decides which process a turn runs on; this module runs it: sends the prompt, turns Claude Code's
messages into the turn's events, ends the turn however it ends (result, cancel, process death, the turn
deadline, shutdown) and records it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .claude_process import ClaudeProcess, TextDelta, ToolCall, TurnResult
from .config import Settings
from .errors import IrisError, OperationTimeoutError, ProcessError
from .pairs import PairRuntime
from .store import Store
from .turns import Turn, TurnStatus

__all__ = ["TurnRunner"]

logger = logging.getLogger(__name__)


class TurnRunner:
    """Runs and records turns; knows nothing of slots or process lifecycles (the pool's job)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        retire: Callable[[PairRuntime, ClaudeProcess], Awaitable[None]],
        is_closing: Callable[[], bool],
        forget: Callable[[str], None],
    ) -> None:
        """Create a runner.

        Args:
            store: where turns are recorded.
            settings: for the turn deadline.
            retire: kills and reaps a process that failed a turn (the pool's stop).
            is_closing: whether the pool is shutting down.
            forget: drops a finished turn from the pool's live index.

        """
        self._store = store
        self._settings = settings
        self._retire = retire
        self._is_closing = is_closing
        self._forget = forget

    async def run(self, state: PairRuntime, process: ClaudeProcess, turn: Turn) -> None:
        """Run one turn on the pair's process, publishing its events and ending it however it ends."""
        if turn.cancel_requested:
            await turn.finish(TurnStatus.CANCELLED)
            return
        turn.mark_running()  # in memory only: reports overlay live turns, the record is written at the end

        async def on_sent() -> None:
            turn.sent = True
            if turn.cancel_requested:  # a cancel arrived before the prompt reached Claude
                await process.interrupt()

        try:
            async with asyncio.timeout(self._turn_timeout_s):
                async for event in process.run_turn(turn.request, on_sent=on_sent):
                    await self._apply(state, turn, event)
        except TimeoutError:
            failure = OperationTimeoutError(
                f"The turn did not finish within {self._turn_timeout_s:g}s (settings.turnTimeout)"
            )
            await turn.finish(TurnStatus.ERROR, error=failure.message, failure=failure)
            await self._retire(state, process)
        except ProcessError as exc:
            logger.warning("%s: %s", state.pair, exc.message)
            if self._is_closing():
                await self.end_for_shutdown(turn)
            elif turn.cancel_requested:
                await turn.finish(TurnStatus.CANCELLED)
            else:
                await turn.finish(TurnStatus.ERROR, error=exc.message, failure=exc)
            await self._retire(state, process)

    @property
    def _turn_timeout_s(self) -> float | None:
        ms = self._settings.turn_timeout_ms
        return ms / 1000 if ms > 0 else None

    async def _apply(self, state: PairRuntime, turn: Turn, event: TextDelta | ToolCall | TurnResult) -> None:
        if isinstance(event, TextDelta):
            await turn.publish({"chunk": {"text": event.text}})
        elif isinstance(event, ToolCall):
            await turn.publish(
                {"toolUse": {"tool": event.name, "input": event.input, "toolUseId": event.tool_use_id}}
            )
        else:
            cost = max(event.total_cost_usd - state.cost_base, 0.0)
            state.cost_base = event.total_cost_usd
            if turn.cancel_requested:
                await turn.finish(TurnStatus.CANCELLED, cost_usd=cost)
            elif event.is_error:
                detail = event.text or "; ".join(event.errors) or "Claude Code reported an error"
                await turn.finish(TurnStatus.ERROR, error=detail, cost_usd=cost)
            else:
                await turn.finish(TurnStatus.COMPLETED, final_text=event.text, cost_usd=cost)

    async def record(self, turn: Turn) -> None:
        """Write how the turn ended (a persisted turn cut off by shutdown stays queued). Never raises."""
        if turn.persist and turn.status is TurnStatus.QUEUED:
            return  # left queued for the next start
        await self._write(
            f"the end of {turn.message_id}",
            self._store.finish_turn(
                turn.message_id,
                status=turn.status.value,
                response=turn.response,
                error=turn.error,
                events=turn.events,
                started_at=turn.started_at,
                completed_at=turn.completed_at,
                duration_ms=turn.duration_ms,
                cost_usd=turn.cost_usd,
            ),
        )

    @staticmethod
    async def _write(what: str, write: Coroutine[Any, Any, None]) -> None:
        """Run a record write to its end even if the caller is cancelled; a failure is logged, not raised.

        A turn's outcome reaches its callers from memory; the record is the copy that survives restarts,
        so a failing disk must not also fail the turn, its siblings or the pool.
        """
        try:
            await asyncio.shield(write)
        except Exception as exc:  # noqa: BLE001 - best effort by design, see above
            logger.error("could not record %s: %r", what, exc)

    async def end_for_shutdown(self, turn: Turn) -> None:
        """End a turn the server is shutting down under: persisted ones are re-queued for the next start."""
        if turn.done:
            return
        if turn.persist:
            await turn.finish(
                TurnStatus.ERROR, error="server shut down; the message will run again at restart"
            )
            turn.status = TurnStatus.QUEUED  # the record keeps it queued
            await self._write(
                f"the re-queueing of {turn.message_id}", self._store.mark_queued(turn.message_id)
            )
        else:
            await turn.finish(TurnStatus.ERROR, error="server shut down before the turn finished")
            await self.record(turn)

    async def finish_all(
        self, state: PairRuntime, status: TurnStatus, why: str, *, failure: IrisError | None = None
    ) -> None:
        """End every queued turn of the pair (those queued when this was called): in memory, then recorded."""
        turns = list(state.queue)
        state.queue.clear()
        for turn in turns:
            self._forget(turn.message_id)
            if not self._is_closing():
                await turn.finish(status, error=why, failure=failure)
        for turn in turns:
            if self._is_closing():
                await self.end_for_shutdown(turn)
            else:
                await self.record(turn)

    async def cancel_turns(self, state: PairRuntime, why: str) -> None:
        """Cancel the pair's queued turns and mark its running one for cancellation."""
        for turn in state.queue:
            turn.cancel_requested = True
        await self.finish_all(state, TurnStatus.CANCELLED, why)
        if state.current is not None and not state.current.done:
            state.current.cancel_requested = True
