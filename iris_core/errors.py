"""The one error tree of Iris.

Every failure a caller can see is one of these classes. Each boundary (gRPC here, and the gateway and MCP
adapter on top of it) maps the tree once, by class, so every transport names the same error the same way::

    IrisError
    ├── ValidationError              bad input; nothing was changed
    ├── UnauthorizedError            no usable credentials
    ├── ForbiddenError               credentials lack a permission
    ├── NotFoundError
    │   ├── TeamNotFoundError        the team is not in the config
    │   ├── SessionNotFoundError     the pair has no session
    │   └── MessageNotFoundError     no turn with that message id
    ├── OperationTimeoutError        (reason "TimeoutError") a bounded wait ran out
    ├── TooManyRequestsError         rate limit or a full queue
    ├── BudgetExceededError          a team's or key's spending budget for the day or month is used up
    ├── PreconditionFailedError      the operation needs something the machine lacks (e.g. the spawn script)
    ├── ProcessError                 a Claude Code process failed to start or died
    │   └── ProcessGoneError         (reason "ProcessError") it was dead before the turn began: retried once
    ├── ConfigurationError           the config file is wrong
    └── ProcessPoolLimitError        every process slot is busy

``reason`` is what travels on the wire (``google.rpc.ErrorInfo.reason``): the class name, except where the
original iris-mcp's name would shadow a builtin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "BudgetExceededError",
    "ConfigurationError",
    "ForbiddenError",
    "IrisError",
    "MessageNotFoundError",
    "NotFoundError",
    "OperationTimeoutError",
    "PreconditionFailedError",
    "ProcessError",
    "ProcessGoneError",
    "ProcessPoolLimitError",
    "RewindRefusedError",
    "SessionNotFoundError",
    "TeamNotFoundError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "ValidationError",
]


class IrisError(Exception):
    """Root of every error Iris reports to a caller.

    The message is meant for the caller: it never carries a stack trace, a server path or key material.
    ``details`` holds structured, caller-safe facts (a field name, a retry delay) that transports expose
    alongside the message.
    """

    reason: ClassVar[str] = "IrisError"

    def __init__(self, message: str, *, details: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = dict(details or {})

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "reason" not in cls.__dict__:
            cls.reason = cls.__name__


class ValidationError(IrisError):
    """Input broke a rule of the contract; the request changed nothing."""


class UnauthorizedError(IrisError):
    """The caller presented no usable credentials."""


class ForbiddenError(IrisError):
    """The caller's credentials do not grant the permission this call needs."""


class NotFoundError(IrisError):
    """Something the request names does not exist."""


class TeamNotFoundError(NotFoundError):
    """The team is not in the configuration."""


class SessionNotFoundError(NotFoundError):
    """The (caller, team) pair has no session."""


class MessageNotFoundError(NotFoundError):
    """No turn is recorded under the message id."""


class OperationTimeoutError(IrisError):
    """A bounded wait ran out (the original ``TimeoutError``, renamed so as not to shadow a builtin)."""

    reason = "TimeoutError"


class TooManyRequestsError(IrisError):
    """A limit on requests was hit: a rate limit, or a pair's queue is full."""


class BudgetExceededError(IrisError):
    """A turn would start past a spending budget; its details name the budget and when it resets."""


class PreconditionFailedError(IrisError):
    """The operation needs something this machine does not provide, such as an executable spawn script."""


class ProcessError(IrisError):
    """A Claude Code process failed to start, failed a handshake, or died during a turn."""


class ProcessGoneError(ProcessError):
    """The process had died before the turn began (nothing of it reached Claude): the turn can run again.

    Iris retries such a turn once on a new process that resumes the session; callers see a ProcessError only
    if that fails too.
    """

    reason = "ProcessError"


class RewindRefusedError(ProcessError):
    """Claude Code refused to resume a session rewound to before a cut-off turn.

    It would have lost more than that turn; Iris starts the process again with a plain resume.
    """

    reason = "ProcessError"


class ConfigurationError(IrisError):
    """The configuration is invalid; start-up stops with this message."""


class ProcessPoolLimitError(IrisError):
    """Every process slot is held by a busy process, so no new process can start."""
