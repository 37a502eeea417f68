"""``AsyncIrisClient``: :class:`iris_client.IrisClient` for asyncio code, method for method.

::

    async with AsyncIrisClient("127.0.0.1:50051", api_key=key) as iris:
        r = await iris.teams.backend.ask("What database do we use?")
        async for chunk in iris.teams.backend.stream("Explain auth"):
            print(chunk.text, end="")
        job = await iris.teams["data-pipeline"].execute("Generate the report", callback="https://…")
        record = await job.wait(timeout=600)

Cancelling the task that awaits a call cancels the call (and leaving an ``async for`` early ends the stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc

from .call_options import (
    DEFAULT_ASK_TIMEOUT_S,
    DEFAULT_CALL_TIMEOUT_S,
    CallOptions,
    JsonValue,
    WebhookHeaders,
)
from .channels import CHANNEL_OPTIONS
from .client_interceptors import AsyncKeyAndDeadline, AsyncKeyOnStreams
from .errors import error_from
from .generated.iris.v1 import iris_pb2 as pb
from .generated.iris.v1 import iris_pb2_grpc
from .job_waiting import JobWait, ended
from .tell_events import TellEvent

__all__ = ["AsyncIrisClient", "AsyncJob", "AsyncTeam", "AsyncTeams"]

Reply = TypeVar("Reply")
Event = TypeVar("Event")
View = TypeVar("View")


class AsyncIrisClient:
    """A connection to one Iris for asyncio code; ``async with`` it, or ``await close()`` when done.

    The arguments are :class:`iris_client.IrisClient`'s. The channel opens at the first call, inside the
    running event loop (grpc's asyncio channels belong to the loop that made them).
    """

    def __init__(
        self,
        address: str,
        api_key: str | None = None,
        *,
        from_team: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> None:
        self.options = CallOptions.of(api_key, from_team, call_timeout)
        self._address = address
        self._credentials = (
            grpc.ssl_channel_credentials(root_certificates=root_certificates)
            if tls or root_certificates is not None
            else None
        )
        self._channel: grpc.aio.Channel | None = None
        self._stub: iris_pb2_grpc.IrisAsyncStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.teams = AsyncTeams(self)
        """The teams: ``iris.teams.backend`` or ``iris.teams["data-pipeline"]``."""

    async def __aenter__(self) -> AsyncIrisClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def stub(self) -> iris_pb2_grpc.IrisAsyncStub:
        """Return the generated stub, for the RPCs this class has no method for.

        Its calls carry the client's key, and its unary calls the client's deadline unless given another; they
        fail with grpc's errors. A channel belongs to its event loop, so a client used from a new loop (a new
        ``asyncio.run``) opens a new one.

        Raises:
            RuntimeError: the client is closed, or there is no running event loop.

        """
        if self._closed:
            raise RuntimeError("This AsyncIrisClient is closed")
        loop = asyncio.get_running_loop()
        if self._stub is None or self._loop is not loop:
            interceptors = [AsyncKeyAndDeadline(self.options), AsyncKeyOnStreams(self.options)]
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(
                    self._address, options=CHANNEL_OPTIONS, interceptors=interceptors
                )
            else:
                self._channel = grpc.aio.secure_channel(
                    self._address, self._credentials, options=CHANNEL_OPTIONS, interceptors=interceptors
                )
            self._stub, self._loop = iris_pb2_grpc.IrisStub(self._channel), loop
        return self._stub

    async def close(self) -> None:
        """Close the connection; streams still open end with CancelledError, later calls fail."""
        self._closed = True
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None and self._loop is asyncio.get_running_loop():
            await channel.close()

    async def call(self, method: Callable[..., Any], request: object, *, timeout: float | None = None) -> Any:
        """Make one unary call with the client's key and a deadline; raise the error its reason names."""
        try:
            return await method(request, timeout=timeout or self.options.call_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc) from exc

    async def list_teams(self) -> list[pb.TeamInfo]:
        """Return the configured teams, with their state."""
        reply: pb.ListTeamsResponse = await self.call(self.stub.ListTeams, pb.ListTeamsRequest())
        return list(reply.teams)

    async def get_message(self, message_id: str, *, timeout: float | None = None) -> pb.MessageRecord:
        """Return a message (or job, by ``job_...`` id): status, progress, response and what it did."""
        request = pb.GetMessageRequest(message_id=message_id)
        reply: pb.GetMessageResponse = await self.call(self.stub.GetMessage, request, timeout=timeout)
        return reply.message

    async def cancel_message(self, message_id: str) -> pb.MessageRecord:
        """Cancel a message or job: a queued one never starts, a running one is interrupted."""
        request = pb.CancelMessageRequest(message_id=message_id)
        reply: pb.CancelMessageResponse = await self.call(self.stub.CancelMessage, request)
        return reply.message

    def watch_events(
        self, request: pb.WatchEventsRequest | None = None
    ) -> AsyncIterator[pb.WatchEventsResponse]:
        """Iris's events as they happen (processes, turns, jobs, webhooks, health), until the loop stops."""
        return _stream(lambda: self.stub.WatchEvents(request or pb.WatchEventsRequest()), lambda event: event)


class AsyncTeams:
    """The teams of one Iris, by name: ``teams.backend``, or ``teams["data-pipeline"]`` for any name."""

    def __init__(self, client: AsyncIrisClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> AsyncTeam:
        if name.startswith("_"):  # dunder lookups (copy, pickle) must not become teams
            raise AttributeError(name)
        return AsyncTeam(self._client, name)

    def __getitem__(self, name: str) -> AsyncTeam:
        return AsyncTeam(self._client, name)


class AsyncTeam:
    """One team of an Iris, as seen by the client's calling team (:class:`iris_client.Team`, awaited)."""

    def __init__(self, client: AsyncIrisClient, name: str) -> None:
        self.client = client
        self.name = name
        """The team's name."""

    def __repr__(self) -> str:
        return f"AsyncTeam({self.name!r})"

    async def ask(
        self,
        question: str,
        *,
        timeout: float = DEFAULT_ASK_TIMEOUT_S,
        from_team: str | None = None,
        source: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> pb.AskResponse:
        """Ask a question and wait for the whole answer (``response``, ``message_id``, ``metadata``).

        Raises:
            TimeoutError: no answer within ``timeout`` seconds; the turn goes on (its ``message_id`` is set).

        """
        options = self.client.options
        request, deadline = options.ask(
            self.name, question, timeout_s=timeout, from_team=from_team, source=source, metadata=metadata
        )
        reply: pb.AskResponse = await self.client.call(self.client.stub.Ask, request, timeout=deadline)
        return reply

    def stream(
        self,
        message: str,
        *,
        timeout: float | None = None,
        from_team: str | None = None,
        persist: bool = False,
    ) -> AsyncIterator[TellEvent]:
        """Stream the answer as it is produced: start, chunks (``.text``) and tool uses, then complete.

        Leaving the loop early cancels the stream (not the turn, which goes on: cancel it by message id).
        """
        request = self.client.options.tell(
            self.name, message, timeout_s=timeout, from_team=from_team, persist=persist
        )
        return _stream(lambda: self.client.stub.Tell(request), TellEvent.of)

    async def execute(
        self,
        task: str,
        *,
        callback: str | None = None,
        callback_headers: WebhookHeaders | None = None,
        priority: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        ttl_days: int | None = None,
        from_team: str | None = None,
    ) -> AsyncJob:
        """Fire off a task as a durable job; its result is POSTed, signed, to ``callback`` when it ends.

        Not retried: pass an ``idempotency_key`` and calling again with it is safe (it returns the same job).
        """
        request = self.client.options.execute(
            self.name,
            task,
            callback=callback,
            callback_headers=callback_headers,
            priority=priority,
            idempotency_key=idempotency_key,
            timeout_s=timeout,
            ttl_days=ttl_days,
            from_team=from_team,
        )
        reply: pb.ExecuteResponse = await self.client.call(self.client.stub.Execute, request)
        return AsyncJob(self.client, reply)


class AsyncJob:
    """A job Iris accepted (:class:`iris_client.Job`, awaited)."""

    def __init__(self, client: AsyncIrisClient, response: pb.ExecuteResponse) -> None:
        self.client = client
        self.response = response
        """What Execute answered: ids, status, place in the queue, expected completion."""

    def __repr__(self) -> str:
        return f"AsyncJob({self.job_id!r}, team={self.response.team!r})"

    @property
    def job_id(self) -> str:
        """The job's id (``job_...``)."""
        return self.response.job_id

    @property
    def message_id(self) -> str:
        """The id of the message the job sends (``msg_...``)."""
        return self.response.message_id

    async def get(self) -> pb.MessageRecord:
        """Where the job stands now."""
        return await self.client.get_message(self.job_id)

    async def cancel(self) -> pb.MessageRecord:
        """Cancel the job: queued, it never starts; running, it is interrupted."""
        return await self.client.cancel_message(self.job_id)

    async def wait(self, timeout: float | None = None) -> pb.MessageRecord:
        """Wait until the job has ended and return its record (status completed, failed or cancelled).

        Raises:
            TimeoutError: it had not ended within ``timeout`` seconds (None: no limit); the job goes on.

        """
        waiting = JobWait(self.message_id, timeout, self.client.options.call_timeout_s)
        while True:
            try:
                record = await self.client.get_message(self.job_id, timeout=waiting.poll_timeout())
                if ended(record):
                    return record
            except JobWait.FAILED_POLL:
                pass
            await asyncio.sleep(waiting.pause())


async def _stream(
    open_call: Callable[[], grpc.aio.UnaryStreamCall[Any, Event]], view: Callable[[Event], View | None]
) -> AsyncIterator[View]:
    """Yield a server stream's events, opening it at the first ``anext``.

    A failure raises its error; leaving early (or cancelling the task) cancels the call.
    """
    call = open_call()
    try:
        async for event in call:
            if (viewed := view(event)) is not None:  # None: an event kind newer than this client
                yield viewed
    except grpc.aio.AioRpcError as exc:
        raise error_from(exc) from exc
    finally:
        call.cancel()
