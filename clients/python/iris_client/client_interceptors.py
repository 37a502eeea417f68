"""What every call through a client's channel carries: the key, and a deadline when the caller gave none.

They sit on the channel, so the generated stub a client exposes (``iris.stub``) for the RPCs it has no method
for gets the key and a deadline too, as the Go and TypeScript clients' raw stubs do.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from typing import Any

import grpc

from .call_options import CallOptions

__all__ = ["AsyncKeyAndDeadline", "AsyncKeyOnStreams", "KeyAndDeadline"]

_Fields = namedtuple(  # noqa: PYI024 - grpc's ClientCallDetails is shaped like this; grpc's own examples do it
    "_Fields", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _CallDetails(_Fields, grpc.ClientCallDetails):
    """A sync call's details with the key and deadline filled in."""


def _with_key(options: CallOptions, metadata: Any) -> list[tuple[str, str | bytes]]:
    pairs = list(metadata or ())
    if not any(name == "authorization" for name, _ in pairs):
        pairs += options.metadata
    return pairs


class KeyAndDeadline(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """The sync channel's interceptor: the key on every call, the client's deadline on unary ones."""

    def __init__(self, options: CallOptions) -> None:
        self._options = options

    def _details(self, details: Any, *, unary: bool) -> _CallDetails:
        timeout = details.timeout
        if unary and timeout is None:
            timeout = self._options.call_timeout_s
        return _CallDetails(
            details.method,
            timeout,
            _with_key(self._options, details.metadata),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        """Send a unary call with the key and a deadline."""
        return continuation(self._details(details, unary=True), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        """Send a stream with the key (streams have no default deadline)."""
        return continuation(self._details(details, unary=False), request)


def _async_details(options: CallOptions, details: Any, *, unary: bool) -> grpc.aio.ClientCallDetails:
    timeout = details.timeout
    if unary and timeout is None:
        timeout = options.call_timeout_s
    metadata = grpc.aio.Metadata(*_with_key(options, details.metadata))
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


class AsyncKeyAndDeadline(grpc.aio.UnaryUnaryClientInterceptor):
    """The asyncio channel's unary interceptor: the key and the client's deadline."""

    def __init__(self, options: CallOptions) -> None:
        self._options = options

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        """Send a unary call with the key and a deadline."""
        return await continuation(_async_details(self._options, details, unary=True), request)


class AsyncKeyOnStreams(grpc.aio.UnaryStreamClientInterceptor):
    """The asyncio channel's stream interceptor: the key (streams have no default deadline)."""

    def __init__(self, options: CallOptions) -> None:
        self._options = options

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        """Send a stream with the key."""
        return await continuation(_async_details(self._options, details, unary=False), request)
