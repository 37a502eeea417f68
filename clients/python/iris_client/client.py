"""``IrisClient``: Iris from plain (blocking) Python — ask a team, stream its answer, fire off a job.

::

    from iris_client import IrisClient

    iris = IrisClient("127.0.0.1:50051", api_key=key)  # or IRIS_API_KEY
    r = iris.teams.backend.ask("What database do we use?")  # r.response, r.message_id, r.metadata
    for chunk in iris.teams.backend.stream("Explain auth"):
        print(chunk.text, end="")
    job = iris.teams["data-pipeline"].execute("Generate the report", callback="https://…")
    record = job.wait(timeout=600)

Every unary call carries a deadline; a failed call raises the :mod:`iris_client.errors` class its reason
names. Nothing is retried but a job's polling (see :mod:`iris_client.job_waiting`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TypeVar

import grpc

from .call_options import (
    DEFAULT_ASK_TIMEOUT_S,
    DEFAULT_CALL_TIMEOUT_S,
    CallOptions,
    JsonValue,
    WebhookHeaders,
)
from .channels import CHANNEL_OPTIONS
from .client_interceptors import KeyAndDeadline
from .errors import error_from
from .generated.iris.v1 import iris_pb2 as pb
from .generated.iris.v1 import iris_pb2_grpc
from .job_waiting import JobWait, ended
from .tell_events import TellEvent

__all__ = ["IrisClient", "Job", "Team", "Teams"]

Reply = TypeVar("Reply")


class IrisClient:
    """A connection to one Iris, over gRPC; close it (or use ``with``) when done.

    Args:
        address: ``host:port`` of Iris's gRPC server.
        api_key: the key to call with; None reads IRIS_API_KEY.
        from_team: the calling team every request names; None: the key's own name.
        tls: connect over TLS (trusting the system's roots, or ``root_certificates``).
        root_certificates: PEM of the CA (or self-signed certificate) to trust; implies ``tls``.
        call_timeout: deadline in seconds of every unary call but Ask (whose deadline follows its timeout).

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
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._closed = False
        channel = grpc.intercept_channel(self._channel, KeyAndDeadline(self.options))
        self.stub = iris_pb2_grpc.IrisStub(channel)
        """The generated stub, for the RPCs this class has no method for: its calls carry the client's key,
        and its unary calls the client's deadline unless given another; they fail with grpc's errors."""
        self.teams = Teams(self)
        """The teams: ``iris.teams.backend`` or ``iris.teams["data-pipeline"]``."""

    def __enter__(self) -> IrisClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; streams still open end with CancelledError, later calls fail."""
        self._closed = True
        self._channel.close()

    def call(self, method: Callable[..., Reply], request: object, *, timeout: float | None = None) -> Reply:
        """Make one unary call with the client's key and a deadline; raise the error its reason names.

        Raises:
            RuntimeError: the client is closed.

        """
        self._check_open()
        try:
            return method(request, timeout=timeout or self.options.call_timeout_s)
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            raise error_from(exc) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("This IrisClient is closed")

    def list_teams(self) -> list[pb.TeamInfo]:
        """Return the configured teams, with their state."""
        return list(self.call(self.stub.ListTeams, pb.ListTeamsRequest()).teams)

    def get_message(self, message_id: str, *, timeout: float | None = None) -> pb.MessageRecord:
        """Return a message (or job, by ``job_...`` id): status, progress, response and what it did."""
        request = pb.GetMessageRequest(message_id=message_id)
        return self.call(self.stub.GetMessage, request, timeout=timeout).message

    def cancel_message(self, message_id: str) -> pb.MessageRecord:
        """Cancel a message or job: a queued one never starts, a running one is interrupted."""
        return self.call(self.stub.CancelMessage, pb.CancelMessageRequest(message_id=message_id)).message

    def watch_events(self, request: pb.WatchEventsRequest | None = None) -> Iterator[pb.WatchEventsResponse]:
        """Iris's events as they happen (processes, turns, jobs, webhooks, health), until the loop stops."""
        self._check_open()
        return _stream(lambda: self.stub.WatchEvents(request or pb.WatchEventsRequest()), lambda event: event)


class Teams:
    """The teams of one Iris, by name: ``teams.backend``, or ``teams["data-pipeline"]`` for any name."""

    def __init__(self, client: IrisClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Team:
        if name.startswith("_"):  # dunder lookups (copy, pickle) must not become teams
            raise AttributeError(name)
        return Team(self._client, name)

    def __getitem__(self, name: str) -> Team:
        return Team(self._client, name)


class Team:
    """One team of an Iris, as seen by the client's calling team."""

    def __init__(self, client: IrisClient, name: str) -> None:
        self.client = client
        self.name = name
        """The team's name."""

    def __repr__(self) -> str:
        return f"Team({self.name!r})"

    def ask(
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
        return self.client.call(self.client.stub.Ask, request, timeout=deadline)

    def stream(
        self,
        message: str,
        *,
        timeout: float | None = None,
        from_team: str | None = None,
        persist: bool = False,
    ) -> Iterator[TellEvent]:
        """Stream the answer as it is produced: start, chunks (``.text``) and tool uses, then complete.

        Leaving the loop early cancels the stream (not the turn, which goes on: cancel it by message id).
        ``timeout`` seconds ends the stream with a ``complete`` of status "timeout" while the turn goes on.
        """
        request = self.client.options.tell(
            self.name, message, timeout_s=timeout, from_team=from_team, persist=persist
        )
        self.client._check_open()
        return _stream(lambda: self.client.stub.Tell(request), TellEvent.of)

    def execute(
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
    ) -> Job:
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
        return Job(self.client, self.client.call(self.client.stub.Execute, request))


class Job:
    """A job Iris accepted: ``response`` is Execute's answer; wait for it, look it up, or cancel it."""

    def __init__(self, client: IrisClient, response: pb.ExecuteResponse) -> None:
        self.client = client
        self.response = response
        """What Execute answered: ids, status, place in the queue, expected completion."""

    def __repr__(self) -> str:
        return f"Job({self.job_id!r}, team={self.response.team!r})"

    @property
    def job_id(self) -> str:
        """The job's id (``job_...``)."""
        return self.response.job_id

    @property
    def message_id(self) -> str:
        """The id of the message the job sends (``msg_...``)."""
        return self.response.message_id

    def get(self) -> pb.MessageRecord:
        """Where the job stands now."""
        return self.client.get_message(self.job_id)

    def cancel(self) -> pb.MessageRecord:
        """Cancel the job: queued, it never starts; running, it is interrupted."""
        return self.client.cancel_message(self.job_id)

    def wait(self, timeout: float | None = None) -> pb.MessageRecord:
        """Wait until the job has ended and return its record (status completed, failed or cancelled).

        Polls GetMessage, backing off to every 2 s, and keeps polling while Iris is unreachable (a job
        survives a restart).

        Raises:
            TimeoutError: it had not ended within ``timeout`` seconds (None: no limit); the job goes on.

        """
        waiting = JobWait(self.message_id, timeout, self.client.options.call_timeout_s)
        while True:
            try:
                record = self.client.get_message(self.job_id, timeout=waiting.poll_timeout())
                if ended(record):
                    return record
            except JobWait.FAILED_POLL:
                pass
            time.sleep(waiting.pause())


Event = TypeVar("Event")
View = TypeVar("View")


def _stream(open_call: Callable[[], Iterator[Event]], view: Callable[[Event], View | None]) -> Iterator[View]:
    """Yield a server stream's events, opening it at the first ``next``.

    A failure raises its error; leaving early cancels the call.
    """
    call = open_call()
    try:
        for event in call:
            if (viewed := view(event)) is not None:  # None: an event kind newer than this client
                yield viewed
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        raise error_from(exc) from exc
    finally:
        assert isinstance(call, grpc.Call)
        call.cancel()
