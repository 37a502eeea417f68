"""The server itself: its log ring, its clock, its status and health."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import AsyncIterator

from google.protobuf import struct_pb2

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .clock import monotonic_ms, now_ms
from .config import IrisConfig
from .errors import ValidationError
from .events import EventFilter, EventLog
from .logs import DEFAULT_STORE, LEVELS, LogEntry, LogRing
from .pool import ProcessPool
from .store import Store
from .targets import configured_team

__all__ = ["VERSION", "System"]

try:
    VERSION = importlib.metadata.version("iris")
except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"


class System:
    """Read-only answers about the running server."""

    def __init__(
        self, config: IrisConfig, store: Store, pool: ProcessPool, logs: LogRing, events: EventLog
    ) -> None:
        self._events = events
        self._config = config
        self._store = store
        self._pool = pool
        self._logs = logs
        self._started_mono = monotonic_ms()

    async def get_logs(self, request: pb.GetLogsRequest, caller: Caller) -> pb.GetLogsResponse:
        """Read the in-memory log ring, filtered as the request says.

        Raises:
            ValidationError: an unknown format or level.

        """
        del caller
        if request.get_all_stores:
            stores = self._logs.stores()
            return pb.GetLogsResponse(stores=stores, count=len(stores), timestamp=now_ms())
        fmt = request.format or "parsed"
        if fmt not in ("parsed", "raw"):
            raise ValidationError('format must be "parsed" or "raw"', details={"field": "format"})
        unknown = [lv for lv in request.level if lv not in LEVELS]
        if unknown:
            raise ValidationError(
                f"Unknown log level {unknown[0]!r} (use {', '.join(LEVELS)})", details={"field": "level"}
            )
        entries = self._logs.query(
            since_ms=request.logs_since if request.HasField("logs_since") else None,
            levels=request.level,
            store=request.store_name or DEFAULT_STORE,
        )
        logs = [_record(entry, raw=fmt == "raw") for entry in entries]
        return pb.GetLogsResponse(logs=logs, count=len(logs), timestamp=now_ms())

    async def get_date(self, request: pb.GetDateRequest, caller: Caller) -> pb.GetDateResponse:
        """Return the server's clock in several forms (components in UTC)."""
        del request, caller
        stamp = now_ms()
        utc = time.gmtime(stamp / 1000)
        return pb.GetDateResponse(
            timestamp=stamp,
            iso=time.strftime("%Y-%m-%dT%H:%M:%S", utc) + f".{stamp % 1000:03d}Z",
            utc=time.strftime("%a, %d %b %Y %H:%M:%S GMT", utc),
            unix=stamp // 1000,
            year=utc.tm_year,
            month=utc.tm_mon,
            day=utc.tm_mday,
            hour=utc.tm_hour,
            minute=utc.tm_min,
            second=utc.tm_sec,
            timezone=time.tzname[time.localtime(stamp / 1000).tm_isdst > 0] or "UTC",
        )

    async def get_status(self, request: pb.GetStatusRequest, caller: Caller) -> pb.GetStatusResponse:
        """Report the whole system: sessions, processes, uptime and version."""
        del request, caller
        slots, busy, live = self._pool.census()
        return pb.GetStatusResponse(
            sessions=pb.SessionCounts(total=await self._store.count_sessions(), active=len(live)),
            processes=pb.ProcessCounts(
                total=slots, max_processes=self._config.settings.max_processes, busy=busy
            ),
            uptime=self._uptime_ms(),
            version=VERSION,
            timestamp=now_ms(),
        )

    async def get_health(self, request: pb.GetHealthRequest, caller: Caller) -> pb.GetHealthResponse:
        """Answer a basic health check for HTTP monitors."""
        del request, caller
        return pb.GetHealthResponse(status="ok", uptime=self._uptime_ms(), timestamp=now_ms())

    def _uptime_ms(self) -> int:
        return int(monotonic_ms() - self._started_mono)

    async def watch_events(
        self, request: pb.WatchEventsRequest, caller: Caller
    ) -> AsyncIterator[pb.WatchEventsResponse]:
        """Return the event stream the request asks for: kept events after ``after_id``, then live ones.

        A caller sees the events of its own pairs (and health); ``admin`` and ``team:impersonate`` keys all.

        Raises:
            ValidationError: a negative ``after_id``, or an unknown team.

        """
        if request.after_id < 0:
            raise ValidationError("afterId must not be negative", details={"field": "afterId"})
        if request.team:
            configured_team(self._config, request.team)
        where = EventFilter(
            team=request.team,
            session_id=request.session_id,
            kinds=tuple(request.kinds),
            from_team="" if caller.may_act_for_others else caller.team(""),
        )
        return self._events.watch(where, request.after_id)


def _record(entry: LogEntry, *, raw: bool) -> pb.LogRecord:
    record = pb.LogRecord(
        level=entry.level, time=entry.time_ms, msg=entry.msg, store=entry.store, logger=entry.logger
    )
    if raw:
        fields = struct_pb2.Struct()
        fields.update(dict(entry.fields))
        record.fields.CopyFrom(fields)
    else:
        record.text = entry.parsed()
    return record
