"""The transcripts of Ray-placed sessions, kept by Iris (``$IRIS_HOME/transcripts.db``).

A pair on Ray may run on any node, and a node may die: its Claude Code transcript must not live only on that
node's disk. The actor's session store forwards every entry Claude Code writes (``ray_actor``), Iris keeps it
here, and the pair's next actor, on whatever node, is started with the entries and resumes from them.

Entries are the CLI's JSONL lines, kept as they came, in arrival order per session and subpath (the
session's own transcript has an empty subpath; a subagent's names it). Most carry a ``uuid``: an entry is
kept once per uuid (the SDK may send a batch again after a partial failure), entries without one are always
appended. Readable by its owner only: it holds whole conversations.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..sqlite_file import SqliteFile

__all__ = ["TranscriptStore"]

TRANSCRIPTS_FILE = "transcripts.db"
"""The file's name in ``$IRIS_HOME``."""


class TranscriptStore(SqliteFile):
    """Every transcript entry of the sessions placed on Ray, by session id."""

    schema: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        subpath TEXT NOT NULL,
        uuid TEXT,
        entry TEXT NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS entries_once ON entries (session_id, subpath, uuid)
        WHERE uuid IS NOT NULL;
    CREATE INDEX IF NOT EXISTS entries_of_session ON entries (session_id, id);
    """
    private: ClassVar[bool] = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._writing = asyncio.Lock()
        """One transaction at a time on the one connection (pairs append concurrently)."""

    async def append(self, session_id: str, subpath: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """Keep ``entries`` after the session's others, in one transaction; skip an entry seen before."""
        if not entries:
            return
        rows = [(session_id, subpath, _uuid_of(entry), json.dumps(entry)) for entry in entries]
        async with self._writing:
            await self._conn.execute("BEGIN")
            try:
                await self._conn.executemany(
                    "INSERT OR IGNORE INTO entries (session_id, subpath, uuid, entry) VALUES (?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def load(self, session_id: str) -> dict[str, list[dict[str, Any]]]:
        """Return the session's entries by subpath, in order (empty if Iris holds none).

        Decoded in a worker thread: a long conversation is megabytes of JSON.
        """
        async with self._conn.execute(
            "SELECT subpath, entry FROM entries WHERE session_id = ? ORDER BY id", (session_id,)
        ) as cursor:
            rows = [(str(row[0]), str(row[1])) for row in await cursor.fetchall()]
        return await asyncio.to_thread(_decode, rows)


def _uuid_of(entry: Mapping[str, Any]) -> str | None:
    value = entry.get("uuid")
    return value if isinstance(value, str) and value else None


def _decode(rows: list[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for subpath, text in rows:
        found.setdefault(subpath, []).append(json.loads(text))
    return found
