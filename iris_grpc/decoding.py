"""Request payloads that are not the request message: INVALID_ARGUMENT with a ValidationError, not UNKNOWN.

grpc.aio decodes a request before any interceptor or handler runs, and a deserializer that raises ends the
call as UNKNOWN ("Unexpected <class 'DecodeError'>") with an ERROR traceback in the log. So the Iris service
is registered here with deserializers that never raise: bytes that do not decode become an ``Undecodable``,
and the method's own behaviour, innermost (after authentication, authorization, rate limit and audit, in
their usual order), refuses it with the same ValidationError status every other bad input gets.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from iris_core.errors import ValidationError

from .status import abort_with

__all__ = ["Undecodable", "add_decoding_servicer"]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    Context = grpc.aio.ServicerContext


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request payload that did not decode as its method's request message."""

    message_type: str
    """The full name of the message it should have been (``iris.v1.SendMessageRequest``)."""
    why: str
    """What the decoder said."""

    def error(self) -> ValidationError:
        """Return the refusal: a ValidationError naming the request as the bad field."""
        return ValidationError(
            f"Malformed request: the payload is not a valid {self.message_type}",
            details={"field": "request"},
        )


def _tolerant(message_class: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    full_name = message_class.DESCRIPTOR.full_name

    def deserialize(payload: bytes) -> Message | Undecodable:
        try:
            return message_class.FromString(payload)
        except DecodeError as exc:
            return Undecodable(full_name, str(exc))

    return deserialize


async def _refuse(request: Undecodable, context: Context) -> NoReturn:
    logger.info("refused an undecodable %s from %s: %s", request.message_type, context.peer(), request.why)
    await abort_with(context, request.error())
    raise AssertionError("abort returned")


def _unary(behaviour: Any) -> Callable[[Any, Context], Any]:
    async def unary(request: Any, context: Context) -> Any:
        if isinstance(request, Undecodable):
            await _refuse(request, context)
        return await behaviour(request, context)

    return unary


def _stream(behaviour: Any) -> Callable[[Any, Context], AsyncIterator[Any]]:
    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, Undecodable):
            await _refuse(request, context)
        async for response in behaviour(request, context):
            yield response

    return stream


def add_decoding_servicer(servicer: object, service: ServiceDescriptor, server: grpc.aio.Server) -> None:
    """Register ``servicer``'s methods of ``service`` on ``server``, refusing payloads that do not decode.

    This is what the generated ``add_<Service>Servicer_to_server`` does, except that a payload which is not
    the request message ends as INVALID_ARGUMENT (ErrorInfo reason ``ValidationError``, field ``request``).

    Raises:
        ValueError: the service has a client-streaming RPC (Iris has none, and serves none).

    """
    handlers: dict[str, Handler] = {}
    for method in service.methods:
        if method.client_streaming:
            raise ValueError(f"{method.full_name}: client-streaming RPCs are not served")
        deserialize = _tolerant(GetMessageClass(method.input_type))
        serialize = GetMessageClass(method.output_type).SerializeToString
        behaviour = getattr(servicer, method.name)
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _stream(behaviour), deserialize, serialize
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _unary(behaviour), deserialize, serialize
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
