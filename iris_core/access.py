"""The permissions an API key can hold (the seeds' list) and what grants what."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .errors import ValidationError

__all__ = ["ADMIN", "PERMISSIONS", "STATE_CHANGING", "grants", "parse_permissions"]

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
"""Every permission, in the seeds' order; ``admin`` implies all the others."""

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
