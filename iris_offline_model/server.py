"""A tiny HTTP/1.1 server that speaks enough of the Anthropic Messages API for real Claude Code.

Claude Code talks to whatever ``ANTHROPIC_BASE_URL`` names, so pointing it here lets tests, demos and users'
CI run real Claude Code with no network and no key. The server is standard library asyncio on purpose: it must
add next to nothing to a turn (a warm turn is ~20 ms end to end), start in-process on port 0, and pull in no
web framework that ``iris_core`` is not allowed to import.

It serves:

- ``POST /v1/messages`` (Claude Code adds ``?beta=true``): the scripted reply (see :mod:`.script`) as SSE when
  the body says ``"stream": true``, else as one JSON message.
- ``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``, estimated from the body's size.
- anything else: 404 with an Anthropic-style error body.

Connections are kept alive (HTTP/1.1 default) and streamed replies use chunked encoding, so one TCP connection
carries a whole conversation; a client that asks for ``Connection: close`` gets a close-delimited stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from .script import ScriptedReply, decide_reply, error_body, estimate_tokens

__all__ = ["OfflineModel", "offline_model_env"]

logger = logging.getLogger(__name__)

_MAX_RECORDED_REQUESTS = 1000
_MAX_RECORDED_BYTES = 16 * 1024 * 1024
_MAX_HEADER_LINE = 64 * 1024
_MAX_HEADERS = 100
_MAX_BODY = 64 * 1024 * 1024
_IDLE_TIMEOUT_S = 300.0
_CLOSE_TIMEOUT_S = 5.0
_REASONS: Mapping[int, str] = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


def offline_model_env(base_url: str) -> dict[str, str]:
    """Return the environment a Claude Code process needs to use an offline model, and nothing slow.

    Besides the URL and a dummy key, it switches off everything that would reach the network (telemetry, error
    reports, auto-update, feature flags, the plugin marketplace) so a process starts fast and works offline.
    Give each process its own ``HOME`` (or ``CLAUDE_CONFIG_DIR``) as well; that is not set here.

    ``CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK`` is read by the Python SDK from its own ``os.environ``, not from
    the child's environment; it is included so callers that export these variables get it too.

    Args:
        base_url: The offline model's :attr:`OfflineModel.base_url`.

    Returns:
        Variables to merge into the Claude Code process's environment.

    """
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "offline-model-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_GROWTHBOOK": "1",
        "CLAUDE_CODE_DISABLE_FEATURE_FLAGS": "1",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1",
    }


class OfflineModel:
    """A local stand-in for the Anthropic Messages API, run as an async context manager.

    Example::

        async with OfflineModel() as model:
            env = offline_model_env(model.base_url)
            ...  # start Claude Code with env; inspect model.requests afterwards

    Args:
        host: The address to listen on.
        port: The port to listen on; 0 picks a free one (see :attr:`base_url`).
        keep_bytes: How many bytes of request bodies :attr:`requests` keeps at most, 16 MiB unless set (the
            newest body is kept whatever its size). A Claude Code body carries the session's whole history, so
            it grows with every turn: a count alone would not bound them.

    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, keep_bytes: int = _MAX_RECORDED_BYTES
    ) -> None:
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._closed = False
        self._connections: set[asyncio.Task[Any]] = set()
        self._keep_bytes = keep_bytes
        # Raw bodies, parsed on reading: a parsed body takes several times the memory of its bytes.
        self._requests: deque[bytes] = deque()
        self._recorded_bytes = 0

    async def start(self) -> None:
        """Start listening.

        Raises:
            RuntimeError: If the model was already started or closed.
            OSError: If the address cannot be bound.

        """
        if self._server is not None or self._closed:
            raise RuntimeError("an OfflineModel can be started only once")
        self._server = await asyncio.start_server(
            self._serve_connection, self._host, self._port, limit=_MAX_HEADER_LINE
        )
        logger.info("offline model listening on %s", self.base_url)

    async def aclose(self) -> None:
        """Stop listening and drop open connections, cancelling replies in flight; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()
        logger.info("offline model closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def base_url(self) -> str:
        """The URL to give Claude Code as ``ANTHROPIC_BASE_URL``, e.g. ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: If the model is not running.

        """
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the offline model is not running")
        sock = self._server.sockets[0]
        host, port = sock.getsockname()[:2]
        if sock.family == socket.AF_INET6:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of the ``POST /v1/messages`` requests received, oldest first, parsed afresh on each read.

        Only the newest are kept: at most 1000 of them, in at most ``keep_bytes`` (:attr:`recorded_bytes`).
        Tests read them to check what Claude Code sent: the history, the system prompt, the tools.
        """
        return [json.loads(body) for body in self._requests]

    @property
    def recorded_bytes(self) -> int:
        """The size of the bodies :attr:`requests` keeps, in bytes."""
        return self._recorded_bytes

    def _record(self, body: bytes) -> None:
        self._requests.append(body)
        self._recorded_bytes += len(body)
        while len(self._requests) > 1 and (
            len(self._requests) > _MAX_RECORDED_REQUESTS or self._recorded_bytes > self._keep_bytes
        ):
            self._recorded_bytes -= len(self._requests.popleft())

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection's requests until it closes; the top of the connection's task."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve_requests(reader, writer)
        except asyncio.CancelledError:
            # aclose() cancels on purpose, and Python 3.11's start_server logs a cancelled task as an error.
            logger.debug("connection cancelled by aclose")
        finally:
            if task is not None:
                self._connections.discard(task)
            await _close(writer)

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(_IDLE_TIMEOUT_S):
                    request = await _read_request(reader)
                if request is None or not await self._respond(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            logger.debug("client went away: %r", exc)
        except TimeoutError:
            logger.debug("closing an idle connection")
        except _BadRequestError as exc:
            logger.debug("bad request: %s", exc)
            await _send_quietly(writer, _json_response(400, error_body(400, f"offline model: {exc}"), False))
        except Exception:
            logger.exception("offline model failed a request; closing its connection")

    async def _respond(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection stays open for another."""
        keep_alive = request.keep_alive
        path = request.target.partition("?")[0]
        try:
            if request.method == "POST" and path == "/v1/messages":
                return await self._messages(request, writer)
            if request.method == "POST" and path == "/v1/messages/count_tokens":
                _parse_json(request.body)
                writer.write(_json_response(200, {"input_tokens": _input_tokens(request)}, keep_alive))
            else:
                logger.debug("no route for %s %s", request.method, request.target)
                message = f"offline model: no route for {request.method} {path}"
                writer.write(_json_response(404, error_body(404, message), keep_alive))
        except _BadRequestError as exc:
            writer.write(_json_response(400, error_body(400, f"offline model: {exc}"), keep_alive))
        await writer.drain()
        return keep_alive

    async def _messages(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        body = _parse_json(request.body)
        self._record(request.body)
        reply = decide_reply(body)
        keep_alive = request.keep_alive
        logger.debug("messages request: stream=%s reply=%r", body.get("stream"), reply)
        if reply.error_status is not None:
            status = reply.error_status
            extra = () if reply.retry else ("x-should-retry: false",)
            writer.write(_json_response(status, error_body(status), keep_alive, extra))
            await writer.drain()
            return keep_alive
        message = _Message(
            id=f"msg_offline_{secrets.token_hex(12)}",
            model=str(body.get("model") or "offline-model"),
            input_tokens=_input_tokens(request),
            reply=reply,
        )
        if body.get("stream") is True:
            await _stream(message, writer, keep_alive)
        else:
            await asyncio.sleep(reply.delay_s * len(reply.chunks))
            writer.write(_json_response(200, message.as_json(), keep_alive))
            await writer.drain()
        return keep_alive


class _BadRequestError(Exception):
    """The request cannot be understood: answered with 400, closing the connection if it is unparseable."""


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    version: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass(frozen=True)
class _Message:
    """One assistant message: a scripted reply with the envelope the Messages API puts around it."""

    id: str
    model: str
    input_tokens: int
    reply: ScriptedReply

    @property
    def output_tokens(self) -> int:
        tool = self.reply.tool
        return estimate_tokens(self.reply.text) + (estimate_tokens(dict(tool.input)) if tool else 0)

    def usage(self, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }

    def envelope(
        self, content: list[dict[str, Any]], stop_reason: str | None, output_tokens: int
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": self.usage(output_tokens),
        }

    def as_json(self) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if self.reply.chunks or self.reply.tool is None:
            content.append({"type": "text", "text": self.reply.text})
        if self.reply.tool is not None:
            tool = self.reply.tool
            content.append({"type": "tool_use", "id": tool.id, "name": tool.name, "input": dict(tool.input)})
        return self.envelope(content, self.reply.stop_reason, self.output_tokens)


async def _stream(message: _Message, writer: asyncio.StreamWriter, keep_alive: bool) -> None:
    """Send a message as SSE events, one write per event, sleeping before each delayed chunk."""
    reply = message.reply
    head = [
        "HTTP/1.1 200 OK",
        "Content-Type: text/event-stream; charset=utf-8",
        "Cache-Control: no-cache",
        f"request-id: req_offline_{secrets.token_hex(8)}",
    ]
    if keep_alive:
        head.append("Transfer-Encoding: chunked")
    head += _connection_headers(keep_alive)
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())

    async def send(data: dict[str, Any]) -> None:
        payload = f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        writer.write(b"%x\r\n%s\r\n" % (len(payload), payload) if keep_alive else payload)
        await writer.drain()

    await send({"type": "message_start", "message": message.envelope([], None, 1)})
    index = 0
    if reply.chunks or reply.tool is None:
        block: dict[str, Any] = {"type": "text", "text": ""}
        await send({"type": "content_block_start", "index": index, "content_block": block})
        for chunk in reply.chunks:
            if reply.delay_s > 0:
                await asyncio.sleep(reply.delay_s)
            delta = {"type": "text_delta", "text": chunk}
            await send({"type": "content_block_delta", "index": index, "delta": delta})
        await send({"type": "content_block_stop", "index": index})
        index += 1
    if reply.tool is not None:
        tool = reply.tool
        block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
        await send({"type": "content_block_start", "index": index, "content_block": block})
        delta = {"type": "input_json_delta", "partial_json": json.dumps(dict(tool.input))}
        await send({"type": "content_block_delta", "index": index, "delta": delta})
        await send({"type": "content_block_stop", "index": index})
    final_delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    usage = message.usage(message.output_tokens)
    await send({"type": "message_delta", "delta": final_delta, "usage": usage})
    await send({"type": "message_stop"})
    if keep_alive:
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """Read one request, or return None when the client closed the connection between requests."""
    line = await _readline(reader)
    while line in (b"\r\n", b"\n"):
        line = await _readline(reader)
    if not line:
        return None
    try:
        method, target, version = line.decode("latin-1").split()
    except ValueError as exc:
        raise _BadRequestError(f"malformed request line {line[:100]!r}") from exc
    headers: dict[str, str] = {}
    while (line := await _readline(reader)) not in (b"\r\n", b"\n", b""):
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or len(headers) >= _MAX_HEADERS:
            raise _BadRequestError("malformed or too many headers")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise _BadRequestError(f"bad content-length {length!r}")
        body = await reader.readexactly(int(length))
    return _Request(method=method, target=target, version=version, headers=headers, body=body)


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError as exc:
        raise _BadRequestError("header line too long") from exc


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await _readline(reader)
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequestError(f"bad chunk size {size_line[:100]!r}") from exc
        if size == 0:
            while await _readline(reader) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > _MAX_BODY:
            raise _BadRequestError("body too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequestError(f"body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _BadRequestError("body is not a JSON object")
    return value


def _input_tokens(request: _Request) -> int:
    """Estimate input tokens from the raw body's size; measuring the bytes avoids re-serialising ~100 KB."""
    return max(1, len(request.body) // 4)


def _connection_headers(keep_alive: bool) -> list[str]:
    if keep_alive:
        return ["Connection: keep-alive", f"Keep-Alive: timeout={int(_IDLE_TIMEOUT_S)}"]
    return ["Connection: close"]


def _json_response(
    status: int, payload: dict[str, Any], keep_alive: bool, extra_headers: tuple[str, ...] = ()
) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"request-id: req_offline_{secrets.token_hex(8)}",
        *_connection_headers(keep_alive),
        *extra_headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection, dropping it outright if the peer will not take the rest of the reply."""
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except (ConnectionError, TimeoutError):
        writer.transport.abort()


async def _send_quietly(writer: asyncio.StreamWriter, data: bytes) -> None:
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError as exc:
        logger.debug("could not answer a bad request: %r", exc)
