"""SessionReport: a session's recorded turns a page at a time, with live progress of unrecorded turns.

A report never grows with the session: a page holds at most ``page_size`` entries (50 unless asked, at most
200) and stops early at ``PAGE_BYTES``; ``next_page_token`` names where the next page starts (a keyset
position, so a page is one indexed query however long the session). The stats count the whole session in
SQL. Each entry is bounded by ``settings.maxTurnEventsBytes`` and ``maxResponseBytes``, so one entry, and
thus one page, stays under the 4 MiB a gRPC client receives by default.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .clock import now_ms
from .config import Settings
from .errors import ValidationError
from .store import PageKey, SessionRow, Store, TurnRow
from .turns import Turn, TurnStatus, cut_text

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "PAGE_BYTES", "session_report"]

DEFAULT_PAGE_SIZE = 50
"""Entries per page when the request leaves ``page_size`` at 0."""
MAX_PAGE_SIZE = 200
"""Largest ``page_size`` a request may ask for; more is a ValidationError."""
PAGE_BYTES = 3 * 1024 * 1024
"""A page stops before the entry that would take it past this many bytes (it always holds one entry). With
one entry at most about 3.2 MiB (the caps are at most 1 MiB each), every page fits the 4 MiB a gRPC client
(the REST gateway's and the MCP adapter's included) accepts by default."""

_TOKEN_PREFIX = "p1:"


def _token_of(key: PageKey) -> str:
    """Return the opaque token naming the page after ``key``."""
    created_at, rowid = key
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{created_at}:{rowid}".encode()).decode().rstrip("=")


def _page_key(token: str) -> PageKey | None:
    """Read a page token (empty: the first page).

    Raises:
        ValidationError: not a token this server gives.

    """
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not text.startswith(_TOKEN_PREFIX):
            raise ValueError(text)
        created_at, rowid = text.removeprefix(_TOKEN_PREFIX).split(":")
        return int(created_at), int(rowid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "pageToken is not a token this server gave; pass a reply's nextPageToken, or none",
            details={"field": "pageToken"},
        ) from None


def _page_size(size: int) -> int:
    if size < 0 or size > MAX_PAGE_SIZE:
        raise ValidationError(
            f"pageSize must be 0..{MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE}), got {size}",
            details={"field": "pageSize", "max": str(MAX_PAGE_SIZE)},
        )
    return size or DEFAULT_PAGE_SIZE


async def session_report(
    team: str,
    from_team: str,
    session: SessionRow | None,
    *,
    store: Store,
    settings: Settings,
    page_size: int,
    page_token: str,
    live_turn: Callable[[str], Turn | None],
) -> pb.SessionReportResponse:
    """Build one page of the report of a pair's session; ``live_turn`` finds a turn of this run.

    A turn of this run knows more than its row until its final row is written (the pool forgets it only
    then), so it is shown from memory until then: a finished turn never shows as "queued" in between.

    Raises:
        ValidationError: a page size out of range or a page token this server did not give.

    """
    size, after = _page_size(page_size), _page_key(page_token)
    if session is None:
        return _reply(team, from_team, "", [], pb.ReportStats(), "")
    page = await store.turns_page(
        session.session_id,
        after=after,
        limit=size,
        page_bytes=PAGE_BYTES,
        max_response_bytes=settings.max_response_bytes,
        max_events_bytes=settings.max_turn_events_bytes,
    )
    counts = await store.count_turns(session.session_id)
    completed, active = counts.completed, len(counts.active_ids)
    for message_id in counts.active_ids:
        live = live_turn(message_id)
        if live is not None and live.done and live.status is not TurnStatus.REQUEUED:
            active -= 1
            completed += live.status is TurnStatus.COMPLETED
    stats = pb.ReportStats(
        total_entries=counts.total,
        active_entries=active,
        completed_entries=completed,
        failed_entries=counts.total - active - completed,
    )
    entries: list[pb.ReportEntry] = []
    more, last, total = page.more, None, 0
    for row, key in zip(page.rows, page.keys, strict=True):
        entry = _entry(row, live_turn(row.message_id), settings)
        if entries and total + entry.ByteSize() > PAGE_BYTES:
            more = True
            break
        entries.append(entry)
        total += entry.ByteSize()
        last = key
    token = _token_of(last) if more and last is not None else ""
    return _reply(team, from_team, session.session_id, entries, stats, token)


def _reply(
    team: str,
    from_team: str,
    session_id: str,
    entries: list[pb.ReportEntry],
    stats: pb.ReportStats,
    next_page_token: str,
) -> pb.SessionReportResponse:
    return pb.SessionReportResponse(
        team=team,
        from_team=from_team,
        has_cache=stats.total_entries > 0,
        session_id=session_id,
        entries=entries,
        stats=stats,
        timestamp=now_ms(),
        next_page_token=next_page_token,
    )


def _entry(row: TurnRow, live: Turn | None, settings: Settings) -> pb.ReportEntry:
    status, response, started_at, events = row.status, row.response, row.started_at, row.events
    error, completed_at, duration, cost = row.error, row.completed_at, row.duration_ms, row.cost_usd
    truncated = row.truncated
    if live is not None:
        status = TurnStatus.QUEUED.value if live.status is TurnStatus.REQUEUED else live.status.value
        started_at, events = live.started_at, list(live.events)
        response, cut = cut_text(live.response, settings.max_response_bytes)
        truncated = live.truncated or cut
        if live.done:
            error, completed_at, duration, cost = (
                live.error,
                live.completed_at,
                live.duration_ms,
                live.cost_usd,
            )
    entry = pb.ReportEntry(
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
        attempts=live.attempts if live is not None else row.attempts,
    )
    if truncated:
        entry.truncated = True
    return entry
