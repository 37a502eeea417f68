"""The permissions an API key can hold (the original iris-mcp's list) and what grants what."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ForbiddenError, ValidationError

if TYPE_CHECKING:
    from .keys import ApiKey

__all__ = ["ADMIN", "PERMISSIONS", "STATE_CHANGING", "Caller", "calling_team", "grants", "parse_permissions"]

ADMIN = "admin"
PERMISSIONS = (
    "team:tell",
    "team:wake",
    "team:sleep",
    "team:cancel",
    "team:clear",
    "team:fork",
    "cache:read",
    "cache:write",
    "status:read",
    "debug:read",
    ADMIN,
)
"""Every permission, in the original iris-mcp's order; ``admin`` implies all the others."""

STATE_CHANGING = frozenset(
    {"team:tell", "team:wake", "team:sleep", "team:cancel", "team:clear", "team:fork", "cache:write", ADMIN}
)
"""Permissions whose calls change state: each such call is written to the audit log."""


def grants(held: Collection[str], needed: str) -> bool:
    """Return True if permissions ``held`` allow a call that needs ``needed``."""
    return needed in held or ADMIN in held


def parse_permissions(values: Iterable[str], *, field: str = "permissions") -> tuple[str, ...]:
    """Validate permission names (comma-separated strings are split); return them deduplicated, in order.

    Raises:
        ValidationError: an unknown permission, or none at all.

    """
    found: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name not in PERMISSIONS:
                raise ValidationError(
                    f"Unknown permission {name!r} (known: {', '.join(PERMISSIONS)})", details={"field": field}
                )
            if name not in found:
                found.append(name)
    if not found:
        raise ValidationError("At least one permission is required", details={"field": field})
    return tuple(found)


def calling_team(requested: str, key: ApiKey | None) -> str:
    """Return the team a call is made as: ``requested``, else the key's own.

    A caller that leaves ``fromTeam`` out calls as its key's name (the original iris-mcp's REST examples omit
    it: a
    service calling with its own key is the calling team), or as "api" without auth. A key bound to a team
    (a team's own Claude, see ``KeyStore.issue_session_key``) calls as that team only.

    Raises:
        ForbiddenError: a team-bound key names another calling team.

    """
    if key is not None and key.team:
        if requested and requested != key.team:
            raise ForbiddenError(
                f"API key {key.name!r} belongs to team {key.team!r} and cannot call as {requested!r}",
                details={"field": "fromTeam"},
            )
        return key.team
    if requested:
        return requested
    return key.name if key is not None else "api"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a call, as the transport authenticated it: every domain operation receives one."""

    key: ApiKey | None = None
    """The verified API key (None when authentication is off)."""

    def team(self, requested: str) -> str:
        """Return the team this call is made as (see ``calling_team``).

        Raises:
            ForbiddenError: a team-bound key names another calling team.

        """
        return calling_team(requested, self.key)

    @property
    def description(self) -> str:
        """Name the caller for an audit trail ("key ci-bot")."""
        return f"key {self.key.name}" if self.key is not None else "an unauthenticated caller"
