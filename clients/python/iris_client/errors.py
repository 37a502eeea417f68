"""The errors a client of Iris raises: one class per reason Iris names a failure by.

Iris answers a failed call with a status code and a ``google.rpc.ErrorInfo`` whose reason is the name of the
error (``TeamNotFoundError``, ``TimeoutError``...). The clients raise the class of that name, so a caller
catches what went wrong, not a transport status::

    IrisError                        reason, code, message, details
    ├── ValidationError              the request was refused as malformed; nothing changed
    ├── UnauthorizedError            no key, or not a valid one
    ├── ForbiddenError               the key lacks the permission, or may not act as that team
    ├── NotFoundError
    │   ├── TeamNotFoundError
    │   ├── SessionNotFoundError
    │   └── MessageNotFoundError
    ├── TimeoutError                 a bounded wait ran out (Ask's timeout: ``message_id`` says what goes on)
    ├── TooManyRequestsError         a rate limit or a full queue (``retry_after_ms`` says when to try again)
    ├── BudgetExceededError          a team's or key's spending budget is used up (``resets_at`` says when)
    ├── PreconditionFailedError      not now (e.g. cancelling a message that has ended)
    ├── ProcessError                 the team's Claude Code failed
    ├── ConfigurationError
    ├── ProcessPoolLimitError        every process slot stayed busy
    ├── InternalError                a bug in Iris; its log says more
    ├── UnavailableError             Iris could not be reached
    ├── CancelledError               the caller cancelled the call
    └── DeadlineExceededError        the call's own deadline passed before Iris answered

A reason this client does not know (from a newer Iris) raises ``IrisError`` itself, with that ``reason``.
The last three have no ErrorInfo (they do not come from Iris): they are named after their status code.
"""

from __future__ import annotations

from typing import ClassVar

import grpc

from .call_errors import FailedCall, failure_of

__all__ = [
    "BudgetExceededError",
    "CancelledError",
    "ConfigurationError",
    "DeadlineExceededError",
    "ForbiddenError",
    "InternalError",
    "IrisError",
    "MessageNotFoundError",
    "NotFoundError",
    "PreconditionFailedError",
    "ProcessError",
    "ProcessPoolLimitError",
    "SessionNotFoundError",
    "TeamNotFoundError",
    "TimeoutError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "error_from",
]


class IrisError(Exception):
    """A call to Iris failed; ``reason`` names how, as Iris named it."""

    known_reason: ClassVar[str] = "IrisError"
    """The reason this class stands for (its name)."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        reason: str | None = None,
        details: dict[str, str] | None,
    ) -> None:
        super().__init__(message)
        self.message = message
        """For people; never a trace or key material."""
        self.code = code
        """The gRPC status code."""
        self.reason = reason or self.known_reason
        """The ErrorInfo reason, e.g. ``TeamNotFoundError``."""
        self.details: dict[str, str] = details or {}
        """The ErrorInfo metadata, e.g. ``field`` of a ValidationError, ``messageId`` of Ask's timeout."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.known_reason = cls.__name__

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        # Copies and pickles (an error crossing a process pool) rebuild it from its fields.
        return (_rebuild, (type(self), self.message, self.code, self.reason, self.details))


def _rebuild(
    cls: type[IrisError], message: str, code: grpc.StatusCode, reason: str, details: dict[str, str]
) -> IrisError:
    return cls(message, code=code, reason=reason, details=details)


class ValidationError(IrisError):
    """The request was malformed (``details["field"]`` names the field, where one is to blame)."""


class UnauthorizedError(IrisError):
    """No API key was sent, or it is not a valid one: pass ``api_key=`` or set IRIS_API_KEY."""


class ForbiddenError(IrisError):
    """The key may not do this: it lacks the permission, or may not act as the calling team it named."""


class NotFoundError(IrisError):
    """What the call names does not exist."""


class TeamNotFoundError(NotFoundError):
    """No team of that name is configured."""


class SessionNotFoundError(NotFoundError):
    """The pair has no session."""


class MessageNotFoundError(NotFoundError):
    """No message or job has that id (or the key may not see it)."""


class TimeoutError(IrisError):  # noqa: A001 - Iris's own name for it, as every client spells it
    """A bounded wait ran out. For Ask (and ``Job.wait``) the message goes on: fetch it by ``message_id``."""

    @property
    def message_id(self) -> str | None:
        """Id of the message that is still running, when the wait was for one."""
        return self.details.get("messageId")


class TooManyRequestsError(IrisError):
    """A rate limit, or a queue that is full."""

    @property
    def retry_after_ms(self) -> int | None:
        """Milliseconds after which a retry may be admitted, when Iris said."""
        value = self.details.get("retryAfterMs")
        return int(value) if value is not None and value.isdigit() else None


class BudgetExceededError(IrisError):
    """A turn would start past a spending budget (``details``: budget, limitUsd, spentUsd, resetsAt)."""

    @property
    def resets_at(self) -> int | None:
        """Unix time in milliseconds when the budget's period ends, when Iris said."""
        value = self.details.get("resetsAt")
        return int(value) if value is not None and value.isdigit() else None


class PreconditionFailedError(IrisError):
    """Not in this state, e.g. cancelling a message that has already ended."""


class ProcessError(IrisError):
    """The team's Claude Code process failed."""


class ConfigurationError(IrisError):
    """Iris's configuration does not allow it."""


class ProcessPoolLimitError(IrisError):
    """Every Claude Code process slot stayed busy past the admission timeout."""


class InternalError(IrisError):
    """A bug in Iris; the server's log has the rest."""


class UnavailableError(IrisError):
    """Iris could not be reached (not started, restarting, or the address is wrong)."""


class CancelledError(IrisError):
    """The call was cancelled by its caller."""


class DeadlineExceededError(IrisError):
    """The call's own deadline passed before Iris answered."""


def _classes(root: type[IrisError]) -> list[type[IrisError]]:
    return [root, *(leaf for sub in root.__subclasses__() for leaf in _classes(sub))]


_BY_REASON = {cls.known_reason: cls for cls in _classes(IrisError)}


def error_from(call: FailedCall) -> IrisError:
    """Return the error a failed call raises: the class its ErrorInfo reason names."""
    failure = failure_of(call, log_unnamed=False)
    details = {key: str(value) for key, value in failure.details.items()}
    cls = _BY_REASON.get(failure.reason, IrisError)
    return cls(failure.message, code=failure.code, reason=failure.reason, details=details)
