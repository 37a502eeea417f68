"""The durable job queue: Execute's jobs and messages sent with ``persist``, run in priority order.

A job is a turn recorded before anything else happens to it, so every accepted job is still there after any
stop, even ``kill -9`` (the next start re-queues it; one cut off mid-run runs again on its session rewound to
before it, see ``rewind``). Jobs wait here rather than on their pair: the queue hands the pool at most
``settings.maxConcurrentJobs`` at once, the best first (high priority before normal before low, first come
first served within one), passing over a job whose pair already runs one, since a pair runs one turn at a
time. A job that waited past its ``ttlDays`` expires with that reason recorded; one that runs past its own
``timeout`` is cancelled. When a job ends, ``on_finished`` hears of it (the webhooks).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from .clock import now_ms
from .config import Settings, TeamConfig
from .errors import IrisError, ProcessPoolLimitError, TooManyRequestsError
from .events import EventLog
from .metrics import IrisMetrics
from .pool import ProcessPool
from .turns import Pair, Turn, TurnStatus

__all__ = ["DEFAULT_JOB_MS", "JobQueue"]

logger = logging.getLogger(__name__)

DEFAULT_JOB_MS = 30_000
"""What a job is expected to take before any has ended (for ``estimated_completion``)."""
_RECENT = 20
"""How many recent jobs' durations the estimate averages."""

OnFinished = Callable[[Turn], Awaitable[None]]


class JobQueue:
    """Holds jobs until a slot is free, hands them to the pool in order, and watches them to their end."""

    def __init__(
        self,
        settings: Settings,
        pool: ProcessPool,
        events: EventLog | None = None,
        metrics: IrisMetrics | None = None,
    ) -> None:
        self._events = events
        self._metrics = metrics
        self._max_running = settings.max_concurrent_jobs
        self._max_waiting = settings.max_queued_jobs
        self._pool = pool
        self._waiting: list[tuple[int, int, int, str]] = []
        """Sort keys of the waiting jobs: (-priority, created_at, arrival, message id)."""
        self._turns: dict[str, tuple[Turn, TeamConfig]] = {}
        """The waiting jobs by message id."""
        self._running: dict[str, Turn] = {}
        self._arrivals = itertools.count()
        self._durations: deque[int] = deque(maxlen=_RECENT)
        self._group = asyncio.TaskGroup()
        self._closing = False
        self.on_finished: OnFinished | None = None
        """Called once with each job that ended in this run (not one left queued for the next)."""

    async def __aenter__(self) -> Self:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop handing out jobs; the waiting ones stay queued in the record for the next start.

        Entered before the pool, so this runs after the pool has ended every turn of this run: the watchers
        see their jobs end (a persisted one re-queued) and finish.
        """
        self._closing = True
        for turn, _team in list(self._turns.values()):
            await turn.requeue_for_restart()  # its callers' waits end; the record keeps it queued
        self._waiting.clear()
        self._turns.clear()
        await self._group.__aexit__(kind, exc, tb)

    def __len__(self) -> int:
        return len(self._waiting)

    async def enqueue(self, turn: Turn, team: TeamConfig, *, recovered: bool = False) -> None:
        """Queue a recorded job and hand out what may run now.

        Raises:
            TooManyRequestsError: ``settings.maxQueuedJobs`` jobs are already waiting (never for a job
                ``recovered`` from the record at start: an accepted job is never dropped).

        """
        if len(self._waiting) >= self._max_waiting and not recovered:
            if self._metrics is not None:
                self._metrics.rate_limited("job_queue")
            raise TooManyRequestsError(
                f"{len(self._waiting)} jobs are already waiting; try again later",
                details={"queued": len(self._waiting), "limit": self._max_waiting},
            )
        priority = turn.job.priority if turn.job is not None else 1
        key = (-priority, turn.created_at, next(self._arrivals), turn.message_id)
        bisect.insort(self._waiting, key)
        self._turns[turn.message_id] = (turn, team)
        if self._events is not None:
            self._events.job_event(turn, "job.queued")
        await self._dispatch()

    def live_turn(self, message_id: str) -> Turn | None:
        """Return this run's turn of a message: waiting here, or handed to its pair; None if it has none."""
        return self.waiting_turn(message_id) or self._pool.live_turns().get(message_id)

    def waiting_turn(self, message_id: str) -> Turn | None:
        """Return the job with this message id if it is waiting here (not yet handed to its pair)."""
        found = self._turns.get(message_id)
        return found[0] if found is not None else None

    async def cancel(self, turn: Turn) -> bool:
        """Cancel a waiting job (it never starts); False if it is not waiting here."""
        if turn.message_id not in self._turns:
            return False
        self._forget(turn.message_id)
        await self._pool.end_unrun([turn], TurnStatus.CANCELLED, "cancelled before it ran")
        await self._ended(turn)
        return True

    def waiting_for(self, pair: Pair) -> int:
        """Return how many of the pair's jobs wait here (not yet handed to the pair)."""
        return sum(1 for turn, _team in self._turns.values() if turn.pair == pair)

    async def cancel_for(self, pair: Pair, why: str) -> list[Turn]:
        """Cancel the pair's waiting jobs (a SessionCancel, or its session removed); return them."""
        taken = [turn for turn, _team in self._turns.values() if turn.pair == pair]
        for turn in taken:
            self._forget(turn.message_id)
        await self._pool.end_unrun(taken, TurnStatus.CANCELLED, why)
        for turn in taken:
            await self._ended(turn)
        return taken

    def position(self, message_id: str) -> int:
        """Return the job's place in the queue, from 1; 0 once it has left the queue."""
        for place, key in enumerate(self._waiting, start=1):
            if key[3] == message_id:
                return place
        return 0

    def estimated_completion(self, message_id: str) -> int:
        """Return when the job should end (Unix ms): the jobs ahead of it, in waves, at the recent pace."""
        pace = sum(self._durations) / len(self._durations) if self._durations else DEFAULT_JOB_MS
        ahead = max(self.position(message_id) - 1, 0) + len(self._running)
        waves = ahead // self._max_running + 1
        return now_ms() + int(waves * pace)

    def _forget(self, message_id: str) -> None:
        self._turns.pop(message_id, None)
        self._waiting = [key for key in self._waiting if key[3] != message_id]

    def _pick(self) -> tuple[Turn, TeamConfig] | None:
        busy: set[Pair] = {turn.pair for turn in self._running.values()}
        for index, key in enumerate(self._waiting):
            turn, team = self._turns[key[3]]
            if turn.pair not in busy:
                del self._waiting[index]
                del self._turns[key[3]]
                return turn, team
        return None

    async def _dispatch(self) -> None:
        """Hand the best waiting jobs to the pool while fewer than ``maxConcurrentJobs`` run."""
        while not self._closing and len(self._running) < self._max_running:
            picked = self._pick()
            if picked is None:
                return
            turn, team = picked
            if turn.expires_at and turn.expires_at <= now_ms():
                await self._pool.end_unrun([turn], TurnStatus.ERROR, "expired: it waited past its ttlDays")
                await self._ended(turn)
                continue
            self._running[turn.message_id] = turn  # before the await: a concurrent dispatch counts it
            try:
                await self._pool.resubmit(turn, team)
            except ProcessPoolLimitError:  # the pool is closing: the job stays queued in the record
                self._running.pop(turn.message_id, None)
                return
            if self._events is not None:
                self._events.job_event(turn, "job.started")
            self._group.create_task(self._watch(turn), name=f"job-{turn.message_id}")

    async def _watch(self, turn: Turn) -> None:
        """Wait for a running job's end (cancel it past its timeout), then free its slot and report it."""
        try:
            limit = turn.job.timeout_ms / 1000 if turn.job is not None and turn.job.timeout_ms else None
            if not await turn.wait(limit):
                logger.info("job %s ran past its timeout; cancelling it", turn.message_id)
                with contextlib.suppress(IrisError):
                    await self._pool.cancel_one(turn)
                await turn.wait(None)  # settings.turnTimeout bounds every turn
        finally:
            self._running.pop(turn.message_id, None)
        if turn.status is not TurnStatus.REQUEUED:
            self._durations.append(turn.duration_ms)
            await self._ended(turn)
        await self._dispatch()

    async def _ended(self, turn: Turn) -> None:
        """Report a job's end, however it came (ran, cancelled or expired while waiting): event, webhook."""
        if self._events is not None:
            self._events.job_event(turn, "job.finished")
        if self.on_finished is not None:
            try:
                await self.on_finished(turn)
            except Exception as exc:  # noqa: BLE001 - a failed report must not stop the queue
                logger.error("reporting the end of job %s failed: %r", turn.message_id, exc)
