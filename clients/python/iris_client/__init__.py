"""Iris for Python: ``IrisClient`` and ``AsyncIrisClient``, and the contract kit they are built on.

::

    from iris_client import IrisClient

    iris = IrisClient("127.0.0.1:50051", api_key=key)  # or IRIS_API_KEY
    r = iris.teams.backend.ask("What database do we use?")
    for chunk in iris.teams.backend.stream("Explain auth"):
        print(chunk.text, end="")

- ``iris_client.client`` (``IrisClient``) and ``iris_client.aio`` (``AsyncIrisClient``): ask, stream,
  execute and wait for jobs; ``iris_client.errors``: one exception class per reason Iris names a failure by.
- ``iris_client.generated.iris.v1.iris_pb2``: the contract's messages (imports protobuf only, never grpc, so
  the server's domain can use them as its result types); ``iris_pb2_grpc``: the gRPC stubs.
- ``iris_client.contract``, ``json_mapping``, ``call_errors``, ``channels``, ``credentials``: what the REST
  gateway and the MCP adapter are built on.

The names below load on first use, so importing the messages (``iris_client.generated...``) never loads grpc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .aio import AsyncIrisClient, AsyncJob, AsyncTeam
    from .client import IrisClient, Job, Team
    from .errors import (
        BudgetExceededError,
        CancelledError,
        ConfigurationError,
        DeadlineExceededError,
        ForbiddenError,
        InternalError,
        IrisError,
        MessageNotFoundError,
        NotFoundError,
        PreconditionFailedError,
        ProcessError,
        ProcessPoolLimitError,
        SessionNotFoundError,
        TeamNotFoundError,
        TimeoutError,
        TooManyRequestsError,
        UnauthorizedError,
        UnavailableError,
        ValidationError,
    )
    from .tell_events import TellEvent

__all__ = [
    "AsyncIrisClient",
    "AsyncJob",
    "AsyncTeam",
    "BudgetExceededError",
    "CancelledError",
    "ConfigurationError",
    "DeadlineExceededError",
    "ForbiddenError",
    "InternalError",
    "IrisClient",
    "IrisError",
    "Job",
    "MessageNotFoundError",
    "NotFoundError",
    "PreconditionFailedError",
    "ProcessError",
    "ProcessPoolLimitError",
    "SessionNotFoundError",
    "Team",
    "TeamNotFoundError",
    "TellEvent",
    "TimeoutError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
]

_HOME = {"AsyncIrisClient": "aio", "AsyncJob": "aio", "AsyncTeam": "aio", "IrisClient": "client"}
_HOME |= {"Job": "client", "Team": "client", "TellEvent": "tell_events"}


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module 'iris_client' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME.get(name, 'errors')}", __name__), name)
