"""Tell over HTTP: SSE for clients that ask for it, NDJSON otherwise, and what a hang-up does."""

from __future__ import annotations

import asyncio
import json

import httpx
from httpx_sse import aconnect_sse

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.gateway.conftest import Gateway
from tests.harness import audit_entries

TELL = {"fromTeam": "caller", "message": "chunks a|b|c"}


async def test_sse_streams_a_tell_in_order_ending_with_complete(gateway: Gateway) -> None:
    async with asyncio.timeout(60):
        async with aconnect_sse(gateway.client, "POST", "/api/v1/teams/alpha/stream", json=TELL) as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            assert "X-RateLimit-Remaining" in source.response.headers
            events = [(e.event, json.loads(e.data)) async for e in source.aiter_sse()]
    assert [name for name, _ in events] == ["start", "chunk", "chunk", "chunk", "complete"]
    assert [data["text"] for _, data in events[1:4]] == ["a", "b", "c"]
    start, complete = events[0][1], events[-1][1]
    assert start["team"] == "alpha" and start["messageId"] == complete["messageId"]
    assert complete["status"] == "completed" and complete["response"] == "abc"
    assert isinstance(complete["duration"], int)


async def test_ndjson_streams_result_lines_when_sse_is_not_asked_for(gateway: Gateway) -> None:
    async with asyncio.timeout(60):
        async with gateway.client.stream("POST", "/api/v1/teams/alpha/stream", json=TELL) as response:
            assert response.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) async for line in response.aiter_lines() if line]
    results = [line["result"] for line in lines]
    assert [next(iter(r)) for r in results] == ["start", "chunk", "chunk", "chunk", "complete"]
    assert results[-1]["complete"]["response"] == "abc"


async def test_an_early_failure_is_a_real_http_error_not_a_stream(gateway: Gateway) -> None:
    async with asyncio.timeout(30):
        response = await gateway.client.post(
            "/api/v1/teams/nobody/stream", json=TELL, headers={"accept": "text/event-stream"}
        )
    assert response.status_code == 404
    assert response.json()["error"] == "TeamNotFoundError"


def tell_outcomes(gateway: Gateway) -> list[str]:
    """The outcomes of Tell calls in the server's audit log (written when the server-side call ends)."""
    return [e.outcome for e in audit_entries(gateway.iris.home) if e.method == "Tell"]


async def test_a_client_that_disconnects_stops_the_stream_but_not_the_turn(gateway: Gateway) -> None:
    """Hanging up cancels the gateway's gRPC call (the server sees CANCELLED, as when a gRPC Tell caller
    hangs up); the turn was accepted and runs to its end, recorded, as the contract's Tell documents."""
    request = {"fromTeam": "caller", "message": "slow 20 50"}
    async with asyncio.timeout(60):
        async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.client.headers) as client:
            async with aconnect_sse(client, "POST", "/api/v1/teams/alpha/stream", json=request) as source:
                events = source.aiter_sse()
                start = json.loads((await anext(events)).data)
                assert (await anext(events)).event == "chunk"
        while not tell_outcomes(gateway):
            await asyncio.sleep(0.02)
        assert tell_outcomes(gateway) == ["CANCELLED"]
        while True:
            report = await gateway.iris.stub.SessionReport(
                pb.SessionReportRequest(team="alpha", from_team="caller")
            )
            entry = next(e for e in report.entries if e.message_id == start["messageId"])
            if entry.status not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
    assert entry.status == "completed"
    assert entry.response.endswith("chunk 20 ")
