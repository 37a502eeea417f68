"""Serve grpc.aio method handlers (and grpc.aio server interceptors) through a grpc_testing server, portless.

grpc_testing runs a SYNCHRONOUS servicer: it calls ``implementation(request, context)`` in a thread and takes
the return value (or, for a stream, the iterator) as the response. Iris's servicer methods are ``async def``,
and the interceptors are ``grpc.aio.ServerInterceptor``s, which grpc_testing knows nothing of. So this module
adds the two things a grpc.aio server would do, and nothing else:

- **The chain**: for each call, the method handler is looked up through the interceptors the way grpc.aio's
  server does (the first interceptor's ``intercept_service`` gets a continuation to the next, the last one a
  continuation to the registered handlers), so the first interceptor's wrapper is the outermost.
- **The loop**: each sync method grpc_testing calls runs the (wrapped) async handler to completion on one
  private event loop, owned by the test. A stream is driven one event at a time, every step in the same
  ``contextvars.Context``, as a grpc.aio server drives it in one task (the interceptors share ``CALL``).

The handler gets ``AioContext``: grpc.aio's servicer-context calls over grpc_testing's context. grpc_testing's
context lacks what grpc.aio code uses: ``abort`` takes no trailing metadata (and drops any set before it, so
``grpc-status-details-bin`` could not travel), ``send_initial_metadata`` is not awaitable, ``peer()`` raises
NotImplementedError, and there is no ``trailing_metadata()`` or ``code()`` getter.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import grpc
import grpc_testing  # type: ignore[import-untyped]  # grpcio-testing ships no types
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import error_details_pb2, status_pb2

Metadata = tuple[tuple[str, str | bytes], ...]

PEER = "ipv4:10.0.0.7:51234"
"""The address every call comes from (grpc_testing's context has no peer)."""

RUNTIME_METADATA = "grpc.metadata_added_by_runtime"
"""grpc_testing appends an entry of this name to every metadata it is given (as a real transport may)."""


class AioContext:
    """grpc.aio's ``ServicerContext`` surface that Iris uses, over grpc_testing's sync context."""

    def __init__(self, inner: grpc.ServicerContext, on_status: Callable[[grpc.StatusCode], None]) -> None:
        self._inner = inner
        self._on_status = on_status
        self._trailing: Metadata = ()
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def invocation_metadata(self) -> Metadata:
        return self._inner.invocation_metadata()

    def peer(self) -> str:
        return PEER

    def time_remaining(self) -> float | None:
        return self._inner.time_remaining()

    async def send_initial_metadata(self, initial_metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._inner.send_initial_metadata(tuple(initial_metadata))

    def set_trailing_metadata(self, trailing_metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._trailing = tuple(trailing_metadata)
        self._inner.set_trailing_metadata(self._trailing)

    def trailing_metadata(self) -> Metadata:
        return self._trailing

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()) -> None:
        """End the call as grpc.aio does: this status and trailing metadata (else the set one), then raise."""
        self._code, self._details = code, details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        self._inner.set_code(code)
        self._inner.set_details(details)
        self._inner.set_trailing_metadata(self._trailing)
        self._on_status(code)  # the status goes out here
        raise grpc.aio.AbortError(f"aborted with {code.name}")


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str, invocation_metadata: Metadata) -> None:
        self.method = method
        self.invocation_metadata = invocation_metadata


class _Registry:
    """Takes what a generated ``add_XServicer_to_server`` registers."""

    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, object]) -> None:
        """The same handlers as the generic one; grpc.aio finds either."""


class AioServer:
    """grpc.aio servicers behind grpc.aio interceptors, served by a grpc_testing server on ``loop``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self._loop = loop
        self._interceptors = tuple(interceptors)
        self._registry = _Registry()
        self._adapters: dict[ServiceDescriptor, object] = {}
        self.timeline: list[str] = []
        """``status CODE`` each time a handler aborts, when its status goes out; a test may add its own events
        (e.g. an audit row being written) to see what happened first."""

    def add(
        self, service: ServiceDescriptor, register: Callable[[Any, Any], None], servicer: object
    ) -> AioServer:
        """Serve ``servicer`` (registered by the generated ``register``) as ``service``."""
        register(servicer, self._registry)
        prefix = f"/{service.full_name}/"
        methods = {
            m.name: self._streaming(prefix + m.name) if m.server_streaming else self._unary(prefix + m.name)
            for m in service.methods
        }
        self._adapters[service] = type(f"Sync{service.name}", (), methods)()
        return self

    def testing_server(self, time: grpc_testing.Time) -> grpc_testing.Server:
        """Return the grpc_testing server of every service added."""
        return grpc_testing.server_from_dictionary(self._adapters, time)

    async def _handler(self, method: str, metadata: Metadata) -> grpc.RpcMethodHandler[Any, Any]:
        """Find the method's handler through the interceptors, as grpc.aio's server does."""

        def query(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
            for generic in self._registry.generic:
                found = generic.service(details)
                if found is not None:
                    return found
            return None

        async def run(
            remaining: tuple[grpc.aio.ServerInterceptor, ...], details: grpc.HandlerCallDetails
        ) -> grpc.RpcMethodHandler[Any, Any] | None:
            if not remaining:
                return query(details)

            async def continuation(
                next_details: grpc.HandlerCallDetails,
            ) -> grpc.RpcMethodHandler[Any, Any] | None:
                return await run(remaining[1:], next_details)

            return await remaining[0].intercept_service(continuation, details)

        handler = await run(self._interceptors, _CallDetails(method, metadata))
        assert handler is not None, f"nothing serves {method}"
        return handler

    def _context(self, context: grpc.ServicerContext) -> AioContext:
        return AioContext(context, lambda code: self.timeline.append(f"status {code.name}"))

    def _unary(self, method: str) -> Callable[[Any, Any, grpc.ServicerContext], Any]:
        def call(_self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            aio = self._context(context)

            async def serve() -> Any:
                handler = await self._handler(method, aio.invocation_metadata())
                implementation = cast(Callable[[Any, AioContext], Awaitable[Any]], handler.unary_unary)
                return await implementation(request, aio)

            try:
                return self._loop.run_until_complete(serve())
            except grpc.aio.AbortError:
                return None  # the status, details and trailing metadata are set on grpc_testing's context

        return call

    def _streaming(self, method: str) -> Callable[[Any, Any, grpc.ServicerContext], Iterator[Any]]:
        def call(_self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            aio = self._context(context)
            shared = contextvars.copy_context()

            def step(awaitable: Awaitable[Any]) -> Any:
                async def run() -> Any:
                    return await awaitable

                return self._loop.run_until_complete(self._loop.create_task(run(), context=shared))

            handler = step(self._handler(method, aio.invocation_metadata()))
            implementation = cast(Callable[[Any, AioContext], AsyncIterator[Any]], handler.unary_stream)
            events = implementation(request, aio)

            async def next_event() -> tuple[bool, Any]:
                try:
                    return True, await anext(events)
                except StopAsyncIteration:
                    return False, None

            def iterate() -> Iterator[Any]:
                try:
                    while True:
                        more, event = step(next_event())
                        if not more:
                            return
                        yield event
                except grpc.aio.AbortError:
                    return  # the status is set on grpc_testing's context

            return iterate()

        return call


def metadata_value(metadata: Metadata | None, name: str) -> str | bytes | None:
    """Return the value of ``name`` in ``metadata`` (None when absent)."""
    return next((value for key, value in metadata or () if key == name), None)


def rich_status(trailing_metadata: Metadata | None) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo]:
    """Return the ``google.rpc.Status`` in ``grpc-status-details-bin`` and its ErrorInfo.

    Raises:
        AssertionError: the metadata holds no rich status, or it holds no ErrorInfo.

    """
    raw = metadata_value(trailing_metadata, "grpc-status-details-bin")
    assert isinstance(raw, bytes), f"no rich status in {trailing_metadata!r}"
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert len(status.details) == 1 and status.details[0].Unpack(info), status
    return status, info
