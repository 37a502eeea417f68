"""Messages to a team: SendMessage, AskMessage, QuickMessage and the streamed Tell.

Every message is validated, admitted by the pool (once), recorded as a queued turn and queued on its pair
before any reply; the reply is then built from the turn, as the contract's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .budgets import Budget, budgets_of, check_budgets
from .clock import now_ms
from .config import IrisConfig, TeamConfig
from .errors import IrisError, OperationTimeoutError, PreconditionFailedError, ValidationError
from .jobs import JobQueue
from .pool import ProcessPool
from .rewind import prompt_uuid
from .session_locks import SessionLocks
from .store import Store
from .targets import configured_team, pair_of
from .tracing import TurnTrace
from .turns import PRIORITIES, V1_STATUS, JobSpec, Pair, Turn, TurnStatus
from .usage import CostLedger
from .validation import validate_message, validate_timeout, validate_ttl_days
from .webhooks import check_destination, check_headers

__all__ = ["DEFAULT_TIMEOUT_MS", "DEFAULT_TTL_DAYS", "Messages"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 30_000
"""How long SendMessage waits when the request says nothing (0 waits until the end, -1 not at all)."""
DEFAULT_TTL_DAYS = 30
IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000
"""How long an idempotency key returns the job it first made."""
MAX_IDEMPOTENCY_KEY = 255
"""How long a persisted message may wait to run when the request says nothing."""

Reply = TypeVar("Reply", pb.SendMessageResponse, pb.AskMessageResponse)
Sent = pb.SendMessageRequest | pb.AskMessageRequest | pb.QuickMessageRequest | pb.TellRequest


@dataclass(frozen=True, slots=True)
class Asked:
    """What one accepted message asks, whichever RPC carried it."""

    to_team: str
    message: str
    persist: bool = False
    ttl_days: int | None = None
    context: pb.AskContext | None = None
    job: JobSpec | None = None
    """Set for Execute; a message with ``persist`` runs as a job too (without a job id)."""
    fields: tuple[str, str] = ("toTeam", "message")
    """The request's names for the target and the text, for errors (Ask's are "team" and "question")."""


class Messages:
    """Accepts messages to teams and answers with how their turns went."""

    def __init__(
        self,
        config: IrisConfig,
        store: Store,
        pool: ProcessPool,
        jobs: JobQueue,
        locks: SessionLocks,
        ledger: CostLedger,
        on_budget_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._on_budget_refused = on_budget_refused
        self._store = store
        self._pool = pool
        self._jobs = jobs
        self._locks = locks
        self._idempotency: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        """One lock per (API key, idempotency key), alive while a request holds or awaits it."""

    async def send_message(self, request: pb.SendMessageRequest, caller: Caller) -> pb.SendMessageResponse:
        """Send a message and wait per its ``timeout`` (see the contract).

        Raises:
            ValidationError, TeamNotFoundError, TooManyRequestsError, ProcessPoolLimitError: raised before
                anything is recorded.
            ProcessError, OperationTimeoutError: a waiting caller's turn failed inside Iris.

        """
        return await self._send(request, caller, pb.SendMessageResponse)

    async def ask_message(self, request: pb.AskMessageRequest, caller: Caller) -> pb.AskMessageResponse:
        """Ask a team a question: SendMessage named for intent."""
        return await self._send(request, caller, pb.AskMessageResponse)

    async def _send(
        self, request: pb.SendMessageRequest | pb.AskMessageRequest, caller: Caller, reply: type[Reply]
    ) -> Reply:
        from_team = caller.team(request.from_team)
        timeout = request.timeout if request.HasField("timeout") else DEFAULT_TIMEOUT_MS
        validate_timeout(timeout)
        turn = await self._accept(from_team, request, caller)
        if timeout == -1:
            return _outcome(turn, "async", reply)
        finished = await turn.wait(None if timeout == 0 else timeout / 1000)
        if not finished:
            return _outcome(turn, "timeout", reply)
        if turn.failure is not None:
            raise turn.failure
        return _outcome(turn, turn.status.value, reply)

    async def quick_message(self, request: pb.QuickMessageRequest, caller: Caller) -> pb.QuickMessageResponse:
        """Queue a message and reply at once with status "async" (it survives a restart with ``persist``)."""
        turn = await self._accept(caller.team(request.from_team), request, caller)
        return pb.QuickMessageResponse(
            from_team=turn.pair.from_team,
            to_team=turn.pair.to_team,
            message=turn.request,
            status="async",
            message_id=turn.message_id,
            session_id=turn.session_id,
            timestamp=now_ms(),
        )

    async def tell(self, request: pb.TellRequest, caller: Caller) -> AsyncIterator[pb.TellResponse]:
        """Accept a message and return its events as they happen: start, chunks, tool uses, complete.

        The turn is accepted before this returns, so an invalid request fails here, not mid-stream. A reader
        that stops early does not stop the turn (use SessionCancel for that); the turn still lands in the
        record. ``timeout`` bounds the stream as it bounds SendMessage's wait: when it runs out first, the
        stream ends with a ``complete`` of status "timeout" (-1: "async") while the turn goes on.
        """
        from_team = caller.team(request.from_team)
        timeout = request.timeout if request.HasField("timeout") else 0
        validate_timeout(timeout)
        turn = await self._accept(from_team, request, caller)
        return _follow_until(turn, timeout)

    async def ask(self, request: pb.AskRequest, caller: Caller) -> pb.AskResponse:
        """Ask a team a question and wait for the whole answer (the v1 API).

        Raises:
            OperationTimeoutError: the answer did not come within ``timeout``; its details carry the
                ``messageId``, and the turn goes on.
            ValidationError, TeamNotFoundError, TooManyRequestsError, ProcessPoolLimitError: raised before
                anything is recorded.
            ProcessError: the turn failed inside Iris.

        """
        from_team = caller.team(request.from_team)
        timeout = request.timeout if request.HasField("timeout") else DEFAULT_TIMEOUT_MS
        validate_timeout(timeout, allow_async=False)
        context = request.context if request.HasField("context") else None
        asked = Asked(request.team, request.question, context=context, fields=("team", "question"))
        turn = await self._accept_text(from_team, asked, caller)
        if not await turn.wait(None if timeout == 0 else timeout / 1000):
            raise OperationTimeoutError(
                f"{request.team} did not answer within {timeout} ms; the turn goes on, and its result can "
                f"be fetched later by its messageId {turn.message_id}",
                details={"messageId": turn.message_id},
            )
        if turn.failure is not None:
            raise turn.failure
        return pb.AskResponse(
            message_id=turn.message_id,
            team=turn.pair.to_team,
            question=turn.request,
            response=turn.response,
            duration=turn.duration_ms,
            timestamp=now_ms(),
            status=turn.status.value,
            metadata=turn.metadata(),
            error=turn.error,
            from_team=turn.pair.from_team,
            session_id=turn.session_id,
        )

    async def execute(self, request: pb.ExecuteRequest, caller: Caller) -> pb.ExecuteResponse:
        """Accept a task as a durable job and reply at once with where it stands.

        The same ``idempotency_key`` from the same API key within 24 hours returns that job, starting nothing.

        Raises:
            ValidationError: an unknown priority, a bad timeout, callback or idempotency key; a bad task.
            TooManyRequestsError: the job queue is full.

        """
        from_team = caller.team(request.from_team)
        priority = request.priority or "normal"
        if priority not in PRIORITIES:
            raise ValidationError(
                f"priority must be one of {', '.join(PRIORITIES)}", details={"field": "priority"}
            )
        timeout_ms = request.timeout if request.HasField("timeout") else 0
        if request.HasField("timeout"):
            validate_timeout(timeout_ms, allow_async=False)
        callback = request.callback if request.HasField("callback") else None
        if callback is not None:
            if callback.method and callback.method.upper() not in ("POST", "PUT"):
                raise ValidationError(
                    "callback.method must be POST or PUT", details={"field": "callback.method"}
                )
            check_headers(callback.headers)
            await check_destination(callback.url, self._config.api.webhooks.allow_private_networks)
        if len(request.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ValidationError(
                f"idempotencyKey is at most {MAX_IDEMPOTENCY_KEY} characters",
                details={"field": "idempotencyKey"},
            )
        owner = caller.key.name if caller.key is not None else ""
        job = JobSpec(
            job_id=f"job_{uuid.uuid4().hex}",
            priority=PRIORITIES.index(priority),
            callback=callback,
            timeout_ms=timeout_ms,
            owner=owner,
            idempotency_key=request.idempotency_key,
        )
        ttl_days = request.ttl_days if request.HasField("ttl_days") else None
        asked = Asked(
            request.team, request.task, persist=True, ttl_days=ttl_days, job=job, fields=("team", "task")
        )
        lock: asyncio.Lock | None = None
        if request.idempotency_key:
            lock = self._idempotency.setdefault((owner, request.idempotency_key), asyncio.Lock())
        async with lock if lock is not None else contextlib.nullcontext():
            if request.idempotency_key:
                since = now_ms() - IDEMPOTENCY_WINDOW_MS
                earlier = await self._store.find_idempotent(owner, request.idempotency_key, since)
                if earlier is not None and earlier.job is not None:
                    live = self._jobs.live_turn(earlier.message_id)
                    current = live.status.value if live is not None else earlier.status
                    return self._job_reply(earlier.message_id, earlier.job.job_id, earlier.to_team, current)
            turn = await self._accept_text(from_team, asked, caller)
        # A new job is "queued" (accepted into the queue), even if a free slot has already handed it out.
        return self._job_reply(turn.message_id, job.job_id, turn.pair.to_team, TurnStatus.QUEUED.value)

    def _job_reply(self, message_id: str, job_id: str, team: str, current: str) -> pb.ExecuteResponse:
        return pb.ExecuteResponse(
            job_id=job_id,
            message_id=message_id,
            team=team,
            status=V1_STATUS.get(current, current),
            position=self._jobs.position(message_id),
            estimated_completion=self._jobs.estimated_completion(message_id),
        )

    async def _accept(self, from_team: str, request: Sent, caller: Caller) -> Turn:
        ttl_days = request.ttl_days if request.HasField("ttl_days") else None
        asked = Asked(request.to_team, request.message, persist=request.persist, ttl_days=ttl_days)
        return await self._accept_text(from_team, asked, caller)

    async def _accept_text(self, from_team: str, asked: Asked, caller: Caller) -> Turn:
        """Validate, check budgets, admit, record and queue one message."""
        validate_ttl_days(asked.ttl_days)
        pair = pair_of(from_team, asked.to_team, team_field=asked.fields[0])
        validate_message(asked.message, field=asked.fields[1])
        team = configured_team(self._config, pair.to_team)
        budgets = budgets_of(team, caller.key)
        await check_budgets(self._ledger.spent, budgets, self._on_budget_refused)
        self._pool.admit(pair)  # a message that will be refused must not create a session
        cycle = self._pool.wait_cycle(pair)
        if cycle is not None:
            raise PreconditionFailedError(
                f"{pair} is busy with a turn that is itself waiting on {pair.from_team} "
                f"({' -> '.join(cycle)}), so this message would wait on itself; answer without it",
                details={"cycle": " -> ".join(cycle)},
            )
        accepted: list[Turn] = []
        # One owned step with the lock inside: a caller that goes away mid-accept cannot let a reboot slip
        # between the session read and the record write, nor leave the turn half-accepted.
        key_name = caller.key.name if caller.key is not None else ""
        work = self._accept_locked(pair, team, asked, key_name, tuple(budgets), accepted)
        await self._pool.owned(work, f"accept-{pair}")
        return accepted[0]

    async def _accept_locked(
        self,
        pair: Pair,
        team: TeamConfig,
        asked: Asked,
        key_name: str,
        budgets: tuple[Budget, ...],
        out: list[Turn],
    ) -> None:
        async with self._locks.of(pair):
            session_id = await self._store.session_id_for(pair.from_team, pair.to_team)
            created = now_ms()
            expires_in = (asked.ttl_days or DEFAULT_TTL_DAYS) * 86_400_000
            turn = Turn(
                message_id=f"msg_{uuid.uuid4().hex}",
                pair=pair,
                session_id=session_id,
                request=asked.message,
                created_at=created,
                persist=asked.persist,
                expires_at=created + expires_in if asked.persist else 0,
                context=asked.context,
                # A persisted message is a job without an id; its owner keeps its key across a restart.
                job=asked.job or (JobSpec(owner=key_name) if asked.persist else None),
                key_name=key_name,
                budgets=budgets,
                # An Execute job runs later: its spans start a trace of their own, linked to this call's.
                trace=TurnTrace.accepted(later=asked.job is not None),
            )
            if turn.job is None:
                await self._pool.submit(turn, team)
            else:  # recorded first, so the job survives any stop; the job queue hands it to its pair
                await self._pool.record(turn)
                await self._jobs.enqueue(turn, team)
            out.append(turn)

    async def recover(self) -> None:
        """Re-queue persisted turns left unfinished by the previous run; close the others as errors."""
        for row in await self._store.unfinished_turns():
            team = self._config.teams.get(row.to_team)
            session = await self._store.get_session(row.from_team, row.to_team)
            why = "the server stopped before the turn finished"
            if row.persist and row.expires_at <= now_ms():
                why = "expired: it waited past its ttlDays"
            if session is None or session.session_id != row.session_id:
                # Rebooted or deleted before the turn's end was written: its conversation is gone.
                why = "the turn's session was rebooted or deleted before it finished"
            elif row.persist and team is not None and row.expires_at > now_ms():
                turn = Turn(
                    message_id=row.message_id,
                    pair=Pair(row.from_team, row.to_team),
                    session_id=row.session_id,
                    request=row.request,
                    created_at=row.created_at,
                    persist=True,
                    expires_at=row.expires_at,
                    attempts=row.attempts,
                    recovered_attempts=row.attempts,
                    # A turn that began: its recorded attempt, or the next (if its count was not written).
                    job=row.job or JobSpec(),
                    # A job's key, and a persisted message's, is kept with it (its owner).
                    key_name=row.job.owner if row.job is not None else "",
                    rewind_prompts=tuple(
                        prompt_uuid(row.message_id, n) for n in (row.attempts + 1, row.attempts)
                    )
                    if row.attempts
                    else (),
                )
                try:
                    await self._jobs.enqueue(turn, team, recovered=True)
                    logger.info("re-queued persisted message %s for %s", row.message_id, turn.pair)
                    continue
                except IrisError as exc:
                    logger.warning("could not re-queue %s: %s", row.message_id, exc.message)
            await self._store.finish_turn(
                row.message_id,
                status=TurnStatus.ERROR.value,
                response=row.response,
                error=why,
                events=row.events,
                started_at=row.started_at,
                completed_at=now_ms(),
                duration_ms=max(now_ms() - row.created_at, 0),
                cost_usd=row.cost_usd,
                attempts=row.attempts,
            )
        await self._store.flush()  # the turns closed at start are in the record before Iris serves


def _outcome(turn: Turn, status: str, reply: type[Reply]) -> Reply:
    """Build SendMessage's (or AskMessage's) reply from the turn as it stands."""
    return reply(
        from_team=turn.pair.from_team,
        to_team=turn.pair.to_team,
        message=turn.request,
        response=turn.response,
        status=status,
        message_id=turn.message_id,
        session_id=turn.session_id,
        duration=turn.duration_ms,
        cost_usd=turn.cost_usd,
        error=turn.error if status == "error" else "",
        timestamp=now_ms(),
    )


async def _follow_until(turn: Turn, timeout_ms: int) -> AsyncIterator[pb.TellResponse]:
    """Yield the turn's events until it ends, or ``timeout_ms`` passes (0: no limit; -1: after ``start``).

    A turn that ended in an Iris failure (its process died, it ran past turnTimeout) raises that error after
    its ``complete`` event, as SendMessage does, so a reader can tell it from an answer.
    """
    events = turn.follow()
    try:
        if timeout_ms == -1:
            yield await anext(events)  # the start event, published when the turn was accepted
            yield turn.stream_end("async")
            return
        # The deadline covers the waits, never a yield: a cancel scope around a yield would fire in whatever
        # the reader is doing at the time.
        deadline = None if timeout_ms == 0 else asyncio.get_running_loop().time() + timeout_ms / 1000
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await anext(events)
            except StopAsyncIteration:
                break
            except TimeoutError:
                yield turn.stream_end("timeout")
                return
            yield event
    finally:
        await events.aclose()
    if turn.failure is not None:
        raise turn.failure
