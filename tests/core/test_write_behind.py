"""The writes no reply waits for (a turn's end, a cost, an audit row) are queued, yet never lost to a reader
or to a graceful stop; a failed batch is logged, not raised into a read (``store.WriteBehind``)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.audit import AuditLog
from iris_core.store import Store


async def _accepted_turn(store: Store, message_id: str) -> None:
    session_id = await store.session_id_for("caller", "alpha")
    await store.add_turn(
        message_id=message_id,
        session_id=session_id,
        from_team="caller",
        to_team="alpha",
        request="hi",
        created_at=1,
        persist=False,
        expires_at=0,
    )


async def _finish(store: Store, message_id: str) -> None:
    await store.finish_turn(
        message_id,
        status="completed",
        response="hello",
        error="",
        events=[pb.TellResponse(chunk=pb.TellChunk(text="hello"))],
        started_at=2,
        completed_at=3,
        duration_ms=2,
        cost_usd=0.5,
    )


def _status_on_disk(path: Path, message_id: str) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("SELECT status FROM turns WHERE message_id = ?", (message_id,)).fetchone()[0])


async def test_a_queued_turn_end_is_seen_by_the_next_read_and_is_on_disk_after_it(tmp_path: Path) -> None:
    async with Store(tmp_path / "iris.db") as store:
        await _accepted_turn(store, "m1")
        await _finish(store, "m1")
        assert _status_on_disk(tmp_path / "iris.db", "m1") == "queued"  # queued, not yet written
        row = await store.get_turn("m1")
        assert row is not None and (row.status, row.response, row.cost_usd) == ("completed", "hello", 0.5)
        assert _status_on_disk(tmp_path / "iris.db", "m1") == "completed"


async def test_a_graceful_close_writes_what_is_queued(tmp_path: Path) -> None:
    async with Store(tmp_path / "iris.db") as store, AuditLog(tmp_path / "audit.db") as audit:
        await _accepted_turn(store, "m1")
        await _finish(store, "m1")
        audit.note("call", outcome="OK", key_name="ops", method="SendMessage", team="alpha")
    assert _status_on_disk(tmp_path / "iris.db", "m1") == "completed"
    async with AuditLog(tmp_path / "audit.db") as reopened:
        rows = await reopened.tail()
    assert [(r.event, r.key_name, r.method, r.team, r.outcome) for r in rows] == [
        ("call", "ops", "SendMessage", "alpha", "OK")
    ]


async def test_writes_keep_their_order(tmp_path: Path) -> None:
    async with Store(tmp_path / "iris.db") as store:
        await _accepted_turn(store, "m1")
        await _finish(store, "m1")
        await store.mark_truncated("m1")
        await store.mark_queued("m1")  # written at once, after the queued end and mark
        assert _status_on_disk(tmp_path / "iris.db", "m1") == "queued"
        row = await store.get_turn("m1")
        assert row is not None and row.truncated


async def test_a_failed_batch_is_logged_and_does_not_fail_the_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="iris_core")
    async with Store(tmp_path / "iris.db") as store:
        await _accepted_turn(store, "m1")
        store._writes.add("UPDATE no_such_table SET x = 1", ())  # a write that cannot succeed
        row = await store.get_turn("m1")
    assert row is not None and row.status == "queued"
    assert any("could not write to the record" in r.getMessage() for r in caplog.records)
