"""The gateway's one error path: every failure becomes the original iris-mcp's JSON body with an HTTP status.

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
from collections.abc import Mapping

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from iris_client.call_errors import HTTP_STATUS_OF, error_body, failure_of

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


def error_from_rpc(exc: grpc.aio.AioRpcError) -> GatewayError:
    """Translate a failed gRPC call, keeping its ErrorInfo reason and details and its rate-limit headers."""
    failure = failure_of(exc)
    headers = rate_limit_headers(exc.initial_metadata(), exc.trailing_metadata())
    retry_ms = failure.details.get("retryAfterMs")
    if failure.status_code in (429, 503) and isinstance(retry_ms, str) and retry_ms.isdigit():
        headers["Retry-After"] = str(max(1, math.ceil(int(retry_ms) / 1000)))
    return GatewayError(
        failure.status_code,
        failure.reason,
        failure.message,
        code=failure.code,
        details=failure.details,
        headers=headers,
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
