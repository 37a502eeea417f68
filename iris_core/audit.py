"""The audit log (audit.db): who did what to which team, and who was refused.

Rows hold the key's name and id, the method, the target team, the outcome, the peer and the time; never a key
and never a message body.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .clock import now_ms
from .sqlite_file import SqliteFile
from .store import WriteBehind

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

_INSERT = (
    "INSERT INTO audit (time, event, key_id, key_name, method, team, outcome, peer, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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


class AuditLog(SqliteFile):
    """Appends and reads audit rows.

    A call's row is queued when the call ends (``note``) and written with others soon after, off the
    reply's path (``WriteBehind``); a refusal's, and a key event's, is written before the call answers
    (``record``). ``tail`` sees every row queued before it.
    """

    schema = _SCHEMA
    private = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._writes = WriteBehind("the audit log (audit.db)", lambda: self._conn)

    async def open(self) -> None:
        """Open audit.db and start its writer."""
        await super().open()
        self._writes.start()

    async def aclose(self) -> None:
        """Write the rows still queued, then close."""
        if self._db is not None:
            await self._writes.aclose()
        await super().aclose()

    async def flush(self) -> None:
        """Write the rows queued so far.

        Raises:
            sqlite3.Error, OSError: they could not be written (they are dropped).

        """
        await self._writes.flush()

    def note(
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
        """Queue one row, written just after (nobody waits for it)."""
        row = (now_ms(), event, key_id, key_name, method, team[:100], outcome, peer[:200], detail[:500])
        self._writes.add(_INSERT, row)

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
        """Append one row, written (with any queued before it) when this returns."""
        self.note(
            event,
            outcome=outcome,
            key_id=key_id,
            key_name=key_name,
            method=method,
            team=team,
            peer=peer,
            detail=detail,
        )
        await self._writes.flush()

    async def tail(self, *, since_ms: int = 0, limit: int = 100) -> list[AuditRow]:
        """Return the newest ``limit`` rows at or after ``since_ms``, oldest first."""
        await self._writes.settle()
        async with self._conn.execute(
            "SELECT time, event, key_id, key_name, method, team, outcome, peer, detail FROM audit "
            "WHERE time >= ? ORDER BY id DESC LIMIT ?",
            (since_ms, limit),
        ) as cur:
            rows = list(await cur.fetchall())
        rows.reverse()
        return [AuditRow(*row) for row in rows]
