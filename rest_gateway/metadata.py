"""What crosses between HTTP headers and gRPC metadata, in both directions.

Authentication and rate limiting run once, in gRPC, so every transport gets the same rules. The gateway
only carries the credential headers in and the rate-limit metadata out; it never reads either.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

__all__ = ["FORWARDED_HEADERS", "RATE_LIMIT_HEADERS", "outgoing_metadata", "rate_limit_headers", "unsendable"]

FORWARDED_HEADERS = ("authorization", "x-api-key")
"""Request headers passed to gRPC as metadata of the same (lower-case) name."""

RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit": "X-RateLimit-Limit",
    "x-ratelimit-remaining": "X-RateLimit-Remaining",
    "x-ratelimit-reset": "X-RateLimit-Reset",
}
"""Rate-limit metadata key -> the HTTP header it becomes."""

_Metadata = grpc.aio.Metadata | tuple[tuple[str, str | bytes], ...] | None


def outgoing_metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Return the gRPC metadata to send for a request with these (case-insensitive) headers."""
    return tuple((name, headers[name]) for name in FORWARDED_HEADERS if name in headers)


def unsendable(metadata: tuple[tuple[str, str], ...]) -> str | None:
    """Name a header whose value gRPC metadata cannot carry (anything but printable ASCII), if any.

    grpc refuses such a call with an opaque local error; no valid key looks like that, so the gateway
    refuses it first, as Iris refuses a malformed key.
    """
    for name, value in metadata:
        if not all(" " <= char <= "~" for char in value):
            return name
    return None


def rate_limit_headers(*sources: _Metadata) -> dict[str, str]:
    """Return the X-RateLimit-* headers found in any of ``sources`` (initial and/or trailing metadata).

    A unary reply carries them in its trailers and a stream in its headers; reading both keeps the gateway
    indifferent to which.
    """
    found: dict[str, str] = {}
    for metadata in sources:
        for key, value in metadata or ():
            header = RATE_LIMIT_HEADERS.get(key.lower())
            if header is not None and isinstance(value, str):
                found[header] = value
    return found
