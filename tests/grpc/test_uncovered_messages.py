"""AskMessage (gRPC and REST), model errors ending a turn, and the system RPCs GetStatus, GetHealth,
GetCache and ClearCache: real Claude Code against the offline model, through public surfaces only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import (
    Iris,
    error_reason,
    report_of,
    send,
    start_iris,
    status_of,
    tell_events,
    wait_until_running,
    write_config,
)

# Claude Code retries a 529 (overloaded) ten times with exponential backoff, minutes in all; with no retries
# the model's error ends the turn at once, which is what a caller sees once the retries are spent.
NO_RETRIES = {"alpha": {"env": {"CLAUDE_CODE_MAX_RETRIES": "0"}}}


@pytest.fixture
async def no_retry_iris(tmp_path: Path) -> AsyncIterator[Iris]:
    async with start_iris(tmp_path, write_config(tmp_path, teams=NO_RETRIES)) as running:
        yield running


# --- AskMessage --------------------------------------------------------------------------------------------


async def test_ask_message_answers_with_the_whole_response_like_send_message(iris: Iris) -> None:
    reply = await iris.stub.AskMessage(
        pb.AskMessageRequest(from_team="caller", to_team="alpha", message="say the asked answer")
    )
    assert reply.status == "completed"
    assert reply.response == "the asked answer"
    assert (reply.from_team, reply.to_team, reply.message) == ("caller", "alpha", "say the asked answer")
    assert reply.message_id.startswith("msg_") and reply.session_id
    assert reply.error == "" and reply.cost_usd > 0
    report = await report_of(iris)
    assert [(e.message_id, e.status, e.response) for e in report.entries] == [
        (reply.message_id, "completed", "the asked answer")
    ]


async def test_ask_message_continues_the_conversation_of_the_same_pair(iris: Iris) -> None:
    told = await send(iris, "remember quince")
    asked = await iris.stub.AskMessage(
        pb.AskMessageRequest(from_team="caller", to_team="alpha", message="recall")
    )
    assert asked.response == "you told me: quince"
    assert asked.session_id == told.session_id


async def test_ask_message_with_timeout_minus_one_returns_async_and_the_turn_still_runs(iris: Iris) -> None:
    queued = await iris.stub.AskMessage(
        pb.AskMessageRequest(from_team="caller", to_team="alpha", message="say in the background", timeout=-1)
    )
    assert queued.status == "async" and queued.response == ""
    async with asyncio.timeout(60):
        while (entry := (await report_of(iris)).entries[0]).status != "completed":
            await asyncio.sleep(0.05)
    assert entry.message_id == queued.message_id and entry.response == "in the background"


async def test_rest_ask_route_answers_and_records_the_turn(tmp_path: Path) -> None:
    async with start_iris(tmp_path, http=True) as iris:
        assert iris.running.http_port
        headers = {"authorization": f"Bearer {iris.admin_key}"}
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{iris.running.http_port}", timeout=60) as client,
            asyncio.timeout(60),
        ):
            asked = await client.post(
                "/api/teams/ask",
                json={"toTeam": "alpha", "fromTeam": "caller", "message": "say asked over REST"},
                headers=headers,
            )
            refused = await client.post(
                "/api/teams/ask", json={"toTeam": "alpha", "fromTeam": "caller", "message": "say no key"}
            )
        report = await report_of(iris)
    assert asked.status_code == 200
    body = asked.json()
    assert body["status"] == "completed" and body["response"] == "asked over REST"
    assert (body["fromTeam"], body["toTeam"]) == ("caller", "alpha")
    assert body["messageId"].startswith("msg_") and body["sessionId"] == report.session_id
    assert refused.status_code == 401 and refused.json()["error"] == "UnauthorizedError"
    assert [e.message_id for e in report.entries] == [body["messageId"]]


# --- a model error ends a turn ---------------------------------------------------------------------------


async def test_a_model_error_ends_the_turn_as_error_and_the_next_message_is_answered(
    no_retry_iris: Iris,
) -> None:
    iris = no_retry_iris
    await send(iris, "remember lime")
    failed = await send(iris, "error 529", timeout_ms=0)
    assert failed.status == "error"
    assert failed.error and "529" in failed.error
    pid = (await status_of(iris)).pid
    after = await send(iris, "recall")
    assert after.status == "completed" and after.response == "you told me: lime"
    assert after.session_id == failed.session_id
    # A model error is an answer of the process, not a failure of it: the same process answers next.
    assert (await status_of(iris)).pid == pid
    entry = (await report_of(iris)).entries[1]
    assert (entry.message_id, entry.status) == (failed.message_id, "error")
    assert entry.error == failed.error


async def test_a_model_error_ends_a_tell_stream_with_an_error_complete_and_the_next_tell_is_answered(
    no_retry_iris: Iris,
) -> None:
    iris = no_retry_iris
    failed = await tell_events(iris, pb.TellRequest(from_team="caller", to_team="alpha", message="error 529"))
    assert [e.WhichOneof("event") for e in failed][0] == "start"
    complete = failed[-1].complete
    assert complete.status == "error" and "529" in complete.error
    after = await tell_events(
        iris, pb.TellRequest(from_team="caller", to_team="alpha", message="say fine again")
    )
    assert after[-1].complete.status == "completed"
    assert after[-1].complete.response == "fine again"


# --- GetStatus, GetHealth ----------------------------------------------------------------------------------


async def test_get_status_counts_sessions_processes_and_busy_ones(iris: Iris) -> None:
    empty = await iris.stub.GetStatus(pb.GetStatusRequest())
    assert (empty.sessions.total, empty.sessions.active) == (0, 0)
    assert (empty.processes.total, empty.processes.busy) == (0, 0)
    assert empty.processes.max_processes == 10
    assert empty.version and empty.uptime >= 0

    await send(iris, "say one")
    await iris.stub.TeamWake(pb.TeamWakeRequest(team="beta", from_team="other"))
    waiting = asyncio.create_task(send(iris, "slow 30 100", timeout_ms=0))
    try:
        await wait_until_running(iris)
        busy = await iris.stub.GetStatus(pb.GetStatusRequest())
    finally:
        await iris.stub.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="caller"))
        await asyncio.wait_for(waiting, 30)
    assert (busy.sessions.total, busy.sessions.active) == (2, 2)
    assert (busy.processes.total, busy.processes.busy) == (2, 1)
    assert busy.uptime > empty.uptime

    await iris.stub.TeamSleep(pb.TeamSleepRequest(team="beta", from_team="other"))
    after = await iris.stub.GetStatus(pb.GetStatusRequest())
    assert (after.sessions.total, after.sessions.active) == (2, 1)
    assert (after.processes.total, after.processes.busy) == (1, 0)


async def test_get_health_says_ok_with_uptime_and_the_time(iris: Iris) -> None:
    before_ms = time.time_ns() // 1_000_000
    first = await iris.stub.GetHealth(pb.GetHealthRequest())
    await asyncio.sleep(0.05)
    second = await iris.stub.GetHealth(pb.GetHealthRequest())
    after_ms = time.time_ns() // 1_000_000
    assert (first.status, second.status) == ("ok", "ok")
    assert before_ms <= first.timestamp <= second.timestamp <= after_ms
    assert second.uptime >= first.uptime + 50


# --- GetCache, ClearCache ----------------------------------------------------------------------------------


async def test_get_cache_by_session_id_returns_the_pairs_report(iris: Iris) -> None:
    first = await send(iris, "say one")
    second = await send(iris, "say two")
    await send(iris, "say other pair", to="beta")
    cache = await iris.stub.GetCache(pb.GetCacheRequest(session_id=first.session_id))
    report = cache.report
    assert (report.team, report.from_team, report.session_id) == ("alpha", "caller", first.session_id)
    assert report.has_cache
    assert [(e.message_id, e.response) for e in report.entries] == [
        (first.message_id, "one"),
        (second.message_id, "two"),
    ]
    assert (report.stats.total_entries, report.stats.completed_entries) == (2, 2)
    by_pair = await report_of(iris)
    assert list(report.entries) == list(by_pair.entries)


async def test_clear_cache_removes_the_turn_records_but_keeps_the_conversation(iris: Iris) -> None:
    told = await send(iris, "remember x")
    cleared = await iris.stub.ClearCache(pb.ClearCacheRequest(session_id=told.session_id))
    assert cleared.session_id == told.session_id and cleared.removed_entries == 1
    emptied = (await iris.stub.GetCache(pb.GetCacheRequest(session_id=told.session_id))).report
    assert list(emptied.entries) == [] and emptied.session_id == told.session_id
    recalled = await send(iris, "recall")
    assert recalled.response == "you told me: x"
    assert recalled.session_id == told.session_id
    assert [e.message_id for e in (await report_of(iris)).entries] == [recalled.message_id]


async def test_clear_cache_keeps_the_record_of_a_turn_still_running(iris: Iris) -> None:
    done = await send(iris, "say finished")
    running = await send(iris, "slow 20 100", timeout_ms=-1)
    await wait_until_running(iris)
    cleared = await iris.stub.ClearCache(pb.ClearCacheRequest(session_id=done.session_id))
    assert cleared.removed_entries == 1
    async with asyncio.timeout(60):
        while (entry := (await report_of(iris)).entries[-1]).status != "completed":
            await asyncio.sleep(0.05)
    entries = (await report_of(iris)).entries
    assert [e.message_id for e in entries] == [running.message_id]
    assert entry.response == "".join(f"chunk {i} " for i in range(1, 21))


@pytest.mark.parametrize("rpc", ["GetCache", "ClearCache"])
async def test_an_unknown_session_id_is_not_found(iris: Iris, rpc: str) -> None:
    await send(iris, "say something")
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        if rpc == "GetCache":
            await iris.stub.GetCache(pb.GetCacheRequest(session_id=unknown))
        else:
            await iris.stub.ClearCache(pb.ClearCacheRequest(session_id=unknown))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(raised.value) == "SessionNotFoundError"
    assert len((await report_of(iris)).entries) == 1
