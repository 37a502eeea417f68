"""Managing API keys with their audit trail: one path for the admin RPCs, the CLI and the first start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .audit import AuditLog
from .errors import ValidationError
from .keys import KeyStore

__all__ = ["KeyAdmin"]


class KeyAdmin:
    """Creates, lists and revokes keys, writing each change to the audit log."""

    def __init__(self, keys: KeyStore, audit: AuditLog) -> None:
        self._keys = keys
        self._audit = audit

    async def create(
        self,
        *,
        name: str,
        permissions: Sequence[str],
        expires_in: str = "",
        environment: str = "",
        rate_limit: int = 0,
        by: str = "",
    ) -> dict[str, Any]:
        """Create a key; the result holds it this once (the store keeps only its hash).

        Raises:
            ValidationError: a bad name, permission, lifetime, environment or rate limit, or a name in use.

        """
        key, record = await self._keys.create(
            name, tuple(permissions), expires_in=expires_in, environment=environment, rate_limit=rate_limit
        )
        await self._audit.record(
            "key_created", outcome="OK", key_id=record.id, key_name=record.name, detail=f"by {by or 'local'}"
        )
        return {"key": key, "info": record.as_dict()}

    async def list(self) -> dict[str, Any]:
        """List every key's record (never a key)."""
        return {"keys": [k.as_dict() for k in await self._keys.list()]}

    async def revoke(self, *, key: str, by: str = "") -> dict[str, Any]:
        """Revoke a key by name or id.

        Raises:
            ValidationError: no name or id given.
            NotFoundError: no such key.

        """
        if not key:
            raise ValidationError("key (a name or id) is required", details={"field": "key"})
        record = await self._keys.revoke(key)
        await self._audit.record(
            "key_revoked", outcome="OK", key_id=record.id, key_name=record.name, detail=f"by {by or 'local'}"
        )
        return {"info": record.as_dict()}
