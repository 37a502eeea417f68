"""An in-memory ring of structured log records, read back by the GetLogs RPC.

The ring is a ``logging.Handler`` so every module logs the ordinary way (``logging.getLogger(__name__)``)
and the records are also kept, bounded, for callers who cannot read the server's terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_STORE", "LEVELS", "JsonScalar", "LogEntry", "LogRing", "extra_fields", "level_name"]

JsonScalar = str | int | float | bool | None
"""A value kept from a record's ``extra=`` fields (anything else is kept as its ``str``)."""

DEFAULT_STORE = "iris"
LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")

_IRIS_PACKAGES = frozenset(
    {"iris_core", "iris_grpc", "iris_app", "iris_client", "rest_gateway", "mcp_adapter", "__main__"}
)
# Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept as a field.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def level_name(levelno: int) -> str:
    """Return GetLogs's name of a logging level (trace, debug, info, warn, error, fatal)."""
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


def _store_of(logger_name: str) -> str:
    top = logger_name.split(".", 1)[0]
    return DEFAULT_STORE if top in _IRIS_PACKAGES else top


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One kept record: what GetLogs returns."""

    level: str
    """trace | debug | info | warn | error | fatal."""
    time_ms: int
    """Unix time in milliseconds."""
    msg: str
    """The formatted message."""
    store: str
    """Logger family: "iris" for Iris's own packages, else the top-level logger name."""
    logger: str
    """Full logger name."""
    fields: Mapping[str, JsonScalar] = field(default_factory=dict)
    """Values passed with ``extra=``, made JSON-safe."""

    def parsed(self) -> str:
        """Return one human-readable line, the original iris-mcp's "parsed" format."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time_ms / 1000))
        extras = " ".join(f"{k}={v}" for k, v in self.fields.items())
        return f"{stamp}.{self.time_ms % 1000:03d} {self.level.upper():5} [{self.logger}] {self.msg}" + (
            f" {extras}" if extras else ""
        )


def _json_safe(value: object) -> JsonScalar:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def extra_fields(record: logging.LogRecord) -> dict[str, JsonScalar]:
    """Return the fields a record was given with ``extra=``, made JSON-safe (GetLogs and JSON lines)."""
    return {k: _json_safe(v) for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class LogRing(logging.Handler):
    """Keeps the newest ``capacity`` records; thread-safe because logging may happen off the loop."""

    def __init__(self, capacity: int = 5000, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Store the record (never raises: logging must not break the caller)."""
        try:
            fields = extra_fields(record)
            entry = LogEntry(
                level=level_name(record.levelno),
                time_ms=int(record.created * 1000),
                msg=record.getMessage(),
                store=_store_of(record.name),
                logger=record.name,
                fields=fields,
            )
        except Exception:  # noqa: BLE001 - logging.Handler contract: report, never raise
            self.handleError(record)
            return
        with self._guard:
            self._entries.append(entry)

    def stores(self) -> list[str]:
        """Return the store names that have records, sorted."""
        with self._guard:
            return sorted({e.store for e in self._entries})

    def query(
        self, *, since_ms: int | None = None, levels: Iterable[str] = (), store: str | None = None
    ) -> list[LogEntry]:
        """Return matching records, oldest first.

        Args:
            since_ms: keep records at or after this Unix time in milliseconds.
            levels: keep only these level names (empty: all).
            store: keep only this store (None: all).

        """
        wanted = frozenset(levels)
        with self._guard:
            entries = list(self._entries)
        return [
            e
            for e in entries
            if (since_ms is None or e.time_ms >= since_ms)
            and (not wanted or e.level in wanted)
            and (store is None or e.store == store)
        ]
