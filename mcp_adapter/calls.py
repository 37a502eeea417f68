"""One tool call -> one gRPC call to Iris: unary, or the streaming twin while reporting progress.

A tool whose RPC names a ``streamed_by`` twin (send_message and ask_message stream through ``Tell``) is
called through the twin, so the caller hears about the answer while it is produced: every text chunk,
tool use and permission request becomes an MCP progress notification, and a heartbeat fills any silence,
so clients whose requests time out after a minute survive long answers. The stream's first and last events
are folded, with the request, into the reply message the unary RPC would have given, so the result has the
same shape either way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from iris_client.call_errors import CallFailure
from iris_client.contract import grpc_path
from iris_client.json_mapping import message_to_json

from .tools import IrisTool
from .tracing import with_trace_context

__all__ = ["CallRefused", "Caller", "ChannelSource", "Progress", "ToolCalls"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]
"""Reports one progress message to the MCP client (a no-op when it asked for none)."""

ChannelSource = Callable[[], grpc.aio.Channel]
"""Returns the live channel to Iris (made in the running loop)."""

DEFAULT_HEARTBEAT_S = 5.0
"""Longest silence between progress notifications while a streamed tool runs."""


class CallRefused(Exception):
    """A call refused before it reaches Iris (a credential gRPC cannot carry), with the body to show."""

    def __init__(self, failure: CallFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Caller:
    """Whom a tool call is made for: the credentials sent to Iris and the default calling team."""

    metadata: tuple[tuple[str, str], ...] = ()
    """gRPC metadata carrying the API key (``authorization: Bearer ...`` or ``x-api-key``)."""
    from_team: str = ""
    """Used as ``fromTeam`` when a call leaves it out; empty lets Iris use the key's name."""

    @classmethod
    def with_key(cls, api_key: str, from_team: str = "") -> Caller:
        """Return a caller that presents ``api_key`` (none if empty)."""
        return cls((("authorization", f"Bearer {api_key}"),) if api_key else (), from_team)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _describe(kind: str, payload: dict[str, Any]) -> str:
    """Say what one event of a streamed answer means, for a person watching the progress."""
    if kind == "chunk":
        return str(payload.get("text", ""))
    if kind == "start":
        return f"{payload.get('team', 'the team')} accepted the message"
    if kind == "tool_use":
        return f"using {payload.get('tool', 'a tool')}"
    if kind == "permission_request":
        return (
            f"waiting for permission to use {payload.get('tool', 'a tool')} "
            f"(requestId {payload.get('requestId', '')})"
        )
    if kind == "complete":
        return f"done: {payload.get('status', '')}"
    return kind


class _Reporter:
    """Sends progress, and a heartbeat whenever ``every_s`` passes without any."""

    def __init__(self, progress: Progress, every_s: float) -> None:
        self._progress = progress
        self._every_s = every_s
        self._started = time.monotonic()
        self._last = self._started

    async def report(self, text: str) -> None:
        self._last = time.monotonic()
        await self._progress(text)

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._last + self._every_s - time.monotonic()))
            if time.monotonic() - self._last >= self._every_s:
                await self.report(f"still working ({time.monotonic() - self._started:.0f}s)")


class ToolCalls:
    """Makes the gRPC call behind each tool call, on the channel of ``channel``."""

    def __init__(
        self,
        channel: ChannelSource,
        *,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        deadline_s: float | None = None,
    ) -> None:
        """Call Iris over ``channel()``; ``deadline_s`` bounds each call (None: the server's own limits).

        Raises:
            ValueError: ``heartbeat_s`` is not positive (it would flood the client with notifications).

        """
        if not heartbeat_s > 0:
            raise ValueError(f"heartbeat_s must be positive, not {heartbeat_s}")
        self._channel = channel
        self._heartbeat_s = heartbeat_s
        self._deadline_s = deadline_s

    async def call(
        self, tool: IrisTool, request: Message, caller: Caller, progress: Progress
    ) -> dict[str, Any]:
        """Make the call; return the reply as JSON.

        Raises:
            grpc.aio.AioRpcError: the call failed (the caller turns it into the standard error body).

        """
        if tool.streamed_by is not None:
            return await self._streamed(tool, request, caller, progress)
        unary = self._channel().unary_unary(
            grpc_path(tool.method),
            request_serializer=_serialize,
            response_deserializer=tool.reply_class.FromString,
        )
        reply = await unary(request, metadata=with_trace_context(caller.metadata), timeout=self._deadline_s)
        return message_to_json(reply)

    async def _streamed(
        self, tool: IrisTool, request: Message, caller: Caller, progress: Progress
    ) -> dict[str, Any]:
        method = tool.streamed_by
        assert method is not None
        stream_request = _request_classes(method)[0]()
        _copy_fields(request, stream_request, strict=True)
        stream = self._channel().unary_stream(
            grpc_path(method),
            request_serializer=_serialize,
            response_deserializer=_request_classes(method)[1].FromString,
        )
        call = stream(stream_request, metadata=with_trace_context(caller.metadata), timeout=self._deadline_s)
        reporter = _Reporter(progress, self._heartbeat_s)
        # The reply is the request's fields, then the first event's, then the last's (as their JSON was
        # folded before): copied field by field, with no trip through JSON.
        reply = tool.reply_class()
        _copy_fields(request, reply)
        # Not a TaskGroup: the stream's own failure must reach the caller as itself, not in a group.
        beat = asyncio.create_task(reporter.heartbeat(), name=f"mcp-heartbeat-{tool.name}")
        try:
            first = True
            async for event in call:
                kind = event.WhichOneof(event.DESCRIPTOR.oneofs[0].name) or ""
                if kind and (first or kind == "complete"):  # the first and last events make the reply
                    _copy_fields(getattr(event, kind), reply, every=True)
                first = False
                await reporter.report(_describe_event(event, kind))
        finally:
            call.cancel()  # a no-op once the stream has ended; stops it if this call was cancelled
            beat.cancel()
            # asyncio.wait neither raises the heartbeat's own error here nor swallows a cancel of this call.
            await asyncio.wait({beat})
            if not beat.cancelled() and beat.exception() is not None:
                logger.warning("progress heartbeat of %s failed", tool.name, exc_info=beat.exception())
        return message_to_json(reply)


@functools.cache
def _request_classes(method: MethodDescriptor) -> tuple[type[Message], type[Message]]:
    """Return a method's request and reply classes (looked up once per method, not per call)."""
    return (
        message_factory.GetMessageClass(method.input_type),
        message_factory.GetMessageClass(method.output_type),
    )


def _copy_fields(source: Message, target: Message, *, every: bool = False, strict: bool = False) -> None:
    """Copy ``source``'s fields into the fields of ``target`` with the same names.

    Only the fields set in ``source`` (a request: its defaults say nothing), or ``every`` field (an event:
    its defaults are values too). A field ``target`` lacks is skipped, or with ``strict`` refused.

    Raises:
        ValueError: ``strict`` and ``source`` sets a field that ``target`` has not.

    """
    fields = target.DESCRIPTOR.fields_by_name
    pairs = (
        [(field, getattr(source, field.name)) for field in source.DESCRIPTOR.fields]
        if every
        else source.ListFields()
    )
    for field, value in pairs:
        into = fields.get(field.name)
        if into is None:
            if strict:
                raise ValueError(f"{target.DESCRIPTOR.full_name} has no field {field.name}")
            continue
        if into.is_repeated:
            target.ClearField(into.name)
            getattr(target, into.name).extend(value)
        elif into.message_type is not None:
            getattr(target, into.name).CopyFrom(value)
        else:
            setattr(target, into.name, value)


def _describe_event(event: Message, kind: str) -> str:
    """Say what one event means (a chunk is its text: no JSON made for the many small events)."""
    if kind == "chunk":
        return str(getattr(event, kind).text)
    return _describe(kind, message_to_json(getattr(event, kind)) if kind else {})
