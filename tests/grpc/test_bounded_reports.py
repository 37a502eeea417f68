"""Bounded records and reports: a turn keeps at most the configured bytes of events and answer, a report is
read a page at a time (stats for the whole session), building one never holds up other calls, and a session
far larger than a gRPC message (16 MiB) still reads, page by page, with no RESOURCE_EXHAUSTED (REST 429)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import grpc
import httpx
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, error_details, error_reason, send, start_iris, tell_events, write_config

EVENTS_CAP = 4_096
RESPONSE_CAP = 8_192
MIB = 1024 * 1024


def _kept_events_bytes(entry: pb.ReportEntry) -> int:
    return sum(event.ByteSize() for event in entry.events if not event.HasField("complete"))


def _insert_turns(iris: Iris, session_id: str, count: int, *, response: str, events: str) -> list[str]:
    """Write ``count`` ended turns straight into the record (as a long-lived session would have them)."""
    ids = [f"msg_bulk_{i:04d}" for i in range(count)]
    with sqlite3.connect(iris.home / "iris.db") as db:
        db.executemany(
            "INSERT INTO turns (message_id, session_id, from_team, to_team, request, status, response, "
            "events, created_at, started_at, completed_at) VALUES (?, ?, 'caller', 'alpha', ?, 'completed', "
            "?, ?, ?, ?, ?)",
            [
                (message_id, session_id, f"request {i}", response, events, 2_000_000_000_000 + i, 1, 2)
                for i, message_id in enumerate(ids)
            ],
        )
    return ids


async def _all_pages(iris: Iris, *, page_size: int = 0) -> list[pb.SessionReportResponse]:
    pages: list[pb.SessionReportResponse] = []
    token = ""
    while True:
        request = pb.SessionReportRequest(team="alpha", from_team="caller")
        if page_size:
            request.page_size = page_size
        if token:
            request.page_token = token
        pages.append(await iris.stub.SessionReport(request))
        token = pages[-1].next_page_token
        if not token:
            return pages
        assert len(pages) < 100


async def test_a_turn_keeps_its_events_and_answer_within_the_caps_and_says_it_was_cut(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, settings={"maxTurnEventsBytes": EVENTS_CAP, "maxResponseBytes": RESPONSE_CAP}
    )
    text = " ".join(f"w{i}" for i in range(6_000))  # ~40 KB, streamed as thousands of chunks
    async with start_iris(tmp_path, config) as iris:
        live = await tell_events(
            iris, pb.TellRequest(to_team="alpha", from_team="caller", message=f"say {text}")
        )
        small = await send(iris, "say short answer")
        report = (await _all_pages(iris))[0]
        with sqlite3.connect(iris.home / "iris.db") as db:
            stored = db.execute("SELECT max(length(events) + length(response)) FROM turns").fetchone()[0]

    # Live readers got every chunk and the whole answer; only the record is bounded.
    assert "".join(e.chunk.text for e in live if e.HasField("chunk")) == text
    assert live[-1].complete.response == text
    big, short = report.entries
    assert big.truncated and big.status == "completed"
    assert text.startswith(big.response) and len(big.response.encode()) <= RESPONSE_CAP
    assert _kept_events_bytes(big) <= EVENTS_CAP
    assert big.events[0].HasField("start") and big.events[-1].HasField("complete")
    assert len(big.events[-1].complete.response.encode()) <= RESPONSE_CAP
    assert big.message_count == len(big.events)
    assert not short.HasField("truncated") and short.response == small.response == "short answer"
    assert stored < 10 * (EVENTS_CAP + RESPONSE_CAP)  # the row, not only the reply, is bounded


async def test_reports_page_oldest_first_with_stats_for_the_whole_session(iris: Iris) -> None:
    sent = [await send(iris, f"say answer {i}") for i in range(5)]
    pages = await _all_pages(iris, page_size=2)
    assert [len(p.entries) for p in pages] == [2, 2, 1]
    assert [e.message_id for p in pages for e in p.entries] == [r.message_id for r in sent]
    assert [e.response for p in pages for e in p.entries] == [f"answer {i}" for i in range(5)]
    for page in pages:
        assert page.has_cache and page.session_id == sent[0].session_id
        assert (page.stats.total_entries, page.stats.completed_entries, page.stats.active_entries) == (
            5,
            5,
            0,
        )
    assert pages[-1].next_page_token == ""

    first = await iris.stub.GetCache(pb.GetCacheRequest(session_id=sent[0].session_id, page_size=3))
    rest = await iris.stub.GetCache(
        pb.GetCacheRequest(session_id=sent[0].session_id, page_token=first.report.next_page_token)
    )
    assert [len(first.report.entries), len(rest.report.entries)] == [3, 2]
    assert rest.report.entries[0].message_id == sent[3].message_id and not rest.report.next_page_token
    default = await iris.stub.SessionReport(pb.SessionReportRequest(team="alpha", from_team="caller"))
    assert len(default.entries) == 5 and not default.next_page_token

    for request, field in (
        (pb.SessionReportRequest(team="alpha", from_team="caller", page_size=201), "pageSize"),
        (pb.SessionReportRequest(team="alpha", from_team="caller", page_size=-1), "pageSize"),
        (pb.SessionReportRequest(team="alpha", from_team="caller", page_token="not-a-token"), "pageToken"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await iris.stub.SessionReport(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (
            error_reason(caught.value) == "ValidationError" and error_details(caught.value)["field"] == field
        )


async def test_get_health_answers_while_a_report_of_many_large_turns_is_read(iris: Iris) -> None:
    session_id = (await send(iris, "say hi")).session_id
    events = json.dumps([{"chunk": {"text": "x "}}] * 30_000)  # ~0.8 MB of small events per turn
    _insert_turns(iris, session_id, 40, response="ok", events=events)

    report_call = asyncio.ensure_future(
        iris.stub.SessionReport(pb.SessionReportRequest(team="alpha", from_team="caller"))
    )
    latencies: list[float] = []
    while not report_call.done():
        started = time.monotonic()
        await iris.stub.GetHealth(pb.GetHealthRequest(), timeout=30)
        latencies.append(time.monotonic() - started)
    # Before: the whole session's events were decoded on the event loop, holding GetHealth for ~10 s.
    assert max(latencies) < 3.0, f"GetHealth waited {max(latencies):.1f}s behind the report"
    assert len(latencies) >= 3
    report = await report_call
    assert report.stats.total_entries == 41 and 0 < len(report.entries) < 41 and report.next_page_token


async def test_a_session_far_past_the_grpc_message_limit_reads_page_by_page(tmp_path: Path) -> None:
    async with start_iris(tmp_path, http=True) as iris:
        session_id = (await send(iris, "say hi")).session_id
        answer = "a" * 1_000_000  # within the default maxResponseBytes, as a recorded answer can be
        events = json.dumps([{"complete": {"response": answer, "status": "completed"}}])
        _insert_turns(iris, session_id, 20, response=answer, events=events)  # ~40 MB of record
        _insert_turns_before_caps(iris, session_id)

        pages = await _all_pages(iris)
        entries = [e for p in pages for e in p.entries]
        assert len(entries) == 22 and len(pages) > 1
        assert all(p.ByteSize() < 4 * MIB for p in pages)  # what a gRPC client accepts by default
        assert [p.stats.total_entries for p in pages] == [22] * len(pages)
        old = entries[-1]
        assert old.message_id == "msg_before_caps" and old.truncated
        assert len(old.response.encode()) <= MIB and not old.events

        # Over REST, the same pages are 200s (a reply past 16 MiB was RESOURCE_EXHAUSTED, i.e. 429).
        url = f"http://127.0.0.1:{iris.running.http_port}"
        headers = {"authorization": f"Bearer {iris.admin_key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            token, seen = "", 0
            while True:
                params = {"fromTeam": "caller", **({"pageToken": token} if token else {})}
                reply = await http.get("/api/teams/alpha/report", params=params)
                assert reply.status_code == 200, reply.text[:300]
                body = reply.json()
                seen += len(body["entries"])
                token = body["nextPageToken"]
                if not token:
                    break
            assert seen == 22
            cache = await http.get(f"/api/cache/{session_id}", params={"pageSize": 5})
            assert cache.status_code == 200 and len(cache.json()["report"]["entries"]) <= 5
            too_big = await http.get(
                "/api/teams/alpha/report", params={"fromTeam": "caller", "pageSize": 500}
            )
            assert too_big.status_code == 400 and too_big.json()["details"]["field"] == "pageSize"


def _insert_turns_before_caps(iris: Iris, session_id: str) -> None:
    """A turn recorded before the caps existed: a 6 MB answer and 6 MB of events in its row."""
    big = "b" * 6_000_000
    with sqlite3.connect(iris.home / "iris.db") as db:
        db.execute(
            "INSERT INTO turns (message_id, session_id, from_team, to_team, request, status, response, "
            "events, created_at) "
            "VALUES ('msg_before_caps', ?, 'caller', 'alpha', 'old', 'completed', ?, ?, ?)",
            (session_id, big, json.dumps([{"complete": {"response": big}}] * 2), 2_100_000_000_000),
        )
