"""WatchEvents: what happens inside Iris as numbered events, over gRPC and SSE, resumable with no loss."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.gateway.conftest import gateway_for
from tests.harness import Iris, send, start_iris, with_key, write_config

FAST_HEALTH = {"healthEventInterval": 200}


def fast_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, settings=FAST_HEALTH)


async def watch_until(
    stub: iris_pb2_grpc.IrisAsyncStub, request: pb.WatchEventsRequest, done: str, started: asyncio.Event
) -> list[pb.WatchEventsResponse]:
    """Collect events until one of kind ``done``; a health event sets ``started`` (the stream is live)."""
    seen: list[pb.WatchEventsResponse] = []
    async with asyncio.timeout(60):
        async for event in stub.WatchEvents(request):
            if event.kind == "health":
                started.set()
                continue
            seen.append(event)
            if event.kind == done:
                return seen
    raise AssertionError(f"the stream ended before {done}")


async def test_a_turn_is_seen_as_numbered_events_in_order(tmp_path: Path) -> None:
    async with start_iris(tmp_path, fast_config(tmp_path)) as iris:
        live = asyncio.Event()
        watching = asyncio.create_task(
            watch_until(iris.stub, pb.WatchEventsRequest(team="alpha"), "turn.completed", live)
        )
        await asyncio.wait_for(live.wait(), 30)
        sent = await send(iris, 'tool Bash {"command": "echo hi", "description": "x"}')
        events = await watching
    kinds = [e.kind for e in events]
    assert kinds[0] == "process.spawned" and events[0].pid > 0
    assert kinds[1:3] == ["turn.started", "turn.tool_use"] and events[2].tool == "Bash"
    assert "turn.chunk" in kinds and kinds[-1] == "turn.completed" and events[-1].status == "completed"
    assert all(e.message_id == sent.message_id for e in events[1:])
    ids = [e.id for e in events]
    assert ids == sorted(set(ids))


async def test_a_dropped_sse_client_resumes_with_last_event_id_and_loses_nothing(tmp_path: Path) -> None:
    async with start_iris(tmp_path, fast_config(tmp_path)) as iris, gateway_for(iris) as gateway:
        live = asyncio.Event()
        whole = asyncio.create_task(
            watch_until(iris.stub, pb.WatchEventsRequest(team="alpha"), "turn.completed", live)
        )
        await asyncio.wait_for(live.wait(), 30)
        accepted = await send(iris, "slow 20 50", timeout_ms=-1)
        params = {"team": "alpha", "afterId": "1"}  # every kept event of alpha, from the first
        first: list[tuple[int, str]] = []
        async for event_id, kind in sse_events(gateway, params, {}):
            if kind == "health":
                continue
            first.append((event_id, kind))
            if kind == "turn.chunk" and len(first) > 5:
                break  # the client drops mid-turn
        rest: list[tuple[int, str]] = []
        async for event_id, kind in sse_events(
            gateway, {"team": "alpha"}, {"last-event-id": str(first[-1][0])}
        ):
            if kind == "health":
                continue
            rest.append((event_id, kind))
            if kind == "turn.completed":
                break
        expected = [(e.id, e.kind) for e in await whole]
    got = first + rest
    assert [i for i, _ in got] == sorted({i for i, _ in got})  # none repeated, in order
    assert [pair for pair in got if pair[0] >= expected[0][0]] == expected  # none lost
    assert rest and accepted.message_id


async def sse_events(
    gateway: object, params: dict[str, str], headers: dict[str, str]
) -> AsyncIterator[tuple[int, str]]:
    """Read ``GET /api/v1/events`` as SSE: yield each event's (id, kind)."""
    client: httpx.AsyncClient = gateway.client  # type: ignore[attr-defined]
    async with (
        asyncio.timeout(60),
        client.stream(
            "GET", "/api/v1/events", params=params, headers={"accept": "text/event-stream", **headers}
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "id" in fields:
                assert json.loads(fields["data"])["kind"] == fields["event"]
                yield int(fields["id"]), fields["event"]
            fields = {}


async def test_kept_events_survive_a_restart_and_ids_keep_growing(tmp_path: Path) -> None:
    config = fast_config(tmp_path)
    async with start_iris(tmp_path, config) as iris:
        await send(iris, "say before")
    async with start_iris(tmp_path, config) as iris:
        await send(iris, "say after")
        kept: list[pb.WatchEventsResponse] = []
        async with asyncio.timeout(30):
            async for event in iris.stub.WatchEvents(
                pb.WatchEventsRequest(after_id=1, kinds=["turn.completed"])
            ):
                kept.append(event)
                if len(kept) == 2:
                    break
    assert [e.kind for e in kept] == ["turn.completed"] * 2 and kept[0].id < kept[1].id


async def test_a_key_sees_only_the_events_of_its_own_pairs(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(
        pb.CreateApiKeyRequest(name="eve", permissions=["cache:read", "team:tell"])
    )
    await send(iris, "say not eve's")  # the admin key, as "caller"
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
        eve = iris_pb2_grpc.IrisStub(channel)
        await eve.SendMessage(pb.SendMessageRequest(to_team="beta", message="say eve's"), timeout=60)
        seen: list[pb.WatchEventsResponse] = []
        async with asyncio.timeout(30):
            async for event in eve.WatchEvents(pb.WatchEventsRequest(after_id=1, kinds=["turn."])):
                seen.append(event)
                if event.kind == "turn.completed":
                    break
    assert seen and {e.from_team for e in seen} == {"eve"}


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (pb.WatchEventsRequest(after_id=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.WatchEventsRequest(team="nobody"), grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_watch_requests_are_refused(
    iris: Iris, request_: pb.WatchEventsRequest, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async with asyncio.timeout(10):
            async for _ in iris.stub.WatchEvents(request_):
                break
    assert refused.value.code() is code


async def test_health_events_say_how_iris_is(tmp_path: Path) -> None:
    async with start_iris(tmp_path, fast_config(tmp_path)) as iris:
        health: list[pb.WatchEventsResponse] = []
        async with asyncio.timeout(30):
            # An afterId from the future means "from now on".
            async for event in iris.stub.WatchEvents(
                pb.WatchEventsRequest(kinds=["health"], after_id=10**12)
            ):
                health.append(event)
                break
    (event,) = health
    assert event.kind == "health" and event.health.max_processes == 10 and event.health.uptime > 0
