"""Server-streaming RPCs over HTTP: Server-Sent Events, or NDJSON for clients that do not ask for SSE.

The first message is awaited before the response starts, so a call refused at once (no key, unknown team,
full queue) is a real HTTP error with its status, not a 200 whose body says otherwise. After that the
status is sent, and a later failure can only be reported in the stream: an ``error`` event (SSE) or an
``{"error": ...}`` line (NDJSON), each carrying the gateway's error body.

When the client goes away, Starlette cancels the body iterator and its ``finally`` cancels the gRPC call.
That stops the *stream*, not the team's turn: the turn was accepted before its first event (``start``) and
runs to its end, is recorded, and can be read with SessionReport, exactly as when a gRPC ``Tell`` caller
hangs up. Interrupting a turn is SessionCancel's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.responses import StreamingResponse

from .errors import error_body, error_from_rpc
from .metadata import rate_limit_headers
from .transcode import message_to_json

__all__ = ["SSE_MEDIA_TYPE", "NDJSON_MEDIA_TYPE", "stream_response", "wants_sse"]

logger = logging.getLogger(__name__)

SSE_MEDIA_TYPE = "text/event-stream"
NDJSON_MEDIA_TYPE = "application/x-ndjson"

_FIRST_MESSAGE_WAIT_S = 1.0
"""How long a stream's response waits for its first message (to report an early refusal as HTTP)."""

_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Ask browsers and reverse proxies not to cache or buffer the stream, so every event is seen at once."""


def wants_sse(accept: str) -> bool:
    """Tell whether the client's Accept header names ``text/event-stream``."""
    return any(part.split(";")[0].strip() == SSE_MEDIA_TYPE for part in accept.split(","))


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _sse_event(message: Message) -> str:
    """One SSE event: named after the set field of the message's oneof, with that field as its data.

    This gives the original iris-mcp's event stream (``event: chunk`` / ``data: {"text": ...}``) from
    ``TellResponse``;
    a streamed message without a oneof is sent whole as a ``message`` event.
    """
    data = message_to_json(message)
    fields = message.DESCRIPTOR.fields_by_name
    if "id" in fields and "kind" in fields:  # a numbered event (WatchEvents): resumable with Last-Event-ID
        number, kind = getattr(message, "id"), getattr(message, "kind")  # noqa: B009 - any numbered message
        return f"id: {number}\nevent: {kind}\ndata: {_dumps(data)}\n\n"
    oneofs = message.DESCRIPTOR.oneofs
    if len(oneofs) == 1:
        which = message.WhichOneof(oneofs[0].name)
        if which is not None:
            field = message.DESCRIPTOR.fields_by_name[which]
            return f"event: {which}\ndata: {_dumps(data[field.json_name])}\n\n"
    return f"event: message\ndata: {_dumps(data)}\n\n"


def _ndjson_line(message: Message) -> str:
    return _dumps({"result": message_to_json(message)}) + "\n"


async def _events(
    call: grpc.aio.UnaryStreamCall[Message, Message], first: asyncio.Future[Any], sse: bool
) -> AsyncIterator[str]:
    encode = _sse_event if sse else _ndjson_line
    try:
        message: Any = await first
        while message is not grpc.aio.EOF:
            yield encode(message)
            message = await call.read()
    except grpc.aio.AioRpcError as exc:
        error = error_from_rpc(exc)
        body = error_body(error.status_code, error.reason, error.message, error.code, error.details)
        yield f"event: error\ndata: {_dumps(body)}\n\n" if sse else _dumps({"error": body}) + "\n"
    finally:
        first.cancel()
        # A no-op when the call has ended; otherwise the client left and the stream (not the turn) stops.
        if not call.done():
            logger.info("stream client went away; cancelling the gRPC call")
        call.cancel()


async def stream_response(call: grpc.aio.UnaryStreamCall[Message, Message], sse: bool) -> StreamingResponse:
    """Wait for the stream's first message, then return a response that relays the rest.

    Raises:
        grpc.aio.AioRpcError: the call failed before its first message (the caller maps it to HTTP).

    """
    first = asyncio.ensure_future(call.read())
    try:
        # A stream that may stay quiet (WatchEvents with nothing new) starts once its first message is late.
        await asyncio.wait({first}, timeout=_FIRST_MESSAGE_WAIT_S)
        if first.done():
            first.result()  # a refusal before the first message is a real HTTP error
    except BaseException:
        first.cancel()
        call.cancel()
        raise
    headers = dict(_STREAM_HEADERS)
    headers.update(rate_limit_headers(await call.initial_metadata()))
    return StreamingResponse(
        _events(call, first, sse),
        headers=headers,
        media_type=SSE_MEDIA_TYPE if sse else NDJSON_MEDIA_TYPE,
    )
