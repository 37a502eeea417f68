"""One SQLite file behind one aiosqlite connection: the shared opening and closing of Iris's databases."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import aiosqlite

__all__ = ["SqliteFile"]


class SqliteFile:
    """Base of the record, the key store and the audit log: WAL, autocommit, a schema, an async lifespan.

    Autocommit makes each write one statement and one trip to aiosqlite's thread; a change of several
    statements opens its own transaction.
    """

    schema: ClassVar[str] = ""
    """CREATE statements, run (idempotently) at every open."""
    private: ClassVar[bool] = False
    """Make the file readable by its owner only (keys, audit)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        """Open (creating if needed) the file and its tables."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self._path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.executescript(self.schema)
        if self.private:
            self._path.chmod(0o600)
        self._db = db

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
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
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._db
