"""The audit log (audit.db): who did what to which team, and who was refused.

Rows hold the key's name and id, the method, the target team, the outcome, the peer and the time; never a key
and never a message body.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import aiosqlite

from .clock import now_ms

__all__ = ["AuditLog", "AuditRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time     INTEGER NOT NULL,
    event    TEXT NOT NULL,
    key_id   TEXT NOT NULL DEFAULT '',
    key_name TEXT NOT NULL DEFAULT '',
    method   TEXT NOT NULL DEFAULT '',
    team     TEXT NOT NULL DEFAULT '',
    outcome  TEXT NOT NULL,
    peer     TEXT NOT NULL DEFAULT '',
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time);
"""


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audited event."""

    time_ms: int
    """Unix ms."""
    event: str
    """auth_failure | call | key_created | key_revoked."""
    key_id: str
    """The key's id ('' when none was valid)."""
    key_name: str
    """The key's name ('' when none was valid)."""
    method: str
    """RPC name, e.g. SendMessage."""
    team: str
    """Target team, when the call names one."""
    outcome: str
    """OK or the gRPC status code name."""
    peer: str
    """The caller's address."""
    detail: str
    """Why (for failures), or what (for key events); never secrets."""


class AuditLog:
    """Appends and reads audit rows."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        """Open (creating if needed) the log."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each write is one statement and one trip to the database thread.
        db = await aiosqlite.connect(self._path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(_SCHEMA)
        self._path.chmod(0o600)
        self._db = db

    async def aclose(self) -> None:
        """Close; idempotent."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("AuditLog is not open")
        return self._db

    async def record(
        self,
        event: str,
        *,
        outcome: str,
        key_id: str = "",
        key_name: str = "",
        method: str = "",
        team: str = "",
        peer: str = "",
        detail: str = "",
    ) -> None:
        """Append one row."""
        await self._conn.execute(
            "INSERT INTO audit (time, event, key_id, key_name, method, team, outcome, peer, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now_ms(), event, key_id, key_name, method, team[:100], outcome, peer[:200], detail[:500]),
        )

    async def tail(self, *, since_ms: int = 0, limit: int = 100) -> list[AuditRow]:
        """Return the newest ``limit`` rows at or after ``since_ms``, oldest first."""
        async with self._conn.execute(
            "SELECT time, event, key_id, key_name, method, team, outcome, peer, detail FROM audit "
            "WHERE time >= ? ORDER BY id DESC LIMIT ?",
            (since_ms, limit),
        ) as cur:
            rows = list(await cur.fetchall())
        rows.reverse()
        return [AuditRow(*row) for row in rows]
