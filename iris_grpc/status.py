"""The one table from Iris errors to gRPC status, with ``google.rpc.ErrorInfo`` rich details.

Every servicer method goes through ``abort_with``; nothing else maps errors. The ErrorInfo reason is the Iris
error's name (``ValidationError``, ``TeamNotFoundError``, ...), so REST and MCP can name it too.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from iris_core.errors import (
    BudgetExceededError,
    ConfigurationError,
    ForbiddenError,
    IrisError,
    NotFoundError,
    OperationTimeoutError,
    PreconditionFailedError,
    ProcessError,
    ProcessPoolLimitError,
    TooManyRequestsError,
    UnauthorizedError,
    ValidationError,
)

__all__ = ["ERROR_DOMAIN", "STATUS_OF", "abort_with", "code_of", "internal_status", "status_for"]

logger = logging.getLogger(__name__)

ERROR_DOMAIN = "iris.v1"

STATUS_OF: dict[type[IrisError], grpc.StatusCode] = {
    ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    UnauthorizedError: grpc.StatusCode.UNAUTHENTICATED,
    ForbiddenError: grpc.StatusCode.PERMISSION_DENIED,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    OperationTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    TooManyRequestsError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    BudgetExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    PreconditionFailedError: grpc.StatusCode.FAILED_PRECONDITION,
    ProcessError: grpc.StatusCode.INTERNAL,
    ConfigurationError: grpc.StatusCode.INTERNAL,
    ProcessPoolLimitError: grpc.StatusCode.UNAVAILABLE,
}
"""Iris error class (or a base of it) -> gRPC status code (the error table in docs/architecture.md)."""


def code_of(exc: IrisError) -> grpc.StatusCode:
    """Return the gRPC status code of an Iris error (by its class or nearest base in ``STATUS_OF``)."""
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def _status(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str]) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    proto = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return rpc_status.to_status(proto)


def status_for(exc: IrisError) -> grpc.Status:
    """Return the rich gRPC status of an Iris error (its details become ErrorInfo metadata)."""
    metadata = {k: str(v) for k, v in exc.details.items()}
    return _status(code_of(exc), exc.message, exc.reason, metadata)


def internal_status() -> grpc.Status:
    """Return the status for an unexpected failure: no trace, no path, just that it happened."""
    return _status(grpc.StatusCode.INTERNAL, "Internal error; see the server log", "InternalError", {})


async def abort_with(context: grpc.aio.ServicerContext[object, object], exc: BaseException) -> None:
    """End the call with the status of ``exc`` (an unexpected exception is logged and hidden)."""
    if isinstance(exc, IrisError):
        status = status_for(exc)
    else:
        logger.error("unexpected error in %s", type(exc).__name__, exc_info=exc)
        status = internal_status()
    # Keep what the call already set (e.g. the rate-limit metadata) beside the status details.
    kept = tuple(context.trailing_metadata() or ())
    await context.abort(status.code, status.details, kept + tuple(status.trailing_metadata))
