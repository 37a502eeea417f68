"""Messages looked up, listed and cancelled one by one (the v1 API: GetMessage, ListMessages, CancelMessage).

A message is a turn: the record has it from the moment it is accepted, and a turn of this run is shown from
memory (its progress so far) until its end is written. A caller sees the messages it sent: its own calling
team's; a key that may act for others (``team:impersonate``, ``admin``) sees every message. Another caller's
message is "not found" rather than "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .errors import MessageNotFoundError, PreconditionFailedError, ValidationError
from .jobs import JobQueue
from .pool import ProcessPool
from .store import HISTORY_RESPONSE_BYTES, HistoryQuery, Store, TurnRow
from .turns import PRIORITIES, V1_STATUS, V1_STATUSES, Turn, TurnStatus, cut_text

__all__ = ["MAX_PAGE_SIZE", "MessageRecords"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class MessageRecords:
    """Answers GetMessage, ListMessages and CancelMessage from the record and the live turns."""

    def __init__(self, store: Store, pool: ProcessPool, jobs: JobQueue, max_response_bytes: int) -> None:
        self._store = store
        self._pool = pool
        self._jobs = jobs
        self._max_response_bytes = max_response_bytes

    async def get_message(self, request: pb.GetMessageRequest, caller: Caller) -> pb.GetMessageResponse:
        """Return one message as it stands.

        Raises:
            ValidationError: no message id.
            MessageNotFoundError: no such message, or another caller's.

        """
        row = await self._visible_row(request.message_id, caller)
        record = self._record(row, self._jobs.live_turn(row.message_id))
        record.webhook_status, deliveries = await self._store.webhook_of(row.message_id)
        record.deliveries.extend(deliveries)
        return pb.GetMessageResponse(message=record)

    async def list_messages(self, request: pb.ListMessagesRequest, caller: Caller) -> pb.ListMessagesResponse:
        """Return one page of the messages the caller may see, newest first, with the total.

        Raises:
            ValidationError: an unknown status, a page below 1, or a limit outside 1..200.

        """
        limit = request.limit or DEFAULT_PAGE_SIZE
        page = request.page or 1
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"})
        if page < 1 or request.since < 0:
            field = "page" if page < 1 else "since"
            raise ValidationError(f"{field} must not be negative or zero", details={"field": field})
        if request.status and request.status not in V1_STATUSES:
            raise ValidationError(
                f"Unknown status {request.status!r} (known: {', '.join(V1_STATUSES)})",
                details={"field": "status"},
            )
        from_team = request.from_team
        if not caller.may_act_for_others:
            own = caller.team("")
            if from_team and from_team != own:  # another caller's messages: there are none to see
                return _page([], 0, page, limit)
            from_team = own
        query = HistoryQuery(
            to_team=request.team or request.to_team,
            from_team=from_team,
            statuses=(V1_STATUSES[request.status],) if request.status else (),
            since=request.since,
            limit=limit,
            offset=(page - 1) * limit,
        )
        rows, total = await self._store.history(query)
        on_pairs = self._pool.live_turns()  # one snapshot for the page, not one per row
        records = [
            self._record(
                row, self._jobs.waiting_turn(row.message_id) or on_pairs.get(row.message_id), listed=True
            )
            for row in rows
        ]
        return _page(records, total, page, limit)

    async def cancel_message(
        self, request: pb.CancelMessageRequest, caller: Caller
    ) -> pb.CancelMessageResponse:
        """Cancel one message: a queued one never starts, a running one is interrupted.

        Cancelling a cancelled message again returns it as it is.

        Raises:
            MessageNotFoundError: no such message, or another caller's.
            PreconditionFailedError: it has already completed or failed.
            ProcessError: the interrupt could not be delivered.

        """
        row = await self._visible_row(request.message_id, caller)
        live = self._jobs.live_turn(row.message_id)
        if live is not None and not live.done:
            if not await self._jobs.cancel(live):  # not waiting in the job queue: on its pair
                await self._pool.cancel_one(live)
        # This run's turn says how it ended before its record does (the end is written just after).
        elif (ended := live.status.value if live is not None else row.status) not in (
            TurnStatus.CANCELLED.value,
            TurnStatus.QUEUED.value,
        ):
            status = V1_STATUS.get(ended, ended)
            raise PreconditionFailedError(
                f"Message {row.message_id} has already ended ({status}); there is nothing to cancel",
                details={"messageId": row.message_id, "status": status},
            )
        current = await self._store.get_turn(row.message_id) or row
        return pb.CancelMessageResponse(message=self._record(current, self._jobs.live_turn(row.message_id)))

    async def _visible_row(self, message_id: str, caller: Caller) -> TurnRow:
        if not message_id:
            raise ValidationError("messageId is required", details={"field": "messageId"})
        by_job = message_id.startswith("job_")
        row = await (self._store.get_job(message_id) if by_job else self._store.get_turn(message_id))
        if row is None or not (caller.may_act_for_others or row.from_team == caller.team("")):
            raise MessageNotFoundError(f"No message {message_id}", details={"messageId": message_id})
        return row

    def _record(self, row: TurnRow, live: Turn | None, *, listed: bool = False) -> pb.MessageRecord:
        record = pb.MessageRecord(
            message_id=row.message_id,
            job_id=row.job.job_id if row.job is not None else "",
            priority=PRIORITIES[row.job.priority] if row.job is not None and row.job.job_id else "",
            team=row.to_team,
            from_team=row.from_team,
            session_id=row.session_id,
            status=V1_STATUS.get(row.status, row.status),
            message=row.request,
            response=row.response,
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            duration=row.duration_ms,
            progress=row.progress,
            metadata=row.metadata,
            attempts=row.attempts,
        )
        if row.context.ByteSize():
            record.context.CopyFrom(row.context)
        if live is not None:  # this run's turn: what it has done so far, until its end is written
            record.status = V1_STATUS.get(live.status.value, live.status.value)
            record.started_at, record.attempts = live.started_at, live.attempts
            record.progress.CopyFrom(live.progress())
            record.metadata.CopyFrom(live.metadata())
            cap = HISTORY_RESPONSE_BYTES if listed else self._max_response_bytes
            record.response, cut = cut_text(live.response, cap)
            if cut:
                record.truncated = True
            if live.done:
                record.error, record.completed_at, record.duration = (
                    live.error,
                    live.completed_at,
                    live.duration_ms,
                )
        elif row.status == TurnStatus.QUEUED.value:
            record.progress.percentage = 0
        elif row.status != TurnStatus.RUNNING.value:
            record.progress.percentage = 100
        if row.truncated:
            record.truncated = True
        return record


def _page(records: list[pb.MessageRecord], total: int, page: int, limit: int) -> pb.ListMessagesResponse:
    return pb.ListMessagesResponse(
        messages=records,
        pagination=pb.Pagination(page=page, limit=limit, total=total, has_next=page * limit < total),
    )
