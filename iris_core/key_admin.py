"""Managing API keys with their audit trail: one path for the admin RPCs, the CLI and the first start."""

from __future__ import annotations

from collections.abc import Sequence

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .audit import AuditLog
from .errors import ValidationError
from .keys import ApiKey, KeyStore

__all__ = ["KeyAdmin", "key_info"]


def key_info(record: ApiKey) -> pb.ApiKeyInfo:
    """Return a key's record as the contract shows it (never the key)."""
    return pb.ApiKeyInfo(
        id=record.id,
        name=record.name,
        permissions=record.permissions,
        prefix=record.prefix,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        revoked=record.revoked,
        rate_limit=record.rate_limit,
        daily_budget_usd=record.daily_budget_usd,
        monthly_budget_usd=record.monthly_budget_usd,
    )


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
        daily_budget_usd: float = 0.0,
        monthly_budget_usd: float = 0.0,
        by: str = "",
    ) -> tuple[str, ApiKey]:
        """Create a key; return it, this once (the store keeps only its hash), with its record.

        Raises:
            ValidationError: a bad name, permission, lifetime, environment or rate limit, or a name in use.

        """
        key, record = await self._keys.create(
            name,
            tuple(permissions),
            expires_in=expires_in,
            environment=environment,
            rate_limit=rate_limit,
            daily_budget_usd=daily_budget_usd,
            monthly_budget_usd=monthly_budget_usd,
        )
        await self._audit.record(
            "key_created", outcome="OK", key_id=record.id, key_name=record.name, detail=f"by {by or 'local'}"
        )
        return key, record

    async def revoke(self, key: str, *, by: str = "") -> ApiKey:
        """Revoke a key by name or id; return its record.

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
        return record

    async def create_api_key(
        self, request: pb.CreateApiKeyRequest, caller: Caller
    ) -> pb.CreateApiKeyResponse:
        """Create a key for the CreateApiKey RPC, audited as made by the caller."""
        key, record = await self.create(
            name=request.name,
            permissions=list(request.permissions),
            expires_in=request.expires_in,
            environment=request.environment,
            rate_limit=request.rate_limit,
            daily_budget_usd=request.daily_budget_usd,
            monthly_budget_usd=request.monthly_budget_usd,
            by=caller.description,
        )
        return pb.CreateApiKeyResponse(key=key, info=key_info(record))

    async def list_api_keys(self, request: pb.ListApiKeysRequest, caller: Caller) -> pb.ListApiKeysResponse:
        """List every key's record, oldest first (never a key)."""
        del request, caller
        return pb.ListApiKeysResponse(keys=[key_info(k) for k in await self._keys.list()])

    async def revoke_api_key(
        self, request: pb.RevokeApiKeyRequest, caller: Caller
    ) -> pb.RevokeApiKeyResponse:
        """Revoke a key by name or id for the RevokeApiKey RPC, audited as done by the caller."""
        return pb.RevokeApiKeyResponse(info=key_info(await self.revoke(request.key, by=caller.description)))
