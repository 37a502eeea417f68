"""What crosses between HTTP headers and gRPC metadata, in both directions.

Authentication and rate limiting run once, in gRPC, so every transport gets the same rules. The gateway
only carries the credential headers in (``iris_client.credentials``, shared with the MCP adapter) and the
rate-limit metadata out; it never reads either.
"""

from __future__ import annotations

import grpc

from iris_client.credentials import FORWARDED_HEADERS, outgoing_metadata, unsendable

__all__ = ["FORWARDED_HEADERS", "RATE_LIMIT_HEADERS", "outgoing_metadata", "rate_limit_headers", "unsendable"]

RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit": "X-RateLimit-Limit",
    "x-ratelimit-remaining": "X-RateLimit-Remaining",
    "x-ratelimit-reset": "X-RateLimit-Reset",
}
"""Rate-limit metadata key -> the HTTP header it becomes."""

_Metadata = grpc.aio.Metadata | tuple[tuple[str, str | bytes], ...] | None


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
