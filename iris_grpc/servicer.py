"""The iris.v1.Iris servicer, generated from the contract: every RPC is its domain handler, nothing more.

The domain takes and returns the contract's own messages, so an RPC needs no unpacking or packing here:
``build_servicer`` walks the service descriptor, finds each RPC's handler in the domain
(``IrisService.handler``), and wraps it with the one thing a gRPC boundary adds: the caller from the
interceptors in, and errors out as statuses (``status.abort_with``, the one error mapping). An RPC of the
contract without a handler stops the server at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from iris_client.contract import IRIS_SERVICE
from iris_client.generated.iris.v1 import iris_pb2_grpc as pb_grpc
from iris_core.access import Caller
from iris_core.service import Handler

from .interceptors import CALL
from .status import abort_with

__all__ = ["build_servicer", "current_caller"]

Context = grpc.aio.ServicerContext[Any, Any]


def current_caller() -> Caller:
    """Return who makes the current call, as the interceptors verified it."""
    info = CALL.get()
    return Caller(info.key if info is not None else None)


def _unary(handler: Handler) -> Callable[[Any, Message, Context], Any]:
    async def rpc(self: Any, request: Message, context: Context) -> Message:
        try:
            return cast(Message, await handler(request, current_caller()))
        except Exception as exc:  # noqa: BLE001 - the request's top: every error becomes a status
            await abort_with(context, exc)
            raise AssertionError("abort returned") from exc

    return rpc


def _streaming(handler: Handler) -> Callable[[Any, Message, Context], AsyncIterator[Message]]:
    async def rpc(self: Any, request: Message, context: Context) -> AsyncIterator[Message]:
        # A client that goes away stops the stream, not what it reads (a team's turn goes on).
        try:
            events = cast(AsyncIterator[Message], await handler(request, current_caller()))
            async for event in events:
                yield event
        except Exception as exc:  # noqa: BLE001 - the request's top: every error becomes a status
            await abort_with(context, exc)

    return rpc


def build_servicer(
    find: Callable[[str], Handler], service: ServiceDescriptor = IRIS_SERVICE
) -> pb_grpc.IrisServicer:
    """Return a servicer of ``service`` whose every RPC calls ``find(rpc_name)``'s handler.

    Raises:
        LookupError: an RPC of the contract has no handler (the server refuses to start without it).

    """
    methods: dict[str, Callable[..., Any]] = {}
    for method in service.methods:
        handler = find(method.name)
        methods[method.name] = _streaming(handler) if _streams(method) else _unary(handler)
    servicer_class = type("IrisServicer", (pb_grpc.IrisServicer,), methods)
    return cast(pb_grpc.IrisServicer, servicer_class())


def _streams(method: MethodDescriptor) -> bool:
    return bool(method.server_streaming)
