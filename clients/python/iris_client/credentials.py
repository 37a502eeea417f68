"""The credential a caller presents, as gRPC metadata: what the gateway and the MCP adapter forward.

Authentication runs once, in gRPC, so every transport gets the same rules. A transport only carries the
credential headers through, under the same (lower-case) names; it never reads them.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FORWARDED_HEADERS", "outgoing_metadata", "unsendable"]

FORWARDED_HEADERS = ("authorization", "x-api-key")
"""Request headers passed to gRPC as metadata of the same (lower-case) name."""


def outgoing_metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Return the gRPC metadata to send for a request with these (case-insensitive) headers."""
    return tuple((name, headers[name]) for name in FORWARDED_HEADERS if name in headers)


def unsendable(metadata: tuple[tuple[str, str], ...]) -> str | None:
    """Name a header whose value gRPC metadata cannot carry (anything but printable ASCII), if any.

    grpc refuses such a call with an opaque local error; no valid key looks like that, so a transport
    refuses it first, as Iris refuses a malformed key.
    """
    for name, value in metadata:
        if not all(" " <= char <= "~" for char in value):
            return name
    return None
