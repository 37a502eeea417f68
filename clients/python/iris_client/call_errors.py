"""A failed gRPC call to Iris, read back into the standard error body every other transport shows.

Iris names each failure: a status code plus a ``google.rpc.ErrorInfo`` whose reason is the Iris error class
(``ValidationError``, ``TeamNotFoundError``...). The REST gateway and the MCP adapter are both gRPC clients;
they read a failure here, once, and show the same body (the error table in docs/architecture.md)::

    {"error": "ValidationError", "message": "...", "statusCode": 400, "timestamp": 1700000000000,
     "code": "INVALID_ARGUMENT", "details": {...}}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = ["HTTP_STATUS_OF", "CallFailure", "FailedCall", "error_body", "failure_of"]

logger = logging.getLogger(__name__)

HTTP_STATUS_OF: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    # 408, the original iris-mcp's TimeoutError status, where google/rpc/code.proto says 504.
    grpc.StatusCode.DEADLINE_EXCEEDED: 408,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
"""gRPC status code -> HTTP status (the error table in docs/architecture.md, else google/rpc/code.proto)."""

_QUIET_MESSAGES = {
    grpc.StatusCode.UNAVAILABLE: "The Iris server is not reachable",
    grpc.StatusCode.CANCELLED: "The call was cancelled",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The call took too long",
}
"""What to say for a failure that did not come from Iris (no ErrorInfo): grpc's own text names addresses
and transport internals, which a caller of another transport has no use for."""


class FailedCall(Protocol):
    """What a failed call shows, on grpc's sync (``grpc.RpcError``) and asyncio (``AioRpcError``) sides."""

    def code(self) -> grpc.StatusCode:
        """Return the status code."""
        ...

    def details(self) -> str | None:
        """Return the status message."""
        ...

    def trailing_metadata(self) -> object:
        """Return the trailers: a sequence of (key, value) pairs, or None."""
        ...


@dataclass(frozen=True)
class CallFailure:
    """A failed call, named as Iris named it."""

    reason: str
    """The Iris error class (ErrorInfo reason), e.g. ``TeamNotFoundError``."""
    message: str
    """For people; never a trace, a server path or key material."""
    code: grpc.StatusCode
    """The gRPC status code."""
    details: dict[str, object] = field(default_factory=dict)
    """ErrorInfo metadata (e.g. ``field``, ``retryAfterMs``)."""

    @property
    def status_code(self) -> int:
        """The HTTP status of the failure."""
        return HTTP_STATUS_OF.get(self.code, 500)

    def body(self) -> dict[str, object]:
        """Return the standard error body."""
        return error_body(self.status_code, self.reason, self.message, self.code, self.details)


def error_body(
    status_code: int, reason: str, message: str, code: grpc.StatusCode, details: Mapping[str, object]
) -> dict[str, object]:
    """Return the original iris-mcp's error body with the gRPC code added (docs/architecture.md)."""
    return {
        "error": reason,
        "message": message,
        "statusCode": status_code,
        "timestamp": int(time.time() * 1000),
        "code": code.name,
        "details": dict(details),
    }


def _error_info(exc: FailedCall) -> error_details_pb2.ErrorInfo | None:
    trailers = exc.trailing_metadata() or ()
    assert isinstance(trailers, Iterable)
    for key, value in trailers:
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:  # not from Iris (a proxy's, or garbled): named after the code alone
            return None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info
    return None


def _reason_of(code: grpc.StatusCode) -> str:
    return "".join(part.title() for part in code.name.split("_")) + "Error"


def failure_of(exc: FailedCall, *, log_unnamed: bool = True) -> CallFailure:
    """Read a failed call: its ErrorInfo reason and details when Iris sent them.

    A status without ErrorInfo did not come from Iris's servicer (the channel could not connect, the call
    was cancelled): it is named after its code and given a fixed message, so no transport detail leaks.
    """
    code = exc.code()
    info = _error_info(exc)
    if info is None:
        if (
            log_unnamed
        ):  # a server-side transport wants it in its log; a client library leaves it to its caller
            logger.warning("gRPC call failed without ErrorInfo: %s %s", code.name, exc.details())
        return CallFailure(_reason_of(code), _QUIET_MESSAGES.get(code, exc.details() or code.name), code)
    # ErrorInfo's metadata is a map, whose order on the wire is arbitrary: the body lists it by key.
    return CallFailure(str(info.reason), exc.details() or "", code, dict(sorted(info.metadata.items())))
