"""The WebSocket at ``/api/v1/stream``: the original iris-mcp design's protocol, translated onto gRPC calls.

Frames are JSON objects with a ``type``. From the client:

- ``{"type": "auth", "key": "..."}``: the API key, for browsers that cannot set headers on the upgrade
  (otherwise ``Authorization: Bearer`` or ``X-API-Key`` on the upgrade request). Without a key in either
  within ``AUTH_WAIT_S``, the connection is closed (code 4401).
- ``{"type": "message", "team", "message", "fromTeam"?, "sessionId"?}``: a Tell. The pair's own session
  is used (sessions belong to (caller, team) pairs); ``sessionId`` is accepted for the design's clients.
- ``{"type": "cancel", "messageId"}``: CancelMessage.
- ``{"type": "subscribe", "team"}`` / ``{"type": "unsubscribe", "team"}``: WatchEvents for one team.
- ``{"type": "ping"}``.

To the client: ``start``, ``chunk {messageId, text, timestamp}``, ``tool_use {messageId, tool, input}``,
``permission_request``, ``complete {messageId, status, response, duration, timestamp}``, ``cancelled``,
``subscribed``/``unsubscribed {team}``, ``event {...}`` (a WatchEvents event of a subscribed team), ``pong``,
and ``error {messageId?, error, message, code, statusCode, details}``: the gateway's error body. A bad frame
gets an ``error`` frame and the connection stays usable. Authentication, permissions, rate limits and the
audit are the gRPC server's, as for every route: this only translates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from typing import Any

import grpc
from starlette.websockets import WebSocket, WebSocketDisconnect

from iris_client.credentials import outgoing_metadata, unsendable
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc

from .errors import GatewayError, error_body, error_from_rpc
from .tracing import with_trace_context
from .transcode import message_to_json

__all__ = ["AUTH_WAIT_S", "MAX_FRAME_BYTES", "PATH", "serve_socket"]

logger = logging.getLogger(__name__)

PATH = "/api/v1/stream"
AUTH_WAIT_S = 5.0
"""How long a connection without a key on its upgrade has to send its ``auth`` frame."""
MAX_FRAME_BYTES = 256 * 1024
"""The largest frame a client may send (uvicorn refuses bigger ones before reading them whole)."""
_CLOSE_UNAUTHENTICATED = 4401


class _BadFrame(Exception):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class _Session:
    """One connection: its key, its sends (one at a time), and the calls it started."""

    def __init__(
        self, socket: WebSocket, stub: iris_pb2_grpc.IrisAsyncStub, metadata: tuple[tuple[str, str], ...]
    ):
        self.socket = socket
        self.stub = stub
        self.metadata = metadata
        self._sending = asyncio.Lock()
        self.watching: dict[str, asyncio.Task[None]] = {}

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._sending:
            await self.socket.send_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

    async def send_error(self, exc: BaseException, message_id: str = "") -> None:
        if isinstance(exc, grpc.aio.AioRpcError):
            failure = error_from_rpc(exc)
        elif isinstance(exc, _BadFrame):
            details = {"field": exc.field} if exc.field else {}
            failure = GatewayError(
                400, "ValidationError", exc.message, code=grpc.StatusCode.INVALID_ARGUMENT, details=details
            )
        else:
            raise exc
        body = error_body(failure.status_code, failure.reason, failure.message, failure.code, failure.details)
        frame: dict[str, Any] = {"type": "error", **body}
        if message_id:
            frame["messageId"] = message_id
        await self.send(frame)

    async def tell(self, frame: dict[str, Any]) -> None:
        request = pb.TellRequest(
            to_team=_text(frame, "team"),
            message=_text(frame, "message"),
            from_team=_text(frame, "fromTeam", ""),
        )
        message_id = ""
        try:
            async for event in self.stub.Tell(request, metadata=self.metadata):
                which = event.WhichOneof("event")
                data = message_to_json(getattr(event, which)) if which else {}
                if which == "start":
                    message_id = event.start.message_id
                await self.send({"type": which, "messageId": message_id, **data})
        except grpc.aio.AioRpcError as exc:
            await self.send_error(exc, message_id)

    async def cancel(self, frame: dict[str, Any]) -> None:
        message_id = _text(frame, "messageId")
        try:
            reply = await self.stub.CancelMessage(
                pb.CancelMessageRequest(message_id=message_id), metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            await self.send_error(exc, message_id)
            return
        await self.send({"type": "cancelled", "messageId": message_id, "status": reply.message.status})

    async def watch(self, team: str) -> None:
        try:
            async for event in self.stub.WatchEvents(
                pb.WatchEventsRequest(team=team), metadata=self.metadata
            ):
                await self.send({"type": "event", **message_to_json(event)})
        except grpc.aio.AioRpcError as exc:
            self.watching.pop(team, None)
            await self.send_error(exc)


def _text(frame: dict[str, Any], field: str, default: str | None = None) -> str:
    value = frame.get(field, default)
    if not isinstance(value, str) or (default is None and not value):
        raise _BadFrame(f"{field} must be a non-empty string", field)
    return value


async def _key_of(socket: WebSocket) -> tuple[tuple[str, str], ...] | None:
    """Return the metadata carrying the connection's key: from the upgrade's headers, or an ``auth`` frame."""
    metadata = outgoing_metadata({k.lower(): v for k, v in socket.headers.items()})
    if metadata:
        return metadata
    try:
        async with asyncio.timeout(AUTH_WAIT_S):
            raw = await _receive_text(socket)
        frame = json.loads(raw or "")
    except (TimeoutError, ValueError, WebSocketDisconnect):
        return None
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not isinstance(frame.get("key"), str):
        return None
    return (("authorization", f"Bearer {frame['key']}"),)


async def serve_socket(socket: WebSocket, channel: grpc.aio.Channel) -> None:
    """Serve one WebSocket connection until the client leaves; every call it started ends with it."""
    await socket.accept()
    metadata = await _key_of(socket)
    if metadata is None or unsendable(metadata) is not None:
        frame = error_body(
            401, "UnauthorizedError", "An API key is required", grpc.StatusCode.UNAUTHENTICATED, {}
        )
        with contextlib.suppress(Exception):
            await socket.send_text(json.dumps({"type": "error", **frame}))
            await socket.close(code=_CLOSE_UNAUTHENTICATED)
        return
    # Every call of the connection continues its trace (FastAPI's span of the socket, or the caller's).
    metadata = with_trace_context(metadata, {k.lower(): v for k, v in socket.headers.items()})
    session = _Session(socket, iris_pb2_grpc.IrisStub(channel), metadata)
    try:
        async with asyncio.TaskGroup() as calls:
            while True:
                raw = await _receive_text(socket)
                try:
                    if raw is None:
                        raise _BadFrame("Frames are JSON text; a binary frame was sent")
                    await _dispatch(session, calls, raw)
                except _BadFrame as exc:
                    await session.send_error(exc)
    except* WebSocketDisconnect:
        pass
    finally:
        for task in session.watching.values():
            task.cancel()


async def _dispatch(session: _Session, calls: asyncio.TaskGroup, raw: str) -> None:
    if len(raw) > MAX_FRAME_BYTES:
        raise _BadFrame(f"A frame is at most {MAX_FRAME_BYTES} bytes")
    try:
        frame = json.loads(raw)
    except ValueError as exc:
        raise _BadFrame(f"A frame must be a JSON object: {exc}") from exc
    if not isinstance(frame, dict):
        raise _BadFrame("A frame must be a JSON object")
    kind = frame.get("type")
    if kind == "message":
        _text(frame, "team"), _text(frame, "message"), _text(frame, "fromTeam", "")  # refused before a call
        calls.create_task(_quietly(session, session.tell(frame)))
    elif kind == "cancel":
        _text(frame, "messageId")
        calls.create_task(_quietly(session, session.cancel(frame)))
    elif kind == "subscribe":
        team = _text(frame, "team")
        if team not in session.watching:
            session.watching[team] = calls.create_task(_quietly(session, session.watch(team)))
        await session.send({"type": "subscribed", "team": team})
    elif kind == "unsubscribe":
        team = _text(frame, "team")
        task = session.watching.pop(team, None)
        if task is not None:
            task.cancel()
        await session.send({"type": "unsubscribed", "team": team})
    elif kind == "ping":
        await session.send({"type": "pong"})
    elif kind == "auth":
        raise _BadFrame("This connection is already authenticated", "type")
    else:
        raise _BadFrame(
            f"Unknown frame type {kind!r} (known: message, cancel, subscribe, unsubscribe, ping, auth)",
            "type",
        )


async def _quietly(session: _Session, call: Coroutine[Any, Any, None]) -> None:
    """Run one translated call; nothing it raises ends the connection's other calls.

    A bad frame gets its error frame; once the client has gone, the call's last frames have nowhere to go.
    """
    try:
        try:
            await call
        except _BadFrame as exc:
            await session.send_error(exc)
    except (WebSocketDisconnect, RuntimeError, OSError) as exc:
        logger.debug("WebSocket client gone during a call: %r", exc)


async def _receive_text(socket: WebSocket) -> str | None:
    """Return the next text frame, None for a binary one.

    Raises:
        WebSocketDisconnect: the client left.

    """
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    return text if isinstance(text, str) else None
