"""The event log: what happens inside Iris as one stream of numbered events that a client can resume.

Parts of Iris ``emit`` events (processes, turns, jobs, webhooks, permissions; a ``health`` event every few
seconds comes from here). Each gets the next id, which only grows, across restarts too; it is handed to
every live watcher at once and written to ``events.db`` in batches (a writer task, every 50 ms), where it is
kept for ``settings.eventRetention``. ``watch(after_id=N)`` first sends every kept event after N, then the
live ones, skipping none and repeating none: the watcher is registered before the backfill is read, and
the backfill stops at the id the registration saw.

A watcher that falls more than ``_WATCHER_BACKLOG`` events behind is dropped (its stream fails with
RESOURCE_EXHAUSTED, saying to resume from its last id), so one slow client cannot grow Iris's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .clock import now_ms
from .errors import TooManyRequestsError
from .sqlite_file import SqliteFile
from .turns import V1_STATUS, Turn

__all__ = ["EVENTS_FILE", "EventFilter", "EventLog"]

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.db"
_FLUSH_S = 0.05
_PRUNE_EVERY_S = 60.0
_WATCHER_BACKLOG = 10_000
_BACKFILL_PAGE = 1_000
_MAX_UNWRITTEN = 100_000
"""Events held in memory while the file cannot be written; older ones are dropped past this."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id    INTEGER PRIMARY KEY,
    at    INTEGER NOT NULL,
    body  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at);
"""


class _EventFile(SqliteFile):
    schema = _SCHEMA
    private = True


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a watcher gets."""

    team: str = ""
    session_id: str = ""
    kinds: tuple[str, ...] = ()
    """Kinds, or families ending in a dot ("turn.")."""
    from_team: str = ""
    """Only events of pairs with this calling team (a caller that may not see others'); health passes."""

    def passes(self, event: pb.WatchEventsResponse) -> bool:
        """Return whether ``event`` is one the watcher asked for and may see."""
        if event.kind == "health":
            return not self.kinds or any(_kind_matches(event.kind, kind) for kind in self.kinds)
        if self.from_team and event.from_team != self.from_team:
            return False
        if self.team and event.team != self.team:
            return False
        if self.session_id and event.session_id != self.session_id:
            return False
        return not self.kinds or any(_kind_matches(event.kind, kind) for kind in self.kinds)


def _kind_matches(kind: str, wanted: str) -> bool:
    return kind.startswith(wanted) if wanted.endswith(".") else kind == wanted


class _Watcher:
    def __init__(self, where: EventFilter) -> None:
        self.where = where
        self.queue: asyncio.Queue[pb.WatchEventsResponse] = asyncio.Queue(maxsize=_WATCHER_BACKLOG)
        self.dropped = False


class EventLog:
    """Numbers, keeps and fans out Iris's events. Open with ``async with``; ``emit`` never blocks."""

    def __init__(
        self,
        path: Path,
        *,
        retention_ms: int,
        health_every_s: float,
        health: Callable[[], pb.HealthSnapshot] | None = None,
    ) -> None:
        self._file = _EventFile(path)
        self._retention_ms = retention_ms
        self._health_every_s = health_every_s
        self.health = health
        """Called for each ``health`` event (set by the service once the pool exists)."""
        self._next_id = 1
        self._unwritten: list[pb.WatchEventsResponse] = []
        self._watchers: set[_Watcher] = set()
        self._wake_writer = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self._file.open()
        async with self._file._conn.execute("SELECT MAX(id) FROM events") as cur:
            row = await cur.fetchone()
        self._next_id = (int(row[0]) if row is not None and row[0] is not None else 0) + 1
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="events-writer"),
            asyncio.create_task(self._health_forever(), name="events-health"),
        ]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the tasks, write what is unwritten, and close."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._flush()
        await self._file.aclose()

    # --- emitting --------------------------------------------------------------------------------------

    def emit(self, event: pb.WatchEventsResponse) -> None:
        """Give ``event`` the next id, hand it to the live watchers, and queue it for writing."""
        event.id = self._next_id
        self._next_id += 1
        if not event.timestamp:
            event.timestamp = now_ms()
        self._unwritten.append(event)
        for watcher in list(self._watchers):
            if not watcher.where.passes(event):
                continue
            try:
                watcher.queue.put_nowait(event)
            except asyncio.QueueFull:
                watcher.dropped = True
                self._watchers.discard(watcher)
        if len(self._unwritten) >= _BACKFILL_PAGE:
            self._wake_writer.set()

    def turn_event(self, turn: Turn, event: pb.TellResponse) -> None:
        """Emit what a turn's stream says: a chunk, a tool use, a permission request, its end."""
        which = event.WhichOneof("event")
        base = pb.WatchEventsResponse(
            team=turn.pair.to_team,
            from_team=turn.pair.from_team,
            session_id=turn.session_id,
            message_id=turn.message_id,
            job_id=turn.job.job_id if turn.job is not None else "",
        )
        if which == "chunk":
            base.kind, base.text = "turn.chunk", event.chunk.text
        elif which == "tool_use":
            base.kind, base.tool = "turn.tool_use", event.tool_use.tool
            base.tool_input.CopyFrom(event.tool_use.input)
        elif which == "permission_request":
            base.kind, base.tool = "permission.requested", event.permission_request.tool
            base.request_id = event.permission_request.request_id
            base.tool_input.CopyFrom(event.permission_request.input)
        elif which == "complete":
            status = event.complete.status
            base.kind, base.status, base.error = (
                "turn.completed",
                V1_STATUS.get(status, status),
                event.complete.error,
            )
        else:
            return
        self.emit(base)

    def turn_started(self, turn: Turn) -> None:
        """Emit that a turn reached its process."""
        self.emit(self._about(turn, "turn.started"))

    def job_event(self, turn: Turn, kind: str) -> None:
        """Emit ``job.queued``, ``job.started`` or ``job.finished`` (with how it ended)."""
        event = self._about(turn, kind)
        if kind == "job.finished":
            event.status, event.error = V1_STATUS.get(turn.status.value, turn.status.value), turn.error
        self.emit(event)

    @staticmethod
    def _about(turn: Turn, kind: str) -> pb.WatchEventsResponse:
        return pb.WatchEventsResponse(
            kind=kind,
            team=turn.pair.to_team,
            from_team=turn.pair.from_team,
            session_id=turn.session_id,
            message_id=turn.message_id,
            job_id=turn.job.job_id if turn.job is not None else "",
        )

    # --- watching --------------------------------------------------------------------------------------

    async def watch(self, where: EventFilter, after_id: int) -> AsyncIterator[pb.WatchEventsResponse]:
        """Yield the kept events after ``after_id`` that pass ``where``, then the live ones, in id order.

        Raises:
            TooManyRequestsError: the watcher fell too far behind (resume from the last id it got).

        """
        watcher = _Watcher(where)
        self._watchers.add(watcher)
        seen = self._next_id - 1  # the registration's view: later events reach the watcher's queue
        after_id = min(after_id, seen)  # an id from the future means "from now on", not "never"
        try:
            last = after_id
            if after_id > 0:
                async for event in self._kept(where, after_id, seen):
                    last = event.id
                    yield event
                last = max(last, seen)
            else:
                last = seen
            while True:
                if watcher.dropped and watcher.queue.empty():
                    raise TooManyRequestsError(
                        f"This watcher fell more than {_WATCHER_BACKLOG} events behind; "
                        f"resume with afterId {last}",
                        details={"afterId": str(last)},
                    )
                event = await watcher.queue.get()
                if event.id > last:
                    last = event.id
                    yield event
        finally:
            self._watchers.discard(watcher)

    async def _kept(
        self, where: EventFilter, after_id: int, up_to: int
    ) -> AsyncIterator[pb.WatchEventsResponse]:
        """Yield the events with ids in (after_id, up_to]: written ones and unwritten ones, in order."""
        pending = {e.id: e for e in list(self._unwritten) if after_id < e.id <= up_to}
        cursor = after_id
        while cursor < up_to:
            async with self._file._conn.execute(
                "SELECT id, body FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (cursor, up_to, _BACKFILL_PAGE),
            ) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                break
            for row in rows:
                pending.pop(int(row[0]), None)
                event = pb.WatchEventsResponse.FromString(row[1])
                if where.passes(event):
                    yield event
            cursor = int(rows[-1][0])
        for event_id in sorted(pending):
            if event_id > cursor and where.passes(pending[event_id]):
                yield pending[event_id]

    # --- writing ---------------------------------------------------------------------------------------

    async def _flush(self) -> None:
        batch, self._unwritten = self._unwritten, []
        if not batch:
            return
        try:
            await self._file._conn.executemany(
                "INSERT OR IGNORE INTO events (id, at, body) VALUES (?, ?, ?)",
                [(e.id, e.timestamp, e.SerializeToString()) for e in batch],
            )
        except Exception:
            kept = batch + self._unwritten  # kept for the next try, but not without bound (a failing disk)
            if len(kept) > _MAX_UNWRITTEN:
                logger.error("dropping %d events that could not be written", len(kept) - _MAX_UNWRITTEN)
                kept = kept[-_MAX_UNWRITTEN:]
            self._unwritten = kept
            raise

    async def _write_forever(self) -> None:
        pruned = asyncio.get_running_loop().time()
        while True:
            self._wake_writer.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FLUSH_S):
                    await self._wake_writer.wait()
            try:
                await self._flush()
                if asyncio.get_running_loop().time() - pruned > _PRUNE_EVERY_S:
                    pruned = asyncio.get_running_loop().time()
                    await self._file._conn.execute(
                        "DELETE FROM events WHERE at < ?", (now_ms() - self._retention_ms,)
                    )
            except Exception as exc:  # noqa: BLE001 - the writer outlives one failed write (a full disk)
                logger.error("writing events failed: %r", exc)

    async def _health_forever(self) -> None:
        while True:
            await asyncio.sleep(self._health_every_s)
            if self.health is not None:
                self.emit(pb.WatchEventsResponse(kind="health", health=self.health()))
