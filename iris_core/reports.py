"""SessionReport: a session's recorded turns, overlaid with live progress for turns still running."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .clock import now_ms
from .store import SessionRow, TurnRow
from .turns import Turn

__all__ = ["session_report"]

Result = dict[str, Any]


def session_report(
    team: str,
    from_team: str,
    session: SessionRow | None,
    rows: Sequence[TurnRow],
    live_turn: Callable[[str], Turn | None],
) -> Result:
    """Build the report of a pair's session from its rows; ``live_turn`` finds a turn still being run."""
    entries = [_entry(row, live_turn(row.message_id)) for row in rows]
    active = sum(1 for e in entries if e["status"] in ("queued", "running"))
    completed = sum(1 for e in entries if e["status"] == "completed")
    return {
        "team": team,
        "fromTeam": from_team,
        "hasCache": bool(entries),
        "sessionId": session.session_id if session else "",
        "entries": entries,
        "stats": {
            "totalEntries": len(entries),
            "activeEntries": active,
            "completedEntries": completed,
            "failedEntries": len(entries) - active - completed,
        },
        "timestamp": now_ms(),
    }


def _entry(row: TurnRow, live: Turn | None) -> Result:
    if live is not None and not live.done:  # the row is written at the end; the turn knows more now
        status, response, started_at, events = live.status.value, live.response, live.started_at, live.events
    else:
        status, response, started_at, events = row.status, row.response, row.started_at, list(row.events)
    return {
        "messageId": row.message_id,
        "type": "TELL",
        "status": status,
        "request": row.request,
        "response": response,
        "error": row.error,
        "createdAt": row.created_at,
        "startedAt": started_at,
        "completedAt": row.completed_at,
        "duration": row.duration_ms,
        "costUsd": row.cost_usd,
        "events": list(events),
        "messageCount": len(events),
    }
