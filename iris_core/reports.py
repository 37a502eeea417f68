"""SessionReport: a session's recorded turns, overlaid with live progress for turns not yet recorded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .clock import now_ms
from .store import SessionRow, TurnRow
from .turns import Turn, TurnStatus

__all__ = ["session_report"]


def session_report(
    team: str,
    from_team: str,
    session: SessionRow | None,
    rows: Sequence[TurnRow],
    live_turn: Callable[[str], Turn | None],
) -> pb.SessionReportResponse:
    """Build the report of a pair's session from its rows; ``live_turn`` finds a turn of this run.

    A turn of this run knows more than its row until its final row is written (the pool forgets it only
    then), so it is shown from memory until then: a finished turn never shows as "queued" in between.
    """
    entries = [_entry(row, live_turn(row.message_id)) for row in rows]
    active = sum(1 for e in entries if e.status in ("queued", "running"))
    completed = sum(1 for e in entries if e.status == "completed")
    return pb.SessionReportResponse(
        team=team,
        from_team=from_team,
        has_cache=bool(entries),
        session_id=session.session_id if session else "",
        entries=entries,
        stats=pb.ReportStats(
            total_entries=len(entries),
            active_entries=active,
            completed_entries=completed,
            failed_entries=len(entries) - active - completed,
        ),
        timestamp=now_ms(),
    )


def _entry(row: TurnRow, live: Turn | None) -> pb.ReportEntry:
    status, response, started_at, events = row.status, row.response, row.started_at, row.events
    error, completed_at, duration, cost = row.error, row.completed_at, row.duration_ms, row.cost_usd
    if live is not None:
        status = TurnStatus.QUEUED.value if live.status is TurnStatus.REQUEUED else live.status.value
        response, started_at, events = live.response, live.started_at, live.events
        if live.done:
            error, completed_at, duration, cost = (
                live.error,
                live.completed_at,
                live.duration_ms,
                live.cost_usd,
            )
    return pb.ReportEntry(
        message_id=row.message_id,
        type="TELL",
        status=status,
        request=row.request,
        response=response,
        error=error,
        created_at=row.created_at,
        started_at=started_at,
        completed_at=completed_at,
        duration=duration,
        cost_usd=cost,
        events=events,
        message_count=len(events),
    )
