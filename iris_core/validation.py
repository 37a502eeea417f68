"""Input rules of the original iris-mcp's tools, enforced before anything changes.

They live in the core, not in a transport, so REST, gRPC and MCP callers get the same answer.
"""

from __future__ import annotations

from .errors import ValidationError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_CHARS",
    "MAX_TEAM_NAME_CHARS",
    "MAX_TIMEOUT_MS",
    "validate_message",
    "validate_team_name",
    "validate_timeout",
    "validate_ttl_days",
]

MAX_TEAM_NAME_CHARS = 100
MAX_MESSAGE_BYTES = 102_400
"""100 KB of UTF-8: what a message may weigh, whatever its characters (an emoji is four bytes)."""
MAX_MESSAGE_CHARS = MAX_MESSAGE_BYTES
"""The former name, kept for importers: the limit is in bytes (equal to characters for ASCII)."""
MAX_TIMEOUT_MS = 3_600_000


def validate_team_name(name: str, *, field: str = "team") -> None:
    """Reject empty, over-long and path-like team names.

    Raises:
        ValidationError: naming ``field``; team names become parts of paths and process keys, so separators
            and ``..`` are refused outright.

    """
    if not name:
        raise ValidationError("Team name is required", details={"field": field})
    if "/" in name or "\\" in name or ".." in name:
        raise ValidationError("Invalid team name (no path separators allowed)", details={"field": field})
    if "\0" in name:
        raise ValidationError("Invalid team name (contains null bytes)", details={"field": field})
    if len(name) > MAX_TEAM_NAME_CHARS:
        raise ValidationError(
            f"Team name too long (max {MAX_TEAM_NAME_CHARS} characters)", details={"field": field}
        )


def validate_message(message: str, *, field: str = "message") -> None:
    """Reject empty, over-long (100 KB of UTF-8, ``MAX_MESSAGE_BYTES``) and NUL-carrying messages.

    Raises:
        ValidationError: naming ``field``.

    """
    if not message:
        raise ValidationError("Message is required", details={"field": field})
    # A character is at least one byte, so a string longer than the limit need not be encoded to be refused.
    if len(message) > MAX_MESSAGE_BYTES or len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ValidationError("Message too long (max 100KB)", details={"field": field})
    if "\0" in message:
        raise ValidationError("Message contains null bytes", details={"field": field})


def validate_timeout(timeout_ms: int, *, field: str = "timeout", allow_async: bool = True) -> None:
    """Accept -1 (async), 0 (wait for the end) and up to one hour.

    ``allow_async`` False refuses -1, for calls that always wait (Ask).

    Raises:
        ValidationError: naming ``field``.

    """
    lowest = -1 if allow_async else 0
    if timeout_ms < lowest or timeout_ms > MAX_TIMEOUT_MS:
        raise ValidationError(f"Timeout must be between {lowest} and 1hr", details={"field": field})


def validate_ttl_days(ttl_days: int | None, *, field: str = "ttlDays") -> None:
    """Accept no value (the default, 30 days) or 1 to 3650 days.

    Raises:
        ValidationError: naming ``field``.

    """
    if ttl_days is not None and not 1 <= ttl_days <= 3650:
        raise ValidationError("ttlDays must be between 1 and 3650", details={"field": field})
