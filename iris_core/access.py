"""The permissions an API key can hold (the original iris-mcp's list) and what grants what."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ForbiddenError, ValidationError

if TYPE_CHECKING:
    from .keys import ApiKey

__all__ = [
    "ADMIN",
    "IMPERSONATE",
    "PERMISSIONS",
    "STATE_CHANGING",
    "Caller",
    "calling_team",
    "grants",
    "parse_permissions",
]

ADMIN = "admin"
IMPERSONATE = "team:impersonate"
"""Lets a key call as any team it names in ``fromTeam`` (a gateway or bot acting for its users)."""
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
    IMPERSONATE,
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
    """Return the team a call is made as: the key's own name, unless the key may act for others.

    A key acts only as itself: leaving ``fromTeam`` out, or naming the key's own name, calls as that name.
    Naming another team needs ``team:impersonate`` (``admin`` implies it); a key bound to a team (a team's own
    Claude, see ``KeyStore.issue_session_key``) calls as that team only. Without authentication (``api.
    requireAuth: false``) every caller is trusted, so ``fromTeam`` is taken as given ("api" when left out).

    Raises:
        ForbiddenError: the key names a calling team it may not act as (the refusal is audited).

    """
    if key is None:
        return requested or "api"
    own = key.team or key.name
    if not requested or requested == own:
        return own
    if key.team or not grants(key.permissions, IMPERSONATE):
        bound = f"belongs to team {key.team!r}" if key.team else f"calls as {own!r}"
        raise ForbiddenError(
            f"API key {key.name!r} {bound} and cannot call as {requested!r}"
            + ("" if key.team else f" without the {IMPERSONATE!r} permission"),
            details={"field": "fromTeam", "permission": IMPERSONATE},
        )
    return requested


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
    def may_act_for_others(self) -> bool:
        """True when this caller may name any calling team (``team:impersonate``, ``admin``, or no auth)."""
        return self.key is None or (not self.key.team and grants(self.key.permissions, IMPERSONATE))

    @property
    def description(self) -> str:
        """Name the caller for an audit trail ("key ci-bot")."""
        return f"key {self.key.name}" if self.key is not None else "an unauthenticated caller"
