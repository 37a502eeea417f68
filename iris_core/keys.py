"""API keys: ``iris_sk_{environment}_{random}``, shown once, stored only as a SHA-256 hash (keys.db).

A key is looked up by the hash of what the caller presents, so the store never holds or compares a plain
key, and a key made by ``iris key generate`` in another process works on a running server at once.

Session keys (:meth:`KeyStore.issue_session_key`) are the exception: Iris issues them to itself, for the MCP
adapter that its own Claude processes run, and keeps them in memory only. They never reach keys.db, so they
are not listed or revocable and die with the server process; a new server run issues new ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import secrets
import string
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from .access import parse_permissions
from .clock import now_ms
from .errors import NotFoundError, UnauthorizedError, ValidationError
from .sqlite_file import SqliteFile

__all__ = ["ApiKey", "KeyStore", "hash_key", "parse_duration_ms"]

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_CHARS = 40
_KEY_FORMAT = re.compile(r"iris_sk_([a-z]{1,16})_([A-Za-z0-9]{32,64})")
_NAME_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_SESSION_ENVIRONMENT = "session"
"""The environment part of a session key (``iris_sk_session_...``), so one is recognizable in a log."""
_TOUCH_EVERY_MS = 60_000
_CACHE_S = 1.0
"""How long a verified key is trusted without a lookup: a revocation by another process (``iris key revoke``)
takes effect within this; one through this process's store takes effect at once."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    environment  TEXT NOT NULL,
    permissions  TEXT NOT NULL,
    rate_limit   INTEGER NOT NULL DEFAULT 0,
    daily_budget_usd   REAL NOT NULL DEFAULT 0,
    monthly_budget_usd REAL NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
"""


SESSION_KEY_PREFIX = "mcp."
"""Name prefix of the keys Iris issues to teams' own Claude (``mcp.<team>``); stored keys may not use it."""


def hash_key(key: str) -> str:
    """Return the stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_duration_ms(text: str, *, field: str = "expiresIn") -> int:
    """Parse "30d", "12h", "90m", "45s" or "2w" into milliseconds.

    Raises:
        ValidationError: anything else.

    """
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match[1]) == 0:
        raise ValidationError(f"{field} must look like 30d, 12h, 90m, 45s or 2w", details={"field": field})
    return int(match[1]) * _UNIT_MS[match[2]]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record (never the key)."""

    id: str
    """Stable id."""
    name: str
    """Unique name, used in the audit log."""
    prefix: str
    """The first characters of the key, to recognize it in listings."""
    environment: str
    """live or test."""
    permissions: tuple[str, ...]
    """What the key may do."""
    rate_limit: int
    """Requests per window; 0 uses the configured default."""
    created_at: int
    """Unix ms."""
    expires_at: int
    """Unix ms; 0 never."""
    last_used_at: int
    """Unix ms of the last use (updated at most once a minute)."""
    revoked_at: int
    """Unix ms; 0 while valid."""
    team: str = ""
    """For a key Iris issued to a team's own Claude (see ``issue_session_key``): the only team it may call
    as. Empty for ordinary keys, which may name any calling team."""
    daily_budget_usd: float = 0.0
    """USD the key's turns may cost per UTC day; 0: no daily budget."""
    monthly_budget_usd: float = 0.0
    """USD the key's turns may cost per UTC month; 0: no monthly budget."""

    @property
    def revoked(self) -> bool:
        """True once revoked."""
        return self.revoked_at > 0

    def expired(self, at_ms: int) -> bool:
        """Return True if the key had expired at ``at_ms``."""
        return 0 < self.expires_at <= at_ms


def _key(row: aiosqlite.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        environment=row["environment"],
        permissions=tuple(json.loads(row["permissions"])),
        rate_limit=row["rate_limit"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        daily_budget_usd=row["daily_budget_usd"],
        monthly_budget_usd=row["monthly_budget_usd"],
    )


class KeyStore(SqliteFile):
    """keys.db: create, verify, list and revoke API keys."""

    schema = _SCHEMA
    private = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._verified: dict[str, tuple[ApiKey, float]] = {}
        self._session: dict[str, ApiKey] = {}
        """Session keys by hash (never written to keys.db)."""
        self._session_names: dict[str, str] = {}
        """Session key name -> the hash of its current key, so reissuing replaces the old key."""

    async def open(self) -> None:
        """Open keys.db, adding the budget columns to a file made before keys had budgets."""
        await super().open()
        columns = {row["name"] async for row in await self._conn.execute("PRAGMA table_info(keys)")}
        for column in ("daily_budget_usd", "monthly_budget_usd"):
            if column not in columns:
                await self._conn.execute(f"ALTER TABLE keys ADD COLUMN {column} REAL NOT NULL DEFAULT 0")

    def issue_session_key(self, name: str, permissions: list[str] | tuple[str, ...], *, team: str) -> str:
        """Issue an in-memory key named ``name`` for ``team``; return it (its only time in plain text).

        The key calls only as ``team`` (see ``ApiKey.team``): a team's Claude reads untrusted text, so the
        key it holds must not let it speak, or read, for any other caller.

        Used for what Iris starts itself (the MCP adapter of a team's Claude), which must authenticate like
        any caller but must not leave a credential behind: only the hash is kept, in this process, and never
        in keys.db. Such a key verifies until the server process ends, the same name is issued again (the
        old key then stops verifying) or it is revoked by name; it is not in :meth:`list`.

        Raises:
            ValidationError: a bad name or permission.

        """
        if not _NAME_FORMAT.fullmatch(name):
            raise ValidationError(
                "Key name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                details={"field": "name"},
            )
        granted = parse_permissions(permissions)
        key = f"iris_sk_{_SESSION_ENVIRONMENT}_" + "".join(
            secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS)
        )
        digest = hash_key(key)
        record = ApiKey(
            id=f"key_session_{uuid.uuid4().hex[:16]}",
            name=name,
            prefix=key[: len(f"iris_sk_{_SESSION_ENVIRONMENT}_") + 4],
            environment=_SESSION_ENVIRONMENT,
            permissions=granted,
            rate_limit=0,
            created_at=now_ms(),
            expires_at=0,
            last_used_at=0,
            revoked_at=0,
            team=team,
        )
        old = self._session_names.pop(name, None)
        if old is not None:
            self._session.pop(old, None)
        self._session[digest] = record
        self._session_names[name] = digest
        return key

    async def create(
        self,
        name: str,
        permissions: list[str] | tuple[str, ...],
        *,
        expires_in: str = "",
        environment: str = "live",
        rate_limit: int = 0,
        daily_budget_usd: float = 0.0,
        monthly_budget_usd: float = 0.0,
    ) -> tuple[str, ApiKey]:
        """Create a key; return it (the only time it exists in plain text) and its record.

        Raises:
            ValidationError: a bad name, permission, lifetime, environment, rate limit or budget, or a name in
                use.

        """
        if not _NAME_FORMAT.fullmatch(name):
            raise ValidationError(
                "Key name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                details={"field": "name"},
            )
        if name.startswith(SESSION_KEY_PREFIX):
            # The names of the keys Iris issues to teams' Claude: a stored key of that name would share their
            # spending, budgets and usage.
            raise ValidationError(
                f"Key names starting with {SESSION_KEY_PREFIX!r} are Iris's own", details={"field": "name"}
            )
        granted = parse_permissions(permissions)
        environment = environment or "live"
        if not re.fullmatch(r"[a-z]{1,16}", environment):
            raise ValidationError(
                "environment must be 1-16 lowercase letters (live, test)", details={"field": "environment"}
            )
        if rate_limit < 0:
            raise ValidationError("rateLimit must be 0 (default) or more", details={"field": "rateLimit"})
        for field_name, usd in (
            ("dailyBudgetUsd", daily_budget_usd),
            ("monthlyBudgetUsd", monthly_budget_usd),
        ):
            if not math.isfinite(usd) or usd < 0:
                raise ValidationError(f"{field_name} must be 0 (none) or more", details={"field": field_name})
        created = now_ms()
        expires_at = created + parse_duration_ms(expires_in) if expires_in else 0
        key = f"iris_sk_{environment}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
        record = ApiKey(
            id=f"key_{uuid.uuid4().hex[:16]}",
            name=name,
            prefix=key[: len(f"iris_sk_{environment}_") + 4],
            environment=environment,
            permissions=granted,
            rate_limit=rate_limit,
            created_at=created,
            expires_at=expires_at,
            last_used_at=0,
            revoked_at=0,
            daily_budget_usd=daily_budget_usd,
            monthly_budget_usd=monthly_budget_usd,
        )
        try:
            await self._conn.execute(
                "INSERT INTO keys (id, name, key_hash, prefix, environment, permissions, rate_limit, "
                "created_at, expires_at, daily_budget_usd, monthly_budget_usd) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    name,
                    hash_key(key),
                    record.prefix,
                    environment,
                    json.dumps(list(granted)),
                    rate_limit,
                    created,
                    expires_at,
                    daily_budget_usd,
                    monthly_budget_usd,
                ),
            )
        except aiosqlite.IntegrityError as exc:
            raise ValidationError(f"A key named {name!r} already exists", details={"field": "name"}) from exc
        return key, record

    async def verify(self, presented: str) -> ApiKey:
        """Return the record of a valid key.

        Raises:
            UnauthorizedError: malformed, unknown, revoked or expired (the message says which, never the key).

        """
        if not _KEY_FORMAT.fullmatch(presented):
            raise UnauthorizedError(
                "Malformed API key (expected iris_sk_<environment>_<random>)", details={"cause": "malformed"}
            )
        digest = hash_key(presented)
        session = self._session.get(digest)
        if session is not None:
            return session
        now = now_ms()
        cached = self._verified.get(digest)
        if cached is not None and time.monotonic() - cached[1] < _CACHE_S and not cached[0].expired(now):
            return cached[0]
        async with self._conn.execute("SELECT * FROM keys WHERE key_hash = ?", (digest,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise UnauthorizedError("Unknown API key", details={"cause": "unknown"})
        record = _key(row)
        if record.revoked:
            raise UnauthorizedError(f"API key {record.name!r} was revoked", details={"cause": "revoked"})
        if record.expired(now):
            raise UnauthorizedError(f"API key {record.name!r} has expired", details={"cause": "expired"})
        if now - record.last_used_at >= _TOUCH_EVERY_MS:
            await self._conn.execute("UPDATE keys SET last_used_at = ? WHERE id = ?", (now, record.id))
        self._verified[digest] = (record, time.monotonic())
        return record

    async def list(self) -> list[ApiKey]:
        """Return every key's record, oldest first."""
        async with self._conn.execute("SELECT * FROM keys ORDER BY created_at, rowid") as cur:
            return [_key(r) for r in await cur.fetchall()]

    async def count(self) -> int:
        """Return how many keys exist (revoked ones included)."""
        async with self._conn.execute("SELECT COUNT(*) FROM keys") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def revoke(self, name_or_id: str) -> ApiKey:
        """Revoke a key by name or id; revoking twice keeps the first time.

        Raises:
            NotFoundError: no such key.

        """
        self._verified.clear()
        session = self._revoke_session_key(name_or_id)
        if session is not None:
            return session
        await self._conn.execute(
            "UPDATE keys SET revoked_at = ? WHERE (name = ? OR id = ?) AND revoked_at = 0",
            (now_ms(), name_or_id, name_or_id),
        )
        async with self._conn.execute(
            "SELECT * FROM keys WHERE name = ? OR id = ?", (name_or_id, name_or_id)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"No API key named {name_or_id!r}", details={"key": name_or_id})
        return _key(row)

    def _revoke_session_key(self, name_or_id: str) -> ApiKey | None:
        """Forget a session key by name or id; return its record, marked revoked (None: no such key)."""
        for name, digest in list(self._session_names.items()):
            record = self._session[digest]
            if name_or_id in (name, record.id):
                del self._session_names[name], self._session[digest]
                return dataclasses.replace(record, revoked_at=now_ms())
        return None
