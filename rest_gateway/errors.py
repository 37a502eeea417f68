"""The gateway's one error path: every failure becomes the seeds' JSON body with an HTTP status.

Errors come from two places. Most come from Iris over gRPC, already named: a status code plus a
``google.rpc.ErrorInfo`` whose reason is the Iris error class (``ValidationError``, ``TeamNotFoundError``…).
The rest are the gateway's own (unknown route, wrong verb, malformed JSON, a body over the limit), raised
as ``GatewayError``. Both end in ``error_response``, so a REST caller sees one shape whatever failed::

    {"error": "ValidationError", "message": "...", "statusCode": 400, "timestamp": 1700000000000,
     "code": "INVALID_ARGUMENT", "details": {...}}
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .metadata import rate_limit_headers

__all__ = [
    "HTTP_STATUS_OF",
    "GatewayError",
    "error_body",
    "error_from_rpc",
    "error_response",
    "handle_exception",
    "handle_http_exception",
]

logger = logging.getLogger(__name__)

HTTP_STATUS_OF: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    # DESIGN.md section 5 says 408 (the seeds' TimeoutError), where google/rpc/code.proto says 504.
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
"""gRPC status code -> HTTP status (DESIGN.md section 5, else google/rpc/code.proto)."""

_QUIET_MESSAGES = {
    grpc.StatusCode.UNAVAILABLE: "The Iris server is not reachable",
    grpc.StatusCode.CANCELLED: "The call was cancelled",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The call took too long",
}
"""What to say for a failure that did not come from Iris (no ErrorInfo): grpc's own text names addresses
and transport internals, which a REST caller has no use for."""


class GatewayError(Exception):
    """A failure found by the gateway itself, before or instead of calling Iris."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        message: str,
        *,
        code: grpc.StatusCode,
        details: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason
        self.message = message
        self.code = code
        self.details: dict[str, object] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})

    @classmethod
    def invalid(cls, message: str, *, field: str | None = None) -> GatewayError:
        """Refuse a request that cannot become a message, as the ValidationError Iris itself would raise."""
        details = {"field": field} if field else {}
        return cls(400, "ValidationError", message, code=grpc.StatusCode.INVALID_ARGUMENT, details=details)


def error_body(
    status_code: int, reason: str, message: str, code: grpc.StatusCode, details: Mapping[str, object]
) -> dict[str, object]:
    """Return the seeds' error body with the gRPC code added (DESIGN.md section 5)."""
    return {
        "error": reason,
        "message": message,
        "statusCode": status_code,
        "timestamp": int(time.time() * 1000),
        "code": code.name,
        "details": dict(details),
    }


def _error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    for key, value in exc.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info
    return None


def _reason_of(code: grpc.StatusCode) -> str:
    return "".join(part.title() for part in code.name.split("_")) + "Error"


def error_from_rpc(exc: grpc.aio.AioRpcError) -> GatewayError:
    """Translate a failed gRPC call, keeping its ErrorInfo reason and details and its rate-limit headers.

    A status without ErrorInfo did not come from Iris's servicer (the channel could not connect, the call
    was cancelled): it is named after its code and given a fixed message, so no transport detail leaks.
    """
    code = exc.code()
    status_code = HTTP_STATUS_OF.get(code, 500)
    headers = rate_limit_headers(exc.initial_metadata(), exc.trailing_metadata())
    info = _error_info(exc)
    if info is None:
        logger.warning("gRPC call failed without ErrorInfo: %s %s", code.name, exc.details())
        message = _QUIET_MESSAGES.get(code, exc.details() or code.name)
        return GatewayError(status_code, _reason_of(code), message, code=code, headers=headers)
    details: dict[str, object] = dict(info.metadata)
    retry_ms = details.get("retryAfterMs")
    if status_code == 429 and isinstance(retry_ms, str) and retry_ms.isdigit():
        headers["Retry-After"] = str(max(1, math.ceil(int(retry_ms) / 1000)))
    return GatewayError(
        status_code, str(info.reason), exc.details() or "", code=code, details=details, headers=headers
    )


def error_response(error: GatewayError) -> JSONResponse:
    """Return the HTTP response for ``error``: its status, the JSON body and its headers."""
    body = error_body(error.status_code, error.reason, error.message, error.code, error.details)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


_FOR_HTTP_STATUS = {
    404: ("NotFoundError", "No route matches {method} {path}", grpc.StatusCode.NOT_FOUND),
    405: ("MethodNotAllowedError", "{method} is not allowed on {path}", grpc.StatusCode.UNIMPLEMENTED),
}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Answer Starlette's own refusals (no such route, wrong verb) with the gateway's error body."""
    assert isinstance(exc, HTTPException)
    reason, template, code = _FOR_HTTP_STATUS.get(
        exc.status_code, ("HttpError", str(exc.detail), grpc.StatusCode.UNKNOWN)
    )
    message = template.format(method=request.method, path=request.url.path)
    return error_response(GatewayError(exc.status_code, reason, message, code=code, headers=exc.headers))


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Answer any failure: known ones by their mapping, anything else as a 500 without a trace."""
    if isinstance(exc, GatewayError):
        return error_response(exc)
    if isinstance(exc, grpc.aio.AioRpcError):
        return error_response(error_from_rpc(exc))
    logger.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        GatewayError(
            500, "InternalError", "Internal error; see the server log", code=grpc.StatusCode.INTERNAL
        )
    )
