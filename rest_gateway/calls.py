"""One HTTP request -> one gRPC call: the endpoint every generated route shares.

The endpoint knows nothing about any particular RPC; its ``Route`` says which method to call and how to
bind the request. The method is called generically by its gRPC path on the gateway's channel, with the
request's credential headers as metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .errors import GatewayError, error_from_rpc
from .metadata import outgoing_metadata, rate_limit_headers, unsendable
from .routes import Route
from .streams import stream_response, wants_sse
from .tracing import with_trace_context
from .transcode import build_request, message_to_json, parse_body

__all__ = ["Endpoint", "read_body"]

logger = logging.getLogger(__name__)

Channel = Callable[[], grpc.aio.Channel]
"""Returns the gateway's live channel (made in the lifespan, so it is only known once the app runs)."""


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing it as soon as it passes ``limit`` bytes.

    The declared Content-Length is checked first so an honest oversized upload is refused before it is
    sent; counting while reading catches chunked or lying ones without holding more than the limit.

    Raises:
        GatewayError: the body is larger than ``limit`` (413).

    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        "PayloadTooLargeError",
        f"The request body is larger than the limit of {limit} bytes",
        code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        details={"limit": limit},
    )


@dataclass(frozen=True)
class Endpoint:
    """The Starlette endpoint of one route: bind, call, translate."""

    route: Route
    """What to call and how the request binds to its message."""
    channel: Channel
    """Where to call it."""
    max_body_bytes: int
    """Bodies past this many bytes are refused with 413."""
    _callables: dict[str, tuple[grpc.aio.Channel, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """The route's multicallable on the live channel: made once per channel, not once per request."""

    def _callable(self, kind: str) -> Any:
        """Return the route's ``unary_unary`` or ``unary_stream`` callable on the gateway's live channel."""
        channel = self.channel()
        made = self._callables.get(kind)
        if made is None or made[0] is not channel:
            maker = channel.unary_stream if kind == "stream" else channel.unary_unary
            made = (
                channel,
                maker(
                    self.route.grpc_path,
                    request_serializer=_serialize,
                    response_deserializer=self.route.response_class.FromString,
                ),
            )
            self._callables[kind] = made
        return made[1]

    async def __call__(self, request: Request) -> Response:
        """Serve one request.

        Raises:
            GatewayError: the request cannot be turned into the RPC's message, or the call failed (the app's
                exception handler turns it into the error body); a client gone before its body arrived is
                499, logged in one INFO line (no one reads the answer); anything unexpected becomes an
                ``InternalError`` here, logged, so no trace reaches the caller.

        """
        try:
            return await self._serve(request)
        except GatewayError:
            raise
        except ClientDisconnect as exc:
            logger.info("%s: the client went away before sending its whole body", self.route.grpc_path)
            raise GatewayError(
                499,
                "CancelledError",
                "The client closed the request before sending its whole body",
                code=grpc.StatusCode.CANCELLED,
            ) from exc
        except Exception as exc:  # noqa: BLE001 - the request's top: every failure gets the error body
            logger.error("unexpected error serving %s", self.route.grpc_path, exc_info=exc)
            raise GatewayError(
                500, "InternalError", "Internal error; see the server log", code=grpc.StatusCode.INTERNAL
            ) from exc

    async def _serve(self, request: Request) -> Response:
        body = parse_body(await read_body(request, self.max_body_bytes)) if self.route.body else {}
        message = build_request(self.route, request.path_params, request.query_params.multi_items(), body)
        resume_from = request.headers.get("last-event-id", "")
        if (
            resume_from
            and "after_id" in message.DESCRIPTOR.fields_by_name
            and not getattr(message, "after_id")  # noqa: B009 - any request with the field
        ):
            if not resume_from.isdigit() or len(resume_from) > 18:
                raise GatewayError(
                    400,
                    "ValidationError",
                    "Last-Event-ID must be an event id (digits)",
                    code=grpc.StatusCode.INVALID_ARGUMENT,
                    details={"header": "last-event-id"},
                )
            setattr(message, "after_id", int(resume_from))  # noqa: B010 - the SSE resume header is after_id
        metadata = outgoing_metadata(request.headers)
        bad = unsendable(metadata)
        if bad is not None:
            raise GatewayError(
                401,
                "UnauthorizedError",
                f"Malformed {bad} header",
                code=grpc.StatusCode.UNAUTHENTICATED,
                details={"header": bad},
            )
        metadata = with_trace_context(metadata, request.headers)  # Iris's span is a child of this request's
        if self.route.server_streaming:
            stream = self._callable("stream")
            sse = wants_sse(request.headers.get("accept", ""))
            try:
                return await stream_response(stream(message, metadata=metadata), sse)
            except grpc.aio.AioRpcError as exc:
                raise error_from_rpc(exc) from exc
        call = self._callable("unary")(message, metadata=metadata)
        try:
            reply = await call
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        headers = rate_limit_headers(await call.initial_metadata(), await call.trailing_metadata())
        sent = getattr(reply, self.route.response_body) if self.route.response_body else reply
        return JSONResponse(message_to_json(sent), headers=headers)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
