"""A turn: one message to a team and everything it produces, observable while it runs.

A ``Turn`` is the meeting point of the pool (which runs it), the waiting caller (SendMessage with a
timeout), stream readers (Tell) and the record (SessionReport). Events are kept in order; a reader that
subscribes late first gets the events so far, then the live ones, so nobody misses the start.

Events are plain dicts shaped like the contract's ``TellResponse`` JSON (``{"chunk": {"text": "..."}}``), so
the record, the stream and the report share one representation without the core importing protobuf code.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from .clock import monotonic_ms, now_ms
from .errors import IrisError

__all__ = ["Pair", "Turn", "TurnStatus"]

Event = dict[str, Any]


class TurnStatus(enum.StrEnum):
    """Where a turn is; the final values are what callers see as ``status``."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """A (calling team, target team) pair: the unit of process, session and queue."""

    from_team: str
    """Calling team."""
    to_team: str
    """Target team."""

    def __str__(self) -> str:
        return f"{self.from_team}->{self.to_team}"


@dataclass(eq=False)
class Turn:
    """One message's lifetime; mutated only by the pool, read by everyone else."""

    message_id: str
    pair: Pair
    session_id: str
    request: str
    created_at: int = field(default_factory=now_ms)
    persist: bool = False
    expires_at: int = 0
    status: TurnStatus = TurnStatus.QUEUED
    started_at: int = 0
    completed_at: int = 0
    cost_usd: float = 0.0
    error: str = ""
    failure: IrisError | None = None
    """The domain error that ended the turn, when it was an Iris failure (e.g. ProcessError)."""
    cancel_requested: bool = False
    sent: bool = False
    """The prompt has reached Claude Code, so an interrupt can act on it."""
    events: list[Event] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)
    _final_text: str | None = None
    _started_mono: float = field(default_factory=monotonic_ms)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def response(self) -> str:
        """The answer: the final result text once completed, else the text streamed so far."""
        return self._final_text if self._final_text is not None else "".join(self._text)

    @property
    def duration_ms(self) -> int:
        """Milliseconds since acceptance (frozen once the turn ends)."""
        if self.completed_at:
            return self.completed_at - self.created_at
        return int(monotonic_ms() - self._started_mono)

    @property
    def done(self) -> bool:
        """True once the turn has ended."""
        return self._done.is_set()

    async def wait(self, timeout_s: float | None) -> bool:
        """Wait for the end of the turn; return False if ``timeout_s`` ran out first (None: no limit)."""
        if timeout_s is None:
            await self._done.wait()
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self._done.wait()
        except TimeoutError:
            return False
        return True

    # --- written by the pool ---------------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Append an event and wake readers."""
        chunk = event.get("chunk")
        if chunk is not None:
            self._text.append(chunk["text"])
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def mark_running(self) -> None:
        """Note that the turn reached its process."""
        self.status = TurnStatus.RUNNING
        self.started_at = now_ms()

    async def finish(
        self,
        status: TurnStatus,
        *,
        final_text: str | None = None,
        error: str = "",
        failure: IrisError | None = None,
        cost_usd: float = 0.0,
    ) -> None:
        """End the turn: publish the ``complete`` event and release every waiter. Idempotent."""
        if self.done:
            return
        self.status = status
        self.error = error
        self.failure = failure
        self.cost_usd = cost_usd
        if final_text is not None and status is TurnStatus.COMPLETED:
            self._final_text = final_text
        self.completed_at = max(now_ms(), self.created_at)
        await self.publish(
            {
                "complete": {
                    "messageId": self.message_id,
                    "response": self.response,
                    "status": status.value,
                    "duration": self.duration_ms,
                    "costUsd": cost_usd,
                    "sessionId": self.session_id,
                    "error": error,
                    "timestamp": self.completed_at,
                }
            }
        )
        self._done.set()

    # --- read by streams -------------------------------------------------------------------------------

    def _has_events_after(self, index: int) -> bool:
        return index < len(self.events)

    async def follow(self) -> AsyncGenerator[Event]:
        """Yield every event from the first, then live ones, ending after ``complete``."""
        index = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._has_events_after, index))
                batch = self.events[index:]
            index += len(batch)
            for event in batch:
                yield event
                if "complete" in event:
                    return
