"""A turn: one message to a team and everything it produces; the one owner of a turn's life.

A ``Turn`` is the meeting point of the pool (which runs it), the waiting caller (SendMessage with a
timeout), stream readers (Tell) and the record (SessionReport). Its states and every legal move between
them are written once, here, in ``TRANSITIONS``; any other move raises ``IllegalTransitionError``::

    QUEUED ──► RUNNING ──► COMPLETED | CANCELLED | ERROR
       ▲          │
       └──────────┤        (its process was dead before the turn began: it runs again, once, on a new one)
       │          └──────► REQUEUED   (persisted, cut off by a shutdown: runs again at the next start)
       └─────────────────► CANCELLED | ERROR | REQUEUED

Its events are the contract's own ``TellResponse`` messages, built only here (``start``, ``chunk``,
``tool_use``, ``permission_request``, ``complete``), so the stream, the record and the report share one
representation. Events are kept in order; a reader that subscribes late first gets the events kept so far,
then the live ones, so nobody misses the start.

What a turn keeps is bounded (``settings.maxTurnEventsBytes``, ``settings.maxResponseBytes``, set by the
runner): past the events cap, events are still published to the readers following the turn but no longer
kept, and the kept ``complete`` event carries the answer cut to the response cap; ``truncated`` says so.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .budgets import Budget
from .clock import monotonic_ms, now_ms
from .config import Settings
from .errors import IrisError
from .spend import ModelSpend
from .tracing import TurnTrace

__all__ = ["TRANSITIONS", "IllegalTransitionError", "Pair", "Turn", "TurnStatus", "cut_text"]


class TurnStatus(enum.StrEnum):
    """Where a turn is. The values are what the record and SessionReport show."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"
    REQUEUED = "requeued"
    """Final for this server run only: a persisted turn cut off by a shutdown, left queued in the record."""

    @property
    def final(self) -> bool:
        """True once nothing more happens to the turn in this run."""
        return self not in (TurnStatus.QUEUED, TurnStatus.RUNNING)


V1_STATUSES = {
    "queued": TurnStatus.QUEUED.value,
    "processing": TurnStatus.RUNNING.value,
    "completed": TurnStatus.COMPLETED.value,
    "failed": TurnStatus.ERROR.value,
    "cancelled": TurnStatus.CANCELLED.value,
}
"""The v1 API's statuses (GetMessage, ListMessages, Execute) and the recorded ones they stand for."""
V1_STATUS = {recorded: v1 for v1, recorded in V1_STATUSES.items()} | {TurnStatus.REQUEUED.value: "queued"}
"""A recorded (or live) status as the v1 API says it."""

TRANSITIONS: Mapping[TurnStatus, frozenset[TurnStatus]] = {
    TurnStatus.QUEUED: frozenset(
        {TurnStatus.RUNNING, TurnStatus.CANCELLED, TurnStatus.ERROR, TurnStatus.REQUEUED}
    ),
    TurnStatus.RUNNING: frozenset(
        {TurnStatus.COMPLETED, TurnStatus.CANCELLED, TurnStatus.ERROR, TurnStatus.REQUEUED, TurnStatus.QUEUED}
    ),
}
"""Every legal move of a turn; final states have none."""

REQUEUED_MESSAGE = "server shut down; the message will run again at restart"
"""What the callers of a requeued turn are told (its ``complete`` says "error": their wait is over)."""


class IllegalTransitionError(RuntimeError):
    """A move the turn's life does not allow: a bug in Iris, never a caller's mistake."""


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """A (calling team, target team) pair: the unit of process, session and queue."""

    from_team: str
    """Calling team."""
    to_team: str
    """Target team."""

    def __str__(self) -> str:
        return f"{self.from_team}->{self.to_team}"


def struct_of(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """Return a JSON object (a tool's input) as a ``google.protobuf.Struct``."""
    result = struct_pb2.Struct()
    result.update(value)
    return result


_DEFAULTS = Settings()


def cut_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """Return ``text`` cut to at most ``max_bytes`` of UTF-8 (never mid-character), and whether it was."""
    if len(text) * 4 <= max_bytes:  # cheap: no UTF-8 character is longer than 4 bytes
        return text, False
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode(errors="ignore"), True


FILE_INPUTS = ("file_path", "notebook_path", "path")
"""Input fields by which Claude Code's tools name a file or folder (Read, Write, Edit, Grep, Glob...)."""


def token_usage(usage: Mapping[str, Any]) -> pb.TokenUsage:
    """Return Claude Code's ``usage`` of a turn as the contract's TokenUsage (unknown fields ignored)."""

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    return pb.TokenUsage(
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_creation_input_tokens=count("cache_creation_input_tokens"),
        cache_read_input_tokens=count("cache_read_input_tokens"),
    )


PRIORITIES = ("low", "normal", "high")
"""A job's priorities, lowest first (the record keeps the index)."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What makes a turn a job (Execute, or a message sent with ``persist``): how it is queued, reported."""

    job_id: str = ""
    """``job_...`` for an Execute job; empty for a persisted message."""
    priority: int = 1
    """Index into ``PRIORITIES``."""
    callback: pb.WebhookCallback | None = None
    """Where the result is POSTed when the job ends."""
    timeout_ms: int = 0
    """How long the job may run once started; 0: settings.turnTimeout alone."""
    owner: str = ""
    """The API key that sent it (its idempotency scope)."""
    idempotency_key: str = ""


@dataclass(eq=False)
class Turn:
    """One message's lifetime. Its state changes only through the methods below, which check the table."""

    message_id: str
    pair: Pair
    session_id: str
    request: str
    created_at: int = field(default_factory=now_ms)
    persist: bool = False
    expires_at: int = 0
    started_at: int = 0
    attempts: int = 0
    """How many times the turn has started running (a second time after its process was found dead, or
    after a stop or crash of Iris cut it off), counting those of earlier runs of Iris."""
    recovered_attempts: int = 0
    """The attempts made by earlier runs of Iris (a persisted turn re-queued at start)."""
    rewind_prompts: tuple[str, ...] = ()
    """The prompt uuids an attempt cut off by a stop or crash of Iris may have had: the pair's next process
    resumes the session from before the one found (``rewind``). Cleared once the new attempt's prompt is
    sent, so a process that dies before that is rewound again."""
    completed_at: int = 0
    cost_usd: float = 0.0
    error: str = ""
    failure: IrisError | None = None
    """The domain error that ended the turn, when it was an Iris failure (e.g. ProcessError)."""
    cancel_requested: bool = False
    """A cancel arrived; the turn ends as cancelled at the first moment it can."""
    tools_used: list[str] = field(default_factory=list)
    """Names of the tools the team used, each once, in the order of first use (kept whatever the caps)."""
    files_accessed: list[str] = field(default_factory=list)
    """Files the team's tools named, each once, in order (``FILE_INPUTS`` of their input)."""
    usage: pb.TokenUsage = field(default_factory=pb.TokenUsage)
    """Tokens of the turn, as Claude Code reported them at its end."""
    spend: tuple[ModelSpend, ...] = ()
    """The turn's cost and tokens per model, for the cost ledger (empty until it ends)."""
    key_name: str = ""
    """The API key the message was sent with ("" without authentication): costs and budgets are per key."""
    budgets: tuple[Budget, ...] = ()
    """The budgets the turn falls under, checked again just before it starts (it may have waited)."""
    chunk_count: int = 0
    """Text chunks published so far (kept whatever the caps)."""
    tool_use_count: int = 0
    """Tool uses published so far."""
    context: pb.AskContext | None = None
    """Where the message came from (Ask's ``context``), if it said; recorded with the turn."""
    job: JobSpec | None = None
    """Set for a turn that runs as a job (queued in the job queue, not straight on its pair)."""
    observer: Callable[[Turn, pb.TellResponse], None] | None = None
    """Told of every event the turn publishes (the event log)."""
    trace: TurnTrace = field(default_factory=TurnTrace.new_trace)
    """Where the turn's spans belong: the accepting call's trace (set where the turn is accepted), else a
    trace of its own (see ``tracing``)."""
    sent: bool = False
    """The prompt has reached Claude Code, so an interrupt can act on it."""
    events: list[pb.TellResponse] = field(default_factory=list)
    """The events kept for the record (bounded by ``max_events_bytes``; ``complete`` is always kept)."""
    max_events_bytes: int = _DEFAULTS.max_turn_events_bytes
    """Bytes of events (other than ``complete``) kept in ``events``; later ones are published, not kept."""
    max_response_bytes: int = _DEFAULTS.max_response_bytes
    """Bytes of the answer the kept ``complete`` event carries."""
    truncated: bool = False
    """Some event was not kept, or the kept ``complete`` carries a cut answer."""
    _kept_bytes: int = 0
    _events_full: bool = False
    _followers: set[asyncio.Queue[pb.TellResponse]] = field(default_factory=set)
    _status: TurnStatus = TurnStatus.QUEUED
    _text: list[str] = field(default_factory=list)
    _final_text: str | None = None
    _started_mono: float = field(default_factory=monotonic_ms)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def status(self) -> TurnStatus:
        """Where the turn is (see ``TRANSITIONS``)."""
        return self._status

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
        """True once the turn has ended in this run."""
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

    # --- transitions -----------------------------------------------------------------------------------

    def _move(self, to: TurnStatus) -> None:
        if to not in TRANSITIONS.get(self._status, frozenset()):
            raise IllegalTransitionError(f"turn {self.message_id}: {self._status} -> {to} is not allowed")
        self._status = to

    def start_running(self) -> None:
        """QUEUED -> RUNNING: the turn reached its process."""
        self._move(TurnStatus.RUNNING)
        self.started_at = now_ms()
        self.attempts += 1

    def back_to_queue(self) -> None:
        """Move RUNNING -> QUEUED: its process was dead before the turn began; none of it reached Claude."""
        self._move(TurnStatus.QUEUED)
        self.sent = False

    async def end(
        self,
        status: TurnStatus,
        *,
        final_text: str | None = None,
        error: str = "",
        failure: IrisError | None = None,
        cost_usd: float = 0.0,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Move to a final state, publish the ``complete`` event and release every waiter.

        ``usage`` is Claude Code's own token count of the turn (its result's ``usage``), when it has one.

        Raises:
            IllegalTransitionError: the turn has already ended, or ``status`` is not a final state.

        """
        if not status.final:
            raise IllegalTransitionError(f"turn {self.message_id}: {status} is not a final state")
        self._move(status)
        self.error = error
        self.failure = failure
        self.cost_usd = cost_usd
        if usage:
            self.usage = token_usage(usage)
        if final_text is not None and status is TurnStatus.COMPLETED:
            self._final_text = final_text
        self.completed_at = max(now_ms(), self.created_at)
        self.trace.end(self)  # the turn's spans end with it, whichever way it ends
        wire_status = TurnStatus.ERROR if status is TurnStatus.REQUEUED else status
        await self._publish(
            pb.TellResponse(complete=self._complete(wire_status.value, error=error, cost_usd=cost_usd))
        )
        self._done.set()

    def metadata(self) -> pb.AskMetadata:
        """Return what the turn did and cost so far (complete once it has ended)."""
        return pb.AskMetadata(
            tools_used=self.tools_used,
            files_accessed=self.files_accessed,
            cost_usd=self.cost_usd,
            usage=self.usage,
        )

    def progress(self) -> pb.MessageProgress:
        """Return chunks and tool uses so far, and a percentage where one is known (queued 0, ended 100)."""
        progress = pb.MessageProgress(chunks=self.chunk_count, tool_uses=self.tool_use_count)
        if self.status is TurnStatus.QUEUED:
            progress.percentage = 0
        elif self.done:
            progress.percentage = 100
        return progress

    async def requeue_for_restart(self) -> None:
        """End the turn for this run only (a persisted turn at shutdown); the record keeps it queued."""
        await self.end(TurnStatus.REQUEUED, error=REQUEUED_MESSAGE)

    # --- events: the only place a TellResponse is built -----------------------------------------------

    async def publish_start(self) -> None:
        """Publish the first event: the turn was accepted."""
        start = pb.TellStart(
            message_id=self.message_id,
            session_id=self.session_id,
            team=self.pair.to_team,
            from_team=self.pair.from_team,
            timestamp=self.created_at,
        )
        await self._publish(pb.TellResponse(start=start))

    async def publish_chunk(self, text: str) -> None:
        """Publish a piece of the answer's text."""
        self._text.append(text)
        self.chunk_count += 1
        await self._publish(pb.TellResponse(chunk=pb.TellChunk(text=text)))

    async def publish_tool_use(self, tool: str, tool_input: Mapping[str, Any], tool_use_id: str) -> None:
        """Publish that the team's Claude uses a tool (and note its name and the file it names)."""
        self.tool_use_count += 1
        if tool not in self.tools_used:
            self.tools_used.append(tool)
        for key in FILE_INPUTS:
            named = tool_input.get(key)
            if isinstance(named, str) and named and named not in self.files_accessed:
                self.files_accessed.append(named)
        use = pb.TellToolUse(tool=tool, input=struct_of(tool_input), tool_use_id=tool_use_id)
        await self._publish(pb.TellResponse(tool_use=use))

    async def publish_permission_request(
        self, request_id: str, tool: str, tool_input: Mapping[str, Any], expires_at: int
    ) -> None:
        """Publish a tool call waiting for a decision (grantPermission "ask")."""
        asked = pb.TellPermissionRequest(
            request_id=request_id, tool=tool, input=struct_of(tool_input), expires_at=expires_at
        )
        await self._publish(pb.TellResponse(permission_request=asked))

    def stream_end(self, status: str) -> pb.TellResponse:
        """Return the last event of a stream that ends before its turn does ("timeout", "async")."""
        return pb.TellResponse(complete=self._complete(status, error="", cost_usd=0.0, at=now_ms()))

    def _complete(self, status: str, *, error: str, cost_usd: float, at: int = 0) -> pb.TellComplete:
        return pb.TellComplete(
            message_id=self.message_id,
            response=self.response,
            status=status,
            duration=self.duration_ms,
            cost_usd=cost_usd,
            session_id=self.session_id,
            error=error,
            timestamp=at or self.completed_at,
        )

    async def _publish(self, event: pb.TellResponse) -> None:
        """Hand ``event`` to every follower; keep it for the record while within the caps.

        Past ``max_events_bytes`` no further event is kept (the kept ones stay a prefix of the stream),
        except ``complete``, whose kept copy carries the answer cut to ``max_response_bytes``.
        """
        for queue in self._followers:
            queue.put_nowait(event)
        if self.observer is not None:
            self.observer(self, event)
        if event.HasField("complete"):
            self.events.append(self._kept_complete(event))
            return
        size = event.ByteSize()
        if self._events_full or self._kept_bytes + size > self.max_events_bytes:
            self._events_full = self.truncated = True
            return
        self._kept_bytes += size
        self.events.append(event)

    def _kept_complete(self, event: pb.TellResponse) -> pb.TellResponse:
        response, cut = cut_text(event.complete.response, self.max_response_bytes)
        if not cut:
            return event
        self.truncated = True
        kept = pb.TellResponse()
        kept.CopyFrom(event)
        kept.complete.response = response
        return kept

    # --- read by streams -------------------------------------------------------------------------------

    async def follow(self) -> AsyncGenerator[pb.TellResponse]:
        """Yield every kept event from the first, then live ones, ending after ``complete``."""
        backlog = list(self.events)
        queue: asyncio.Queue[pb.TellResponse] = asyncio.Queue()
        self._followers.add(queue)  # no await since the copy: no event is missed or seen twice
        try:
            for event in backlog:
                yield event
                if event.HasField("complete"):
                    return
            while True:
                event = await queue.get()
                yield event
                if event.HasField("complete"):
                    return
        finally:
            self._followers.discard(queue)
