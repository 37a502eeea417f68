"""The read-only tools: the teams list, the log ring, the clock. Pure functions over what they read."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .clock import now_ms
from .config import IrisConfig
from .errors import ValidationError
from .logs import DEFAULT_STORE, LEVELS, LogRing

__all__ = ["get_date", "get_logs", "list_teams"]

Result = dict[str, Any]


def list_teams(config: IrisConfig) -> Result:
    """List the configured teams with their settings."""
    teams = [
        {
            "name": t.name,
            "path": str(t.path),
            "description": t.description or "",
            "color": t.color or "",
            "idleTimeout": t.idle_timeout_ms,
            "sessionMcpEnabled": t.session_mcp_enabled,
            "grantPermission": t.grant_permission.value,
        }
        for t in config.teams.values()
    ]
    return {"teams": teams, "totalTeams": len(teams), "timestamp": now_ms()}


def get_logs(
    ring: LogRing,
    *,
    logs_since: int | None = None,
    store_name: str = "",
    format: str = "",  # noqa: A002 - the seeds' parameter name
    level: Sequence[str] = (),
    get_all_stores: bool = False,
) -> Result:
    """Read the in-memory log ring (seeds' get_logs)."""
    if get_all_stores:
        stores = ring.stores()
        return {"stores": stores, "count": len(stores), "timestamp": now_ms()}
    fmt = format or "parsed"
    if fmt not in ("parsed", "raw"):
        raise ValidationError('format must be "parsed" or "raw"', details={"field": "format"})
    unknown = [lv for lv in level if lv not in LEVELS]
    if unknown:
        raise ValidationError(
            f"Unknown log level {unknown[0]!r} (use {', '.join(LEVELS)})", details={"field": "level"}
        )
    entries = ring.query(since_ms=logs_since, levels=level, store=store_name or DEFAULT_STORE)
    logs = [
        {
            "level": e.level,
            "time": e.time_ms,
            "msg": e.msg,
            "store": e.store,
            "logger": e.logger,
            **({"fields": dict(e.fields)} if fmt == "raw" else {"text": e.parsed()}),
        }
        for e in entries
    ]
    return {"logs": logs, "count": len(logs), "timestamp": now_ms()}


def get_date() -> Result:
    """Return the server's clock in the seeds' forms (components in UTC)."""
    stamp = now_ms()
    utc = time.gmtime(stamp / 1000)
    return {
        "timestamp": stamp,
        "iso": time.strftime("%Y-%m-%dT%H:%M:%S", utc) + f".{stamp % 1000:03d}Z",
        "utc": time.strftime("%a, %d %b %Y %H:%M:%S GMT", utc),
        "unix": stamp // 1000,
        "year": utc.tm_year,
        "month": utc.tm_mon,
        "day": utc.tm_mday,
        "hour": utc.tm_hour,
        "minute": utc.tm_min,
        "second": utc.tm_sec,
        "timezone": time.tzname[time.localtime(stamp / 1000).tm_isdst > 0] or "UTC",
    }
