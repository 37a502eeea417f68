"""How ``iris serve`` writes its log to stderr: text for a person, or JSON lines for a log collector.

One JSON object per line (``--log-format json``): ``time`` (UTC, ISO 8601 with milliseconds), ``level`` (the
names GetLogs uses: debug, info, warn, error, fatal), ``logger``, ``message``, then the record's ``extra=``
fields (the access line's ``method``, ``code``, ``duration_ms`` ...) and ``exception`` when there is one.
The in-memory ring GetLogs reads is a handler of its own and is the same in both formats.
"""

from __future__ import annotations

import datetime
import json
import logging

from iris_core.logs import extra_fields, level_name

__all__ = ["CHATTY_LOGGERS", "JsonLineFormatter", "TEXT_FORMAT", "quiet_chatty_loggers"]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

CHATTY_LOGGERS = ("asyncio", "aiosqlite", "grpc", "claude_agent_sdk", "mcp", "httpx", "httpcore")
"""Libraries that log at INFO per spawn or per request: claude_agent_sdk names the CLI it starts at every
connect, mcp's streamable HTTP manager reports each transport and session, httpx each request (webhooks,
the MCP client). Raised to WARNING unless ``--log-level DEBUG``; asyncio, aiosqlite and grpc always."""

_ALWAYS_QUIET = ("asyncio", "aiosqlite", "grpc")


def quiet_chatty_loggers(level: str) -> None:
    """Raise the per-spawn and per-request loggers of libraries to WARNING, unless ``level`` is DEBUG."""
    for name in CHATTY_LOGGERS:
        if level != "DEBUG" or name in _ALWAYS_QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
    # OpenTelemetry warns once per call about a malformed traceparent, before any key is checked: an anonymous
    # caller could fill the log ring with them. The header is ignored either way.
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line (no newline inside: messages are escaped)."""
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, object] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level_name(record.levelno),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in extra_fields(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)
