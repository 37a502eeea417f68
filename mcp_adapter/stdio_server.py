"""A small MCP server over stdio (newline-delimited JSON-RPC 2.0), without the MCP SDK.

Why not the SDK: importing it loads its client, HTTP server and two protocol eras' pydantic models, which
kept the stdio adapter (one per Claude Code session) near 80 MB. This serves only what the SDK's server
serves for our tools, on the wire as the SDK writes it (``tests/mcp`` checks it with the official
Inspector and the SDK's client):

* The era is decided by the first request, as the SDK does: ``initialize`` opens the handshake era
  (2024-11-05 .. 2025-11-25: ``ping``, ``tools/list``, ``tools/call``, a request before ``initialize`` is
  refused); a request carrying the 2026-07-28 ``_meta`` envelope opens the modern era (``server/discover``,
  ``tools/list``, ``tools/call``; every request is checked for its envelope and results carry
  ``resultType`` and the ``serverInfo`` stamp).
* ``tools/call`` reports progress (``notifications/progress``) to a request with a ``progressToken`` and
  stops on ``notifications/cancelled`` (a cancelled request is never answered).
* Bad input (not JSON, not a request, an oversized line) gets a JSON-RPC error and the server goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from opentelemetry import propagate, trace

from .answers import SERVER_NAME, answer_call, instructions, package_version, text_of, tool_listing
from .calls import Caller, ToolCalls
from .tools import IrisTool

__all__ = ["MAX_LINE_BYTES", "Output", "StdioMcpServer"]

logger = logging.getLogger(__name__)

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Protocol versions negotiated by ``initialize`` (those of the SDK this mirrors, mcp 2.3)."""
MODERN_VERSIONS = ("2026-07-28",)
"""Protocol versions carried by each request's ``_meta`` envelope instead of a handshake."""
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

MAX_LINE_BYTES = 4 * 1024 * 1024
"""Longest message read: a tool's largest argument (a 100 KB message) fits many times over, and a runaway
client cannot make the adapter buffer without bound."""
WRITE_TIMEOUT_S = 60.0
"""How long a write may wait for the client to read; past it the client is taken as gone."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNSUPPORTED_PROTOCOL_VERSION = -32022


class RpcError(Exception):
    """A JSON-RPC error answering one request."""

    def __init__(self, code: int, message: str, data: Any = None, *, has_data: bool = False) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if has_data or data is not None:
            self.error["data"] = data


def _invalid_params() -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid request parameters", "")


def _not_found(method: str) -> RpcError:
    return RpcError(METHOD_NOT_FOUND, "Method not found", method)


def _valid_id(value: Any) -> TypeGuard[str | int]:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _meta_of(params: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = params.get("_meta")
    return meta if isinstance(meta, Mapping) else {}


def _has_envelope(params: Any) -> bool:
    """Whether a request claims the modern era (its ``_meta`` names a protocol version), as the SDK tells."""
    return isinstance(params, Mapping) and VERSION_KEY in _meta_of(params)


def _check_envelope(params: Any) -> None:
    """Refuse a modern-era request whose ``_meta`` envelope is missing, incomplete or of another version."""
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    if not isinstance(meta, Mapping):
        raise RpcError(
            INVALID_PARAMS,
            f"params._meta must be an object carrying the required {VERSION_KEY!r} and {CAPABILITIES_KEY!r} "
            "envelope keys",
        )
    missing = [key for key in (VERSION_KEY, CAPABILITIES_KEY) if key not in meta]
    if missing:
        raise RpcError(
            INVALID_PARAMS, f"params._meta is missing the required envelope key(s): {', '.join(missing)}"
        )
    version = meta[VERSION_KEY]
    if not isinstance(version, str):
        raise RpcError(INVALID_PARAMS, "the protocol-version envelope value must be a string")
    if version not in MODERN_VERSIONS:
        data = {"supported": list(MODERN_VERSIONS), "requested": version}
        raise RpcError(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", data)


def _check_initialize(params: Any) -> str:
    """Validate ``initialize``'s params; return the negotiated version (the client's, if we speak it)."""
    if not isinstance(params, Mapping):
        raise _invalid_params()
    version, info = params.get("protocolVersion"), params.get("clientInfo")
    if not (
        isinstance(version, str)
        and isinstance(params.get("capabilities"), Mapping)
        and isinstance(info, Mapping)
        and isinstance(info.get("name"), str)
        and isinstance(info.get("version"), str)
    ):
        raise _invalid_params()
    return version if version in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1]


def _check_list(params: Mapping[str, Any]) -> None:
    if not isinstance(params.get("cursor", ""), str | None):
        raise _invalid_params()


@dataclass(frozen=True)
class _ToolCall:
    """A valid ``tools/call`` request, to be made in its own task."""

    name: str
    arguments: Mapping[str, Any] | None
    progress_token: str | int | None
    """None: the client wants no progress."""
    meta: Mapping[str, Any]
    """The request's ``_meta`` (it may carry a ``traceparent``)."""


def _call_params(params: Mapping[str, Any]) -> _ToolCall:
    """Return a ``tools/call``'s tool name, arguments, progress token and ``_meta``."""
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str) or not (arguments is None or isinstance(arguments, Mapping)):
        raise _invalid_params()
    meta = _meta_of(params)
    token = meta.get("progressToken")
    if isinstance(token, bool) or not isinstance(token, str | int):
        token = None
    return _ToolCall(name, arguments, token, meta)


class Output:
    """Writes one JSON message per line to stdout, without blocking the loop on a slow reader."""

    def __init__(self, writer: asyncio.StreamWriter | None) -> None:
        self._writer = writer
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        """Write ``message`` as one line (the lock keeps concurrent calls' lines whole and in order)."""
        # A lone surrogate (a client may send one, escaped, and see it echoed) is no UTF-8: it is written as
        # the JSON escape it came as, never raised here (which would leave its request unanswered).
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        line = text.encode("utf-8", "backslashreplace") + b"\n"
        async with self._lock:
            if self._writer is None:  # stdout is a regular file: writes do not block
                sys.stdout.buffer.write(line)
                sys.stdout.buffer.flush()
                return
            self._writer.write(line)
            await asyncio.wait_for(self._writer.drain(), WRITE_TIMEOUT_S)


class StdioMcpServer:
    """Serves ``tools`` over one stdin/stdout pair, each call as ``caller`` through ``calls``."""

    def __init__(
        self, tools: tuple[IrisTool, ...], calls: ToolCalls, caller: Caller, *, from_team: str
    ) -> None:
        """Serve ``tools``; ``from_team`` words the instructions (``caller`` holds the call's default)."""
        self._catalog = {tool.name: tool for tool in tools}
        self._listed = [tool_listing(tool) for tool in tools]
        self._calls = calls
        self._caller = caller
        self._instructions = instructions(from_team)
        self._server_info = {"name": SERVER_NAME, "version": package_version()}
        self._era: str | None = None  # "handshake" or "modern", set by the first request
        self._initialized = False
        self._running: dict[str | int, asyncio.Task[None]] = {}

    async def serve(self, reader: asyncio.StreamReader, output: Output) -> None:
        """Answer the messages read from ``reader`` until it ends; then stop the calls still running.

        A call still running when stdin ends is cancelled (its gRPC call with it): the client has gone.
        """
        try:
            parts: list[bytes] = []  # the line being read, so far
            size = 0
            dropping = False  # inside a line already refused as too long
            while chunk := await reader.read(65536):
                *ends, rest = chunk.split(b"\n")
                for end in ends:
                    line, parts, size = b"".join((*parts, end)), [], 0
                    if dropping:
                        dropping = False
                    elif len(line) > MAX_LINE_BYTES:
                        await output.send(self._too_large())
                    elif line.strip():
                        await self._receive(line, output)
                if not dropping:
                    parts.append(rest)
                    size += len(rest)
                if size > MAX_LINE_BYTES:  # refused now, not buffered to its end
                    await output.send(self._too_large())
                    parts, size, dropping = [], 0, True
            last = b"".join(parts)  # a last message without its newline
            if last.strip() and not dropping:
                await self._receive(last, output)
        except (TimeoutError, ConnectionError) as exc:  # from Output.send: the client stopped reading
            logger.warning("MCP client stopped reading stdout (%r); closing", exc)
        finally:
            running = list(self._running.values())
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _too_large(self) -> dict[str, Any]:
        return self._error(
            None, RpcError(INVALID_REQUEST, f"Message too large (over {MAX_LINE_BYTES} bytes)")
        )

    @staticmethod
    def _error(request_id: str | int | None, error: RpcError) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "error": error.error}

    async def _receive(self, line: bytes, output: Output) -> None:
        """Handle one line: a request is answered (a tool call in its own task), a notification applied."""
        try:  # bytes that are not UTF-8 read as U+FFFD, as the SDK reads them: the request is still answered
            message = json.loads(line.decode("utf-8", "replace"))
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
            await output.send(self._error(None, RpcError(PARSE_ERROR, "Parse error")))
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            why = "batches are not supported" if isinstance(message, list) else "not a JSON-RPC 2.0 message"
            await output.send(self._error(None, RpcError(INVALID_REQUEST, f"Invalid Request: {why}")))
            return
        method, params = message.get("method"), message.get("params")
        if method is None and ("result" in message or "error" in message):
            logger.debug("ignored a response: this server sends no requests")
            return
        if not isinstance(method, str):
            known = message.get("id") if _valid_id(message.get("id")) else None
            await output.send(self._error(known, RpcError(INVALID_REQUEST, "Invalid Request: no method")))
            return
        if "id" not in message:
            self._notified(method, params)
            return
        request_id = message["id"]
        if not _valid_id(request_id):
            await output.send(self._error(None, RpcError(INVALID_REQUEST, "Invalid Request: bad id")))
            return
        if request_id in self._running:
            await output.send(self._error(request_id, RpcError(INVALID_REQUEST, "Request id already in use")))
            return
        try:
            answer = self._answer(method, params)
        except RpcError as exc:
            await output.send(self._error(request_id, exc))
            return
        except Exception:  # a bug here must cost one request its answer, never the session
            logger.exception("MCP request %s failed", method)
            await output.send(self._error(request_id, RpcError(INTERNAL_ERROR, "Internal server error")))
            return
        if isinstance(answer, dict):
            await output.send({"jsonrpc": "2.0", "id": request_id, "result": answer})
            return
        task = asyncio.create_task(self._call(request_id, answer, output), name=f"mcp-call-{request_id}")
        self._running[request_id] = task
        task.add_done_callback(lambda _: self._running.pop(request_id, None))

    def _notified(self, method: str, params: Any) -> None:
        if method == "notifications/cancelled":
            request_id = params.get("requestId") if isinstance(params, Mapping) else None
            task = self._running.get(request_id) if _valid_id(request_id) else None  # true is not id 1
            if task is not None:
                task.cancel()
        elif method == "notifications/initialized":
            self._initialized = True
        else:
            logger.debug("ignored notification %s", method)

    def _answer(self, method: str, params: Any) -> dict[str, Any] | _ToolCall:
        """Answer a request at once (its result), or say which tool call to make; raise its error."""
        if self._era is None:
            self._era = "modern" if method != "initialize" and _has_envelope(params) else "handshake"
        if self._era == "modern":
            return self._answer_modern(method, params)
        if method != "initialize" and _has_envelope(params):
            raise RpcError(
                INVALID_REQUEST,
                "this connection serves the handshake protocol era; "
                "requests carrying the 2026-07-28 envelope are not accepted on it",
            )
        if method == "initialize":
            version = _check_initialize(params)
            self._initialized = True
            return {
                "capabilities": {"tools": {"listChanged": False}},
                "instructions": self._instructions,
                "protocolVersion": version,
                "serverInfo": dict(self._server_info),
            }
        if method not in ("ping", "tools/list", "tools/call"):
            raise _not_found(method)
        if params is not None and not isinstance(params, Mapping):
            raise _invalid_params()
        if method != "ping" and not self._initialized:
            raise _invalid_params()
        fields: Mapping[str, Any] = params or {}
        if method == "ping":
            return {}
        if method == "tools/list":
            _check_list(fields)
            return {"tools": self._listed}
        return _call_params(fields)

    def _answer_modern(self, method: str, params: Any) -> dict[str, Any] | _ToolCall:
        if method == "initialize":
            requested = params.get("protocolVersion") if isinstance(params, Mapping) else None
            data: dict[str, Any] = {"supported": list(MODERN_VERSIONS)}
            if isinstance(requested, str):
                data["requested"] = requested
            raise RpcError(
                UNSUPPORTED_PROTOCOL_VERSION,
                "connection is serving the 2026-07-28 protocol; the initialize handshake is not accepted",
                data,
            )
        _check_envelope(params)
        if method == "server/discover":
            return self._modern(
                {
                    "cacheScope": "private",
                    "capabilities": {"tools": {"listChanged": False}},
                    "instructions": self._instructions,
                    "supportedVersions": list(MODERN_VERSIONS),
                    "ttlMs": 0,
                }
            )
        if method == "tools/list":
            _check_list(params)
            return self._modern({"cacheScope": "private", "tools": self._listed, "ttlMs": 0})
        if method == "tools/call":
            return _call_params(params)
        raise _not_found(method)

    def _modern(self, result: dict[str, Any]) -> dict[str, Any]:
        """Return ``result`` as the modern era words it: complete, and stamped with the server's identity."""
        return {**result, "resultType": "complete", "_meta": {SERVER_INFO_KEY: dict(self._server_info)}}

    async def _call(
        self,
        request_id: str | int,
        call: _ToolCall,
        output: Output,
    ) -> None:
        """Make one tool call and answer it (unless it is cancelled, which the client is not told of)."""
        sent = 0

        async def progress(text: str) -> None:
            nonlocal sent
            if call.progress_token is None:
                return
            sent += 1
            note = {"progressToken": call.progress_token, "progress": sent, "message": text}
            await output.send({"jsonrpc": "2.0", "method": "notifications/progress", "params": note})

        answer: dict[str, Any]
        try:
            with _span(call.name, request_id, call.meta):
                data, error = await answer_call(
                    self._catalog, call.name, call.arguments, self._calls, lambda: self._caller, progress
                )
            result = {
                "content": [{"type": "text", "text": text_of(data)}],
                "isError": error,
                "structuredContent": data,
            }
            if self._era == "modern":
                result = self._modern(result)
            answer = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except Exception:  # a bug here must cost the call its result, never its answer (the client waits)
            logger.exception("MCP tool call %s failed", call.name)
            answer = self._error(request_id, RpcError(INTERNAL_ERROR, "Internal server error"))
        try:
            await output.send(answer)
        except Exception as exc:  # noqa: BLE001 - a write that failed: the client is most likely gone
            logger.warning("MCP tool call %s could not be answered: %r", call.name, exc)


@contextlib.contextmanager
def _span(name: str, request_id: str | int, meta: Mapping[str, Any]) -> Iterator[object]:
    """Open the call's server span (``tools/call <tool>``), continuing a ``traceparent`` in ``_meta``.

    As the SDK's server does, so the gRPC call's trace context (``tracing.with_trace_context``) is its child.
    """
    # Only strings can be trace headers (a propagator given another type may raise anything), and none is
    # longer than a baggage header may be (the propagator would log a longer one whole).
    carrier = {key: value for key, value in meta.items() if isinstance(value, str) and len(value) <= 8192}
    try:
        context = propagate.extract(carrier) if carrier else None
    except Exception:  # noqa: BLE001 - a malformed header only costs the call its parent span
        context = None
    if context is not None and not trace.get_current_span(context).get_span_context().is_valid:
        context = None
    attributes = {
        "mcp.method.name": "tools/call",
        "jsonrpc.request.id": str(request_id),
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
    }
    tracer = trace.get_tracer("iris-mcp-stdio")
    with tracer.start_as_current_span(
        f"tools/call {name}", kind=trace.SpanKind.SERVER, attributes=attributes, context=context
    ) as span:
        yield span
