"""The log ring GetLogs reads, and the input rules every transport shares."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from iris_core.errors import ValidationError
from iris_core.logs import DEFAULT_STORE, LEVELS, LogRing
from iris_core.validation import (
    MAX_MESSAGE_CHARS,
    MAX_TEAM_NAME_CHARS,
    MAX_TIMEOUT_MS,
    validate_message,
    validate_team_name,
    validate_timeout,
)


def record(
    name: str = "iris_core.pool",
    level: int = logging.INFO,
    msg: str = "hello %s",
    args: tuple[object, ...] = ("world",),
    created: float | None = None,
    **extra: object,
) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    if created is not None:
        rec.created = created
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


@pytest.fixture
def attached() -> Iterator[tuple[LogRing, logging.Logger]]:
    """A ring attached to a private logger tree (``iris_core.test_logs``), detached after the test."""
    ring = LogRing(100)
    logger = logging.getLogger("iris_core.test_logs")
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(1)
    logger.propagate = False
    logger.addHandler(ring)
    try:
        yield ring, logger
    finally:
        logger.removeHandler(ring)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


# --- LogRing ---------------------------------------------------------------------------------------------


def test_a_logged_record_is_kept_with_level_time_message_store_and_logger(
    attached: tuple[LogRing, logging.Logger],
) -> None:
    ring, logger = attached
    before = int(time.time() * 1000)
    logger.info("started %s in %s", 42, "alpha")
    after = int(time.time() * 1000)
    [entry] = ring.query()
    assert entry.level == "info"
    assert entry.msg == "started 42 in alpha"
    assert entry.store == DEFAULT_STORE
    assert entry.logger == "iris_core.test_logs"
    assert before <= entry.time_ms <= after
    assert dict(entry.fields) == {}


@pytest.mark.parametrize(
    ("levelno", "name"),
    [
        (5, "trace"),
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warn"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "fatal"),
        (logging.CRITICAL + 10, "fatal"),
    ],
)
def test_python_levels_map_onto_the_original_designs_level_names(levelno: int, name: str) -> None:
    ring = LogRing(10, level=1)
    ring.handle(record(level=levelno))
    assert [e.level for e in ring.query()] == [name]
    assert name in LEVELS


def test_the_ring_keeps_debug_by_default_and_drops_records_below_its_own_level(
    attached: tuple[LogRing, logging.Logger],
) -> None:
    ring, logger = attached
    picky = LogRing(10, level=logging.INFO)
    logger.addHandler(picky)
    try:
        logger.log(5, "trace")
        logger.debug("debug")
        logger.info("info")
    finally:
        logger.removeHandler(picky)
    assert [e.msg for e in ring.query()] == ["debug", "info"]
    assert [e.msg for e in picky.query()] == ["info"]


@pytest.mark.parametrize(
    ("logger_name", "store"),
    [
        ("iris_core.pool", "iris"),
        ("iris_grpc.servicer", "iris"),
        ("rest_gateway.app", "iris"),
        ("mcp_adapter.server", "iris"),
        ("__main__", "iris"),
        ("claude_agent_sdk._internal.query", "claude_agent_sdk"),
        ("asyncio", "asyncio"),
        ("iris_corex.thing", "iris_corex"),
    ],
)
def test_iris_packages_share_the_iris_store_and_others_get_their_top_level_name(
    logger_name: str, store: str
) -> None:
    ring = LogRing(10)
    ring.handle(record(name=logger_name))
    [entry] = ring.query()
    assert entry.store == store and entry.logger == logger_name


def test_extra_values_become_fields_and_non_json_values_become_strings() -> None:
    ring = LogRing(10)
    ring.handle(record(team="alpha", pid=42, ratio=0.5, ok=True, nothing=None, where=("a", 1)))
    [entry] = ring.query()
    assert dict(entry.fields) == {
        "team": "alpha",
        "pid": 42,
        "ratio": 0.5,
        "ok": True,
        "nothing": None,
        "where": "('a', 1)",
    }


def test_the_ring_keeps_only_the_newest_records_up_to_its_capacity() -> None:
    ring = LogRing(3)
    for i in range(5):
        ring.handle(record(msg="n%d", args=(i,)))
    assert [e.msg for e in ring.query()] == ["n2", "n3", "n4"]


def test_query_filters_by_time_level_and_store_oldest_first() -> None:
    ring = LogRing(10)
    ring.handle(record(name="iris_core.a", level=logging.INFO, msg="old info", args=(), created=100.0))
    ring.handle(record(name="iris_core.a", level=logging.WARNING, msg="new warn", args=(), created=200.0))
    ring.handle(record(name="asyncio", level=logging.ERROR, msg="other store", args=(), created=300.0))
    ring.handle(record(name="iris_grpc.b", level=logging.ERROR, msg="new error", args=(), created=400.0))

    assert [e.msg for e in ring.query()] == ["old info", "new warn", "other store", "new error"]
    assert [e.msg for e in ring.query(since_ms=200_000)] == ["new warn", "other store", "new error"]
    assert ring.query(since_ms=400_001) == []
    assert [e.msg for e in ring.query(levels=["warn", "error"])] == ["new warn", "other store", "new error"]
    assert [e.msg for e in ring.query(levels=["error"], store="iris")] == ["new error"]
    assert [e.msg for e in ring.query(store="asyncio")] == ["other store"]
    assert ring.query(store="nobody") == []


def test_stores_lists_each_store_with_records_once_sorted() -> None:
    ring = LogRing(10)
    assert ring.stores() == []
    for name in ("iris_core.a", "zlib_thing", "asyncio", "iris_grpc.b"):
        ring.handle(record(name=name))
    assert ring.stores() == ["asyncio", "iris", "zlib_thing"]


def test_parsed_is_one_line_with_clock_level_logger_message_and_fields() -> None:
    ring = LogRing(10)
    created = time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1)) + 0.042
    ring.handle(record(level=logging.WARNING, msg="slow %s", args=("alpha",), created=created, team="alpha"))
    [entry] = ring.query()
    assert entry.parsed() == "07:08:09.042 WARN  [iris_core.pool] slow alpha team=alpha"


def test_parsed_without_fields_ends_with_the_message() -> None:
    ring = LogRing(10)
    ring.handle(record(msg="plain", args=()))
    [entry] = ring.query()
    assert entry.parsed().endswith(" INFO  [iris_core.pool] plain")


class _RecordingRing(LogRing):
    def __init__(self) -> None:
        super().__init__(10)
        self.failed: list[logging.LogRecord] = []

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed.append(record)


def test_a_record_that_cannot_be_formatted_is_reported_not_raised_and_not_kept() -> None:
    ring = _RecordingRing()
    broken = record(msg="needs %d", args=("not a number",))
    ring.handle(broken)
    assert ring.failed == [broken]
    assert ring.query() == []


# --- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alpha", "team-1_b.c", "x" * MAX_TEAM_NAME_CHARS])
def test_valid_team_names_pass(name: str) -> None:
    validate_team_name(name)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "required"),
        ("a/b", "path separators"),
        ("a\\b", "path separators"),
        ("..", "path separators"),
        ("a..b", "path separators"),
        ("a\0b", "null bytes"),
        ("x" * (MAX_TEAM_NAME_CHARS + 1), "too long"),
    ],
)
def test_bad_team_names_are_refused_naming_the_field(name: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_team_name(name, field="toTeam")
    assert words in refused.value.message
    assert refused.value.details == {"field": "toTeam"}
    assert refused.value.reason == "ValidationError"


def test_team_name_errors_name_the_team_field_by_default() -> None:
    with pytest.raises(ValidationError) as refused:
        validate_team_name("")
    assert refused.value.details == {"field": "team"}


@pytest.mark.parametrize("message", ["x", "x" * MAX_MESSAGE_CHARS, "line\nwith\ttabs"])
def test_valid_messages_pass(message: str) -> None:
    validate_message(message)


@pytest.mark.parametrize(
    ("message", "words"),
    [("", "required"), ("x" * (MAX_MESSAGE_CHARS + 1), "too long"), ("a\0b", "null bytes")],
)
def test_bad_messages_are_refused_naming_the_field(message: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_message(message)
    assert words in refused.value.message
    assert refused.value.details == {"field": "message"}


@pytest.mark.parametrize("timeout", [-1, 0, 1, 30_000, MAX_TIMEOUT_MS])
def test_timeouts_from_minus_one_to_one_hour_pass(timeout: int) -> None:
    validate_timeout(timeout)


@pytest.mark.parametrize("timeout", [-2, -30_000, MAX_TIMEOUT_MS + 1])
def test_timeouts_outside_minus_one_to_one_hour_are_refused(timeout: int) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_timeout(timeout, field="timeoutMs")
    assert refused.value.details == {"field": "timeoutMs"}
