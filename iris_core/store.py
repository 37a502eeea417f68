"""Sessions and turn records in SQLite (aiosqlite, WAL), under ``$IRIS_HOME``.

Everything a user expects to survive a restart lives here: one session per (caller, team) pair and one row
per turn with its request, streamed events, final response, status, timings, cost and error. A turn costs
two writes: its row when it is accepted (so an accepted message is never lost; written before the turn is
queued) and its outcome with its events when it ends, queued then and written with others within a second
(``WriteBehind``, read back after a flush); while it runs its live state is in memory (reports overlay it),
keeping SQLite off the message path.

A turn's record is bounded (``settings.maxTurnEventsBytes`` and ``maxResponseBytes``, applied by the turn
and the runner; ``truncated`` marks a cut record), and reports read it a page at a time: ``turns_page``
finds one page with an indexed keyset query on ``(session_id, created_at, rowid)``, sized first from the
columns' lengths so that a page never loads more than about ``page_bytes``, and decodes that page's
events off the event loop. Rows written before the caps existed are cut when read: the response to the
cap, and events whose JSON is far past the caps are left out (the entry then says ``truncated``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import aiosqlite
from google.protobuf import json_format
from google.protobuf.message import Message

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .clock import now_ms
from .sqlite_file import SqliteFile
from .turns import JobSpec, cut_text

__all__ = [
    "FreshSessionIds",
    "PageKey",
    "SessionCounts",
    "SessionIds",
    "SessionRow",
    "Store",
    "TurnPage",
    "TurnRow",
    "WriteBehind",
]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id    TEXT PRIMARY KEY,
    from_team     TEXT NOT NULL,
    to_team       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (from_team, to_team)
);
CREATE TABLE IF NOT EXISTS turns (
    message_id   TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    from_team    TEXT NOT NULL,
    to_team      TEXT NOT NULL,
    request      TEXT NOT NULL,
    status       TEXT NOT NULL,
    response     TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT '',
    events       TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    started_at   INTEGER NOT NULL DEFAULT 0,
    completed_at INTEGER NOT NULL DEFAULT 0,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    cost_usd     REAL NOT NULL DEFAULT 0,
    persist      INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    truncated    INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    context      TEXT NOT NULL DEFAULT '',
    metadata     TEXT NOT NULL DEFAULT '',
    progress     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, created_at);
CREATE INDEX IF NOT EXISTS turns_by_status ON turns (status);
CREATE TABLE IF NOT EXISTS webhooks (
    message_id   TEXT PRIMARY KEY,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    message_id   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status_code  INTEGER NOT NULL,
    error        TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (message_id, attempt)
);
CREATE INDEX IF NOT EXISTS turns_by_time ON turns (created_at);
CREATE INDEX IF NOT EXISTS turns_by_target ON turns (to_team, created_at);
CREATE INDEX IF NOT EXISTS turns_by_caller ON turns (from_team, created_at);
"""


_SESSIONS = (
    "SELECT s.session_id, s.from_team, s.to_team, s.created_at, COUNT(t.message_id) AS message_count, "
    "COALESCE(MAX(t.created_at), s.created_at) AS last_used_at "
    "FROM sessions s LEFT JOIN turns t ON t.session_id = s.session_id "
)


class SessionIds(Protocol):
    """Chooses the id of each new session (Claude Code's session id, which Iris picks)."""

    def mint(self, from_team: str, to_team: str) -> str:
        """Return a new session id for the pair; it must never have been used for another session."""

    def withdraw(self, session_id: str) -> None:
        """Take back a minted id that no session used (a concurrent creation of the session won)."""


class FreshSessionIds:
    """A new uuid4 for each session (the default, when no warm spare offers its id)."""

    def mint(self, from_team: str, to_team: str) -> str:
        """Return a new uuid4."""
        del from_team, to_team
        return str(uuid.uuid4())

    def withdraw(self, session_id: str) -> None:
        """Nothing to undo."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A pair's session as stored."""

    session_id: str
    """The Claude session id Iris chose (a uuid4)."""
    from_team: str
    """Calling team."""
    to_team: str
    """Target team."""
    created_at: int
    """Unix ms of creation."""
    last_used_at: int
    """Unix ms of the last turn accepted (derived from the turns)."""
    message_count: int
    """Turns accepted in this session (derived from the turns)."""


@dataclass(frozen=True, slots=True)
class TurnRow:
    """A turn as stored."""

    message_id: str
    """Id of the turn."""
    session_id: str
    """Session it belongs to."""
    from_team: str
    """Calling team."""
    to_team: str
    """Target team."""
    request: str
    """The message sent."""
    status: str
    """queued | running | completed | cancelled | error."""
    response: str
    """The answer (partial when the turn did not complete)."""
    error: str
    """Error text for failed turns."""
    events: Sequence[pb.TellResponse]
    """Streamed events, as the contract's TellResponse messages."""
    created_at: int
    """Unix ms of acceptance."""
    started_at: int
    """Unix ms the turn started running (0 while queued)."""
    completed_at: int
    """Unix ms the turn ended (0 while active)."""
    duration_ms: int
    """Acceptance to end."""
    cost_usd: float
    """Cost of the turn."""
    persist: bool
    """Re-run after a restart if it had not finished."""
    expires_at: int
    """Unix ms after which a persisted turn is no longer re-run."""
    truncated: bool = False
    """The record was cut to the caps (events not kept, or the response cut)."""
    attempts: int = 0
    """How many times the turn started running (a persisted turn's count is written before each prompt)."""
    context: pb.AskContext = dataclasses.field(default_factory=pb.AskContext)
    """Where the message came from (Ask's ``context``), if it said."""
    metadata: pb.AskMetadata = dataclasses.field(default_factory=pb.AskMetadata)
    """What the turn did and cost (written at its end)."""
    progress: pb.MessageProgress = dataclasses.field(default_factory=pb.MessageProgress)
    """Chunks and tool uses of the turn (written at its end)."""
    job: JobSpec | None = None
    """Set for a turn that runs as a job."""


PageKey = tuple[int, int]
"""Where a page of a session's turns ends: the last turn's (created_at, rowid)."""


@dataclass(frozen=True, slots=True)
class TurnPage:
    """One page of a session's turns, oldest first."""

    rows: Sequence[TurnRow]
    """The page's turns."""
    keys: Sequence[PageKey]
    """Each turn's key, in the same order."""
    more: bool
    """Turns follow this page."""


@dataclass(frozen=True, slots=True)
class SessionCounts:
    """A session's turns counted in SQL, by recorded status."""

    total: int
    """All turns."""
    completed: int
    """Turns recorded as completed."""
    active_ids: Sequence[str]
    """Message ids of the turns recorded as queued or running (at most a pair's queue and one more)."""

    @property
    def failed(self) -> int:
        """Turns recorded as cancelled or failed."""
        return self.total - self.completed - len(self.active_ids)


_EVENTS_JSON_FACTOR = 8
"""How much longer than its proto bytes a turn's events may be as stored JSON (a one-character chunk is
5 bytes of proto and 26 of JSON); stored events longer than this times the caps predate the caps and are
left out of a report rather than decoded."""


def _session(row: aiosqlite.Row) -> SessionRow:
    return SessionRow(
        session_id=row["session_id"],
        from_team=row["from_team"],
        to_team=row["to_team"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        message_count=row["message_count"],
    )


def _events_from_json(text: str) -> list[pb.TellResponse]:
    """Read the stored events (proto3 JSON of TellResponse, one object per event)."""
    return [json_format.ParseDict(event, pb.TellResponse()) for event in json.loads(text)]


def _events_to_json(events: Sequence[pb.TellResponse]) -> str:
    """Store events as proto3 JSON: readable with sqlite3, and the same form older records have."""
    return json.dumps([json_format.MessageToDict(event) for event in events])


def _turn(row: aiosqlite.Row, *, events: Sequence[pb.TellResponse] | None = None) -> TurnRow:
    return TurnRow(
        message_id=row["message_id"],
        session_id=row["session_id"],
        from_team=row["from_team"],
        to_team=row["to_team"],
        request=row["request"],
        status=row["status"],
        response=row["response"],
        error=row["error"],
        events=_events_from_json(row["events"]) if events is None else events,
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        duration_ms=row["duration_ms"],
        cost_usd=row["cost_usd"],
        persist=bool(row["persist"]),
        expires_at=row["expires_at"],
        truncated=bool(row["truncated"]),
        attempts=row["attempts"],
        context=_parsed(row["context"], pb.AskContext),
        metadata=_parsed(row["metadata"], pb.AskMetadata),
        progress=_parsed(row["progress"], pb.MessageProgress),
        job=_job(row),
    )


def _job(row: aiosqlite.Row) -> JobSpec | None:
    keys = row.keys()
    if "job_id" not in keys or not (row["persist"] or row["job_id"]):
        return None
    callback = _parsed(row["callback"], pb.WebhookCallback) if row["callback"] else None
    return JobSpec(
        job_id=row["job_id"],
        priority=row["priority"],
        callback=callback,
        timeout_ms=row["job_timeout_ms"],
        owner=row["owner"],
        idempotency_key=row["idempotency_key"],
    )


_M = TypeVar("_M", bound=Message)


def _parsed(text: str, kind: type[_M]) -> _M:
    """Read a stored message (proto3 JSON); an empty column (an active turn, an older record): defaults."""
    return json_format.Parse(text, kind(), ignore_unknown_fields=True) if text else kind()


def _stored(message: Message) -> str:
    return json_format.MessageToJson(message, indent=None) if message.ByteSize() else ""


def _bounded_turn(row: aiosqlite.Row, max_response_bytes: int, max_events_bytes: int) -> TurnRow:
    """Read a page's row within the caps (run in a worker thread: decoding events costs CPU)."""
    truncated = bool(row["truncated"]) or bool(row["events_cut"]) or bool(row["response_cut"])
    events = _events_from_json(row["events"])
    if sum(event.ByteSize() for event in events) > max_events_bytes + max_response_bytes + 65_536:
        events, truncated = [], True  # written under larger caps than today's
    for event in events:
        if event.HasField("complete"):
            event.complete.response, cut = cut_text(event.complete.response, max_response_bytes)
            truncated = truncated or cut
    response, cut = cut_text(row["response"], max_response_bytes)
    return dataclasses.replace(_turn(row, events=events), response=response, truncated=truncated or cut)


_ADDED_COLUMNS = {
    "truncated": "INTEGER NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "context": "TEXT NOT NULL DEFAULT ''",
    "metadata": "TEXT NOT NULL DEFAULT ''",
    "progress": "TEXT NOT NULL DEFAULT ''",
    "job_id": "TEXT NOT NULL DEFAULT ''",
    "priority": "INTEGER NOT NULL DEFAULT 1",
    "callback": "TEXT NOT NULL DEFAULT ''",
    "idempotency_key": "TEXT NOT NULL DEFAULT ''",
    "owner": "TEXT NOT NULL DEFAULT ''",
    "job_timeout_ms": "INTEGER NOT NULL DEFAULT 0",
}
_LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS turns_by_job ON turns (job_id) WHERE job_id != '';
CREATE INDEX IF NOT EXISTS turns_by_idempotency ON turns (owner, idempotency_key, created_at)
    WHERE idempotency_key != '';
"""
"""Indexes on added columns: created once the columns exist."""
"""Columns of ``turns`` added after its first release, with their definitions (an older record gets them)."""


HISTORY_RESPONSE_BYTES = 16 * 1024
"""How much of each response a history page carries (GetMessage has the whole recorded one)."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters and page of a history listing; empty filters match everything."""

    to_team: str = ""
    from_team: str = ""
    statuses: tuple[str, ...] = ()
    """Recorded statuses (``running``, not the v1 API's ``processing``)."""
    since: int = 0
    limit: int = 50
    offset: int = 0

    def where(self) -> tuple[str, tuple[object, ...]]:
        """Return the WHERE clause (with its leading keyword, or empty) and its arguments."""
        clauses: list[str] = []
        args: list[object] = []
        if self.to_team:
            clauses.append("to_team = ?")
            args.append(self.to_team)
        if self.from_team:
            clauses.append("from_team = ?")
            args.append(self.from_team)
        if self.statuses:
            clauses.append(f"status IN ({','.join('?' * len(self.statuses))})")
            args.extend(self.statuses)
        if self.since:
            clauses.append("created_at >= ?")
            args.append(self.since)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


WRITE_BEHIND_S = 0.0
"""How long a write-behind gathers writes before it writes them: none; it writes on the event loop's next
turn, once the reply that queued them has gone out. Gathering a second of writes saved a further 0.4 ms of
CPU and 0.6 ms of latency a turn (A/B, two ``iris serve`` on one model), but a crash or a kill -9 would then
lose up to a second of finished turns' ends, costs and audit rows, which a user expects to survive; written
at once, the window is the moment between a reply and its row, as before write-behind. (A 0.1 s pause saved
nothing: its write landed in the next message's path.)"""

WRITE_BEHIND_MAX = 1_000
"""Queued writes past which a write-behind writes at once instead of waiting out ``WRITE_BEHIND_S``."""

_INLINE_EVENTS_BYTES = 16_384
"""A turn's events up to this size (proto bytes) are encoded on the event loop: cheaper than a thread trip."""


class WriteBehind:
    """Writes nobody waits for (a turn's end, an audit row, a cost), gathered and run together later.

    A reply must not wait for SQLite, nor share the CPU with it while it goes out, and a turn need not pay a
    trip to SQLite's thread for each row: each write of this kind is queued (a list append) and a writer task
    owned by the file writes the queue ``WRITE_BEHIND_S`` after its first entry (sooner past
    ``WRITE_BEHIND_MAX`` entries), one aiosqlite trip per run of the same statement (``executemany``), in
    the order queued. Readers of the same file call ``flush`` first, so they always see every write queued
    before them; ``aclose`` writes what is left (a graceful stop loses nothing). A failed write is logged and
    dropped, as the direct write it replaces was: the record is best effort, the turn answered from memory.
    """

    def __init__(
        self, name: str, conn: Callable[[], aiosqlite.Connection], delay_s: float = WRITE_BEHIND_S
    ) -> None:
        self._name = name
        self._conn = conn
        self._delay_s = delay_s
        self._pending: list[tuple[str, Sequence[object]]] = []
        self._lock = asyncio.Lock()
        """Held while a batch is written, so a reader's flush waits for a batch already on its way."""
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        """Set when ``WRITE_BEHIND_MAX`` writes wait: the writer stops waiting out its pause."""
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task (the file's ``open``); it lives until ``aclose``."""
        self._closing = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._write_forever(), name=f"write-{self._name}"
            )

    def add(self, sql: str, params: Sequence[object]) -> None:
        """Queue one write; it is written within ``WRITE_BEHIND_S``, or sooner by a ``flush``."""
        self._pending.append((sql, params))
        self._wake.set()
        if len(self._pending) >= WRITE_BEHIND_MAX:
            self._full.set()

    async def settle(self) -> None:
        """Write everything queued so far, for a reader: a failed batch is logged, not raised into the read.

        A reader must not fail for a write it did not make (a full disk fails the writes, not the reports).
        """
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - see above; the rows are lost, and said so
            logger.error("could not write to %s: %r", self._name, exc)

    async def flush(self) -> None:
        """Write everything queued so far (and wait for a batch already being written).

        Raises:
            sqlite3.Error, OSError: the batch could not be written (it is dropped; see the class).

        """
        async with self._lock:
            batch, self._pending = self._pending, []
            runs: list[tuple[str, list[Sequence[object]]]] = []
            for sql, params in batch:
                if runs and runs[-1][0] == sql:
                    runs[-1][1].append(params)
                else:
                    runs.append((sql, [params]))
            for sql, rows in runs:
                await self._conn().executemany(sql, rows)

    async def _write_forever(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):  # idle: nothing to write; the bound only re-checks
                    await self._wake.wait()
            if self._closing:
                return  # aclose writes what is left
            if not self._pending:
                self._wake.clear()
                continue
            with contextlib.suppress(TimeoutError):  # gather what follows (less, once the queue is long)
                async with asyncio.timeout(self._delay_s):
                    await self._full.wait()
            self._wake.clear()
            self._full.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the writer outlives one failed batch (a full disk)
                logger.error("could not write to %s: %r", self._name, exc)

    async def aclose(self) -> None:
        """Stop the writer (after the batch it may be writing) and write what is still queued."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait({task}, timeout=10)  # at most its pause and one batch
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - closing goes on; the rows are lost, and said so
            logger.error("could not write to %s at close: %r", self._name, exc)


class Store(SqliteFile):
    """The SQLite database of sessions and turns; one connection, owned by the service's lifespan."""

    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._session_ids: dict[tuple[str, str], str] = {}
        self.session_ids: SessionIds = FreshSessionIds()
        """Where a new session's id comes from (the pool's warm spares, which start under their own ids)."""
        # The connection is shared and in autocommit mode: an explicit BEGIN ... COMMIT holds this, or a
        # second one begun meanwhile fails with "cannot start a transaction within a transaction".
        self._transaction = asyncio.Lock()
        self._writes = WriteBehind("the record (iris.db)", lambda: self._conn)
        """A turn's end (and its truncation mark): written within a second, read after a flush."""

    async def open(self) -> None:
        """Open the file; a record written before a column of ``_ADDED_COLUMNS`` existed gets it."""
        await super().open()
        self._writes.start()
        async with self._conn.execute("PRAGMA table_info(turns)") as cur:
            columns = {row["name"] for row in await cur.fetchall()}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in columns:
                await self._conn.execute(f"ALTER TABLE turns ADD COLUMN {column} {kind}")
        await self._conn.executescript(_LATER_INDEXES)

    async def aclose(self) -> None:
        """Write the turn ends still queued, then close."""
        if self._db is not None:
            await self._writes.aclose()
        await super().aclose()

    async def flush(self) -> None:
        """Write the turn ends queued so far (every read of turns does this first); a failure is logged."""
        await self._writes.settle()

    # --- sessions ------------------------------------------------------------------------------------

    async def get_session(self, from_team: str, to_team: str) -> SessionRow | None:
        """Return the pair's session, if it has one."""
        async with self._conn.execute(
            _SESSIONS + "WHERE s.from_team = ? AND s.to_team = ? GROUP BY s.session_id", (from_team, to_team)
        ) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def get_session_by_id(self, session_id: str) -> SessionRow | None:
        """Return a session by its id."""
        async with self._conn.execute(
            _SESSIONS + "WHERE s.session_id = ? GROUP BY s.session_id", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def count_sessions(self) -> int:
        """Return how many sessions exist."""
        async with self._conn.execute("SELECT COUNT(*) FROM sessions") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def delete_finished_turns(self, session_id: str) -> int:
        """Delete a session's ended turns (active ones still have their record to write); return how many."""
        await self.flush()
        cursor = await self._conn.execute(
            "DELETE FROM turns WHERE session_id = ? AND status NOT IN ('queued', 'running')", (session_id,)
        )
        return cursor.rowcount

    async def session_id_for(self, from_team: str, to_team: str) -> str:
        """Return the pair's session id, creating the session if needed; from memory after the first time.

        The message path needs only the id, so it costs no query once known; ``delete_session`` forgets it.
        """
        known = self._session_ids.get((from_team, to_team))
        if known is None:
            known = (await self.get_or_create_session(from_team, to_team)).session_id
            self._session_ids[(from_team, to_team)] = known
        return known

    async def get_or_create_session(self, from_team: str, to_team: str) -> SessionRow:
        """Return the pair's session, creating it once even under concurrent callers.

        The UNIQUE (from_team, to_team) constraint with ``INSERT OR IGNORE`` makes creation atomic: a second
        concurrent caller's insert is ignored and both read the same row. An existing session costs one read.
        """
        existing = await self.get_session(from_team, to_team)
        if existing is not None:
            return existing
        minted = self.session_ids.mint(from_team, to_team)
        try:
            await self._conn.execute(
                "INSERT OR IGNORE INTO sessions (session_id, from_team, to_team, created_at)"
                " VALUES (?, ?, ?, ?)",
                (minted, from_team, to_team, now_ms()),
            )
            session = await self.get_session(from_team, to_team)
        except BaseException:
            self.session_ids.withdraw(minted)
            raise
        assert session is not None
        if session.session_id != minted:  # a concurrent creation won: nobody will ever see this id
            self.session_ids.withdraw(minted)
        return session

    async def delete_session(self, session_id: str) -> None:
        """Delete a session and all its turns."""
        await self.flush()
        self._session_ids = {pair: sid for pair, sid in self._session_ids.items() if sid != session_id}
        async with self._transaction:
            await self._conn.execute("BEGIN")
            try:
                await self._conn.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
                await self._conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def list_sessions(self, from_team: str) -> list[SessionRow]:
        """Return every session of one caller."""
        async with self._conn.execute(
            _SESSIONS + "WHERE s.from_team = ? GROUP BY s.session_id", (from_team,)
        ) as cur:
            return [_session(r) for r in await cur.fetchall()]

    # --- turns ---------------------------------------------------------------------------------------

    async def add_turn(
        self,
        *,
        message_id: str,
        session_id: str,
        from_team: str,
        to_team: str,
        request: str,
        created_at: int,
        persist: bool,
        expires_at: int,
        context: pb.AskContext | None = None,
        job: JobSpec | None = None,
    ) -> None:
        """Record an accepted turn (status queued): one insert, the only write before a turn runs."""
        job = job or JobSpec()
        await self._conn.execute(
            "INSERT INTO turns (message_id, session_id, from_team, to_team, request, status, created_at, "
            "persist, expires_at, context, job_id, priority, callback, idempotency_key, owner, "
            "job_timeout_ms) "
            "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                session_id,
                from_team,
                to_team,
                request,
                created_at,
                int(persist),
                expires_at,
                _stored(context) if context is not None else "",
                job.job_id,
                job.priority,
                _stored(job.callback) if job.callback is not None else "",
                job.idempotency_key,
                job.owner,
                job.timeout_ms,
            ),
        )

    async def mark_queued(self, message_id: str) -> None:
        """Put a persisted turn back in the queue (its run was cut short by a shutdown)."""
        self._writes.add(
            "UPDATE turns SET status = 'queued', started_at = 0 WHERE message_id = ?", (message_id,)
        )
        await self._writes.flush()  # in order after the turn's queued writes, and written before this returns

    async def record_attempt(self, message_id: str, attempts: int) -> None:
        """Count a persisted turn's attempt before its prompt is sent, so a crash mid-turn can be rewound."""
        self._writes.add("UPDATE turns SET attempts = ? WHERE message_id = ?", (attempts, message_id))
        await self._writes.flush()

    async def finish_turn(
        self,
        message_id: str,
        *,
        status: str,
        response: str,
        error: str,
        events: Sequence[pb.TellResponse],
        started_at: int,
        completed_at: int,
        duration_ms: int,
        cost_usd: float,
        attempts: int = 0,
        metadata: pb.AskMetadata | None = None,
        progress: pb.MessageProgress | None = None,
    ) -> None:
        """Record how a turn ended, with its events: queued, written with others soon after (``WriteBehind``).

        Events are encoded here (in a worker thread when large); ``attempts`` only ever raises the recorded
        count (a turn closed at start-up keeps the one it had); ``metadata`` and ``progress`` (what the turn
        did) are kept unless not given. Every read of turns flushes first, so none sees the turn as it was.
        """
        kept = list(events)
        if sum(event.ByteSize() for event in kept) <= _INLINE_EVENTS_BYTES:
            events_json = _events_to_json(kept)
        else:
            events_json = await asyncio.to_thread(_events_to_json, kept)
        self._writes.add(
            "UPDATE turns SET status = ?, response = ?, error = ?, events = ?, started_at = ?, "
            "completed_at = ?, duration_ms = ?, cost_usd = ?, attempts = MAX(attempts, ?), "
            "metadata = COALESCE(?, metadata), progress = COALESCE(?, progress) WHERE message_id = ?",
            (
                status,
                response,
                error,
                events_json,
                started_at,
                completed_at,
                duration_ms,
                cost_usd,
                attempts,
                _stored(metadata) if metadata is not None else None,
                _stored(progress) if progress is not None else None,
                message_id,
            ),
        )

    async def mark_truncated(self, message_id: str) -> None:
        """Note that a turn's record was cut to the caps (queued after its end, written with it)."""
        self._writes.add("UPDATE turns SET truncated = 1 WHERE message_id = ?", (message_id,))

    async def count_turns(self, session_id: str) -> SessionCounts:
        """Count a session's turns by recorded status, in SQL (no row is loaded but the active ones' ids)."""
        await self.flush()
        async with self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(status = 'completed'), 0) FROM turns WHERE session_id = ?",
            (session_id,),
        ) as cur:
            row = await cur.fetchone()
        total, completed = (int(row[0]), int(row[1])) if row else (0, 0)
        async with self._conn.execute(
            "SELECT message_id FROM turns WHERE session_id = ? AND status IN ('queued', 'running') "
            "ORDER BY created_at, rowid",
            (session_id,),
        ) as cur:
            active = [str(r[0]) for r in await cur.fetchall()]
        return SessionCounts(total=total, completed=completed, active_ids=active)

    async def turns_page(
        self,
        session_id: str,
        *,
        after: PageKey | None,
        limit: int,
        page_bytes: int,
        max_response_bytes: int,
        max_events_bytes: int,
    ) -> TurnPage:
        """Return up to ``limit`` of a session's turns after ``after``, oldest first, within the caps.

        A first query reads only keys and sizes (the index gives the order); the page stops before the turn
        that would take it past ``page_bytes`` (it always holds one). A second reads those rows, each column
        already cut in SQL, and their events are decoded in a worker thread, so a large page never holds up
        other calls on the event loop.
        """
        await self.flush()
        events_json_cap = _EVENTS_JSON_FACTOR * (max_events_bytes + max_response_bytes)
        created_at, rowid = after if after is not None else (-1, -1)
        async with self._conn.execute(
            "SELECT rowid, created_at, length(CAST(request AS BLOB)) "
            "+ min(length(CAST(response AS BLOB)), ?) "
            "+ (CASE WHEN length(CAST(events AS BLOB)) > ? THEN 0 ELSE length(CAST(events AS BLOB)) END) "
            "FROM turns WHERE session_id = ? AND (created_at, rowid) > (?, ?) "
            "ORDER BY created_at, rowid LIMIT ?",
            (max_response_bytes, events_json_cap, session_id, created_at, rowid, limit + 1),
        ) as cur:
            sizes = [(int(r[0]), int(r[1]), int(r[2])) for r in await cur.fetchall()]
        chosen: list[tuple[int, int, int]] = []
        total = 0
        for item in sizes[:limit]:
            if chosen and total + item[2] > page_bytes:
                break
            chosen.append(item)
            total += item[2]
        if not chosen:
            return TurnPage(rows=[], keys=[], more=False)
        marks = ",".join("?" * len(chosen))
        async with self._conn.execute(
            "SELECT message_id, session_id, from_team, to_team, request, status, error, created_at, "
            "started_at, completed_at, duration_ms, cost_usd, persist, expires_at, truncated, attempts, "
            "context, metadata, progress, "
            "substr(response, 1, ?) AS response, length(CAST(response AS BLOB)) > ? AS response_cut, "
            "(CASE WHEN length(CAST(events AS BLOB)) > ? THEN '[]' ELSE events END) AS events, "
            "length(CAST(events AS BLOB)) > ? AS events_cut "
            f"FROM turns WHERE rowid IN ({marks}) ORDER BY created_at, rowid",
            (
                max_response_bytes,
                max_response_bytes,
                events_json_cap,
                events_json_cap,
                *(item[0] for item in chosen),
            ),
        ) as cur:
            rows = list(await cur.fetchall())
        turns = await asyncio.to_thread(
            lambda: [_bounded_turn(r, max_response_bytes, max_events_bytes) for r in rows]
        )
        keys = [(created, rowid) for rowid, created, _size in chosen]
        return TurnPage(rows=turns, keys=keys, more=len(sizes) > len(chosen))

    async def get_turn(self, message_id: str) -> TurnRow | None:
        """Return one turn without its events (the v1 API shows none; SessionReport pages them), or None."""
        await self.flush()
        async with self._conn.execute("SELECT * FROM turns WHERE message_id = ?", (message_id,)) as cur:
            row = await cur.fetchone()
        return _turn(row, events=[]) if row is not None else None

    async def get_job(self, job_id: str) -> TurnRow | None:
        """Return the turn of a job by the job's id, or None."""
        await self.flush()
        async with self._conn.execute(
            "SELECT message_id FROM turns WHERE job_id = ? AND job_id != ''", (job_id,)
        ) as cur:
            row = await cur.fetchone()
        return await self.get_turn(row[0]) if row is not None else None

    async def find_idempotent(self, owner: str, key: str, since: int) -> TurnRow | None:
        """Return the job ``owner`` sent with idempotency ``key`` at or after ``since``, or None."""
        await self.flush()
        async with self._conn.execute(
            "SELECT message_id FROM turns WHERE owner = ? AND idempotency_key = ? AND idempotency_key != '' "
            "AND created_at >= ? ORDER BY created_at DESC LIMIT 1",
            (owner, key, since),
        ) as cur:
            row = await cur.fetchone()
        return await self.get_turn(row[0]) if row is not None else None

    async def history(self, query: HistoryQuery) -> tuple[list[TurnRow], int]:
        """Return one page of turns matching ``query``, newest first, without their events, and the total.

        Indexed by time, target and caller; each response is cut to ``HISTORY_RESPONSE_BYTES`` (the entry
        is then ``truncated``), so a page of 200 stays a few MiB.
        """
        await self.flush()
        where, args = query.where()
        async with self._conn.execute(f"SELECT COUNT(*) FROM turns {where}", args) as cur:
            counted = await cur.fetchone()
        total = int(counted[0]) if counted else 0
        async with self._conn.execute(
            "SELECT message_id, session_id, from_team, to_team, request, status, error, created_at, "
            "started_at, completed_at, duration_ms, cost_usd, persist, expires_at, truncated, attempts, "
            "context, metadata, progress, job_id, priority, callback, idempotency_key, owner, "
            "job_timeout_ms, "
            "'[]' AS events, substr(response, 1, ?) AS response, "
            f"length(CAST(response AS BLOB)) > ? AS response_cut FROM turns {where} "
            "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (HISTORY_RESPONSE_BYTES, HISTORY_RESPONSE_BYTES, *args, query.limit, query.offset),
        ) as cur:
            rows = await cur.fetchall()
        page = [
            dataclasses.replace(
                turn,
                response=cut_text(turn.response, HISTORY_RESPONSE_BYTES)[0],
                truncated=turn.truncated or bool(row["response_cut"]),
            )
            for row in rows
            for turn in (_turn(row),)
        ]
        return page, total

    # --- webhook deliveries -----------------------------------------------------------------------------

    async def add_webhook(self, message_id: str, body: str, next_at: int) -> None:
        """Record a delivery to make (once per message: a second one is ignored)."""
        await self._conn.execute(
            "INSERT OR IGNORE INTO webhooks (message_id, body, next_at, created_at) VALUES (?, ?, ?, ?)",
            (message_id, body, next_at, now_ms()),
        )

    async def ended_jobs_without_webhook(self, since: int) -> list[TurnRow]:
        """Return jobs with a callback that ended at or after ``since`` but have no delivery recorded.

        Such a job's end was written and Iris stopped before its delivery was.
        """
        await self.flush()
        async with self._conn.execute(
            "SELECT t.message_id FROM turns t WHERE t.callback != '' "
            "AND t.status IN ('completed', 'error', 'cancelled') AND t.completed_at >= ? "
            "AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.message_id = t.message_id)",
            (since,),
        ) as cur:
            ids = [row[0] for row in await cur.fetchall()]
        return [turn for message_id in ids if (turn := await self.get_turn(message_id)) is not None]

    async def due_webhooks(self, now: int, limit: int) -> list[tuple[str, str, int]]:
        """Return up to ``limit`` pending deliveries due at ``now``: (message id, body, attempts so far)."""
        async with self._conn.execute(
            "SELECT message_id, body, attempts FROM webhooks WHERE state = 'pending' AND next_at <= ? "
            "ORDER BY next_at LIMIT ?",
            (now, limit),
        ) as cur:
            return [(row[0], row[1], int(row[2])) for row in await cur.fetchall()]

    async def next_webhook_at(self) -> int | None:
        """Return when the next pending delivery is due, or None if none is pending."""
        async with self._conn.execute("SELECT MIN(next_at) FROM webhooks WHERE state = 'pending'") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else None

    async def record_delivery(
        self, message_id: str, attempt: pb.WebhookDelivery, state: str, next_at: int
    ) -> None:
        """Record one attempt and where the delivery stands after it (pending again at ``next_at``)."""
        await self._conn.execute(
            "INSERT OR REPLACE INTO webhook_attempts "
            "(message_id, attempt, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, attempt.attempt, attempt.at, attempt.status_code, attempt.error, attempt.duration),
        )
        await self._conn.execute(
            "UPDATE webhooks SET state = ?, attempts = ?, next_at = ? WHERE message_id = ?",
            (state, attempt.attempt, next_at, message_id),
        )

    async def webhook_of(self, message_id: str) -> tuple[str, list[pb.WebhookDelivery]]:
        """Return a message's delivery state ("" if it has none) and its attempts, oldest first."""
        async with self._conn.execute(
            "SELECT state FROM webhooks WHERE message_id = ?", (message_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return "", []
        async with self._conn.execute(
            "SELECT attempt, at, status_code, error, duration_ms FROM webhook_attempts WHERE message_id = ? "
            "ORDER BY attempt",
            (message_id,),
        ) as cur:
            attempts = [
                pb.WebhookDelivery(
                    attempt=r[0],
                    at=r[1],
                    status_code=r[2],
                    error=r[3],
                    delivered=200 <= r[2] < 300,
                    duration=r[4],
                )
                for r in await cur.fetchall()
            ]
        return str(row[0]), attempts

    async def unfinished_turns(self) -> list[TurnRow]:
        """Return turns left queued or running (by a previous run of the server), oldest first."""
        await self.flush()
        async with self._conn.execute(
            "SELECT * FROM turns WHERE status IN ('queued', 'running') ORDER BY created_at, rowid"
        ) as cur:
            return [_turn(r) for r in await cur.fetchall()]
