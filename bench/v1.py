"""Benchmarks of the programmatic v1 API, on the running ``iris serve`` of ``bench.run``.

- Execute → webhook received: from the Execute call to the signed POST arriving at a local receiver.
- WatchEvents fan-out: 50 subscribers watching while turns stream chunks; events delivered per second to
  all of them together, and the CPU Iris used meanwhile (from /proc).
- History: ListMessages p50 on a record of 100 000 messages (a second ``iris serve``, its home bulk-filled).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iris_app.rest_server import serving_app
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.store import Store

__all__ = [
    "HISTORY_RECORDS",
    "SUBSCRIBERS",
    "execute_to_webhook",
    "fill_history",
    "history_query",
    "watch_fan_out",
]

SUBSCRIBERS = 50
HISTORY_RECORDS = 100_000
_CHUNKS = "chunks " + "|".join(f"c{i}" for i in range(50))
"""A turn of 50 chunks: 52+ events (started, chunks, completed) for the fan-out."""

Summary = Callable[[list[float]], dict[str, float]]


async def execute_to_webhook(
    stub: iris_pb2_grpc.IrisAsyncStub, key: Any, runs: int, summary: Summary
) -> dict[str, float]:
    """Time Execute → the receiver's POST, ``runs`` times, one job at a time."""
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def hook(request: Request) -> Response:
        await request.body()
        arrived.put_nowait(time.perf_counter())
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    samples: list[float] = []
    async with serving_app(app, host="127.0.0.1", port=0) as port:
        callback = pb.WebhookCallback(url=f"http://127.0.0.1:{port}/hook")
        for _ in range(runs):
            started = time.perf_counter()
            await stub.Execute(
                pb.ExecuteRequest(team="bench", task="say done", from_team="bench", callback=callback),
                metadata=key,
            )
            async with asyncio.timeout(60):
                samples.append((await arrived.get() - started) * 1000)
    return summary(samples)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watch_fan_out(
    stub: iris_pb2_grpc.IrisAsyncStub, key: Any, iris_pid: int, turns: int
) -> dict[str, float]:
    """Run ``turns`` streaming turns while 50 subscribers watch; return events/s delivered and Iris's CPU."""
    received = [0] * SUBSCRIBERS
    live = asyncio.Event()
    ready = [False] * SUBSCRIBERS

    async def subscriber(index: int) -> None:
        request = pb.WatchEventsRequest(team="bench", kinds=["turn.", "health"])
        async for event in stub.WatchEvents(request, metadata=key):
            if event.kind == "health":
                ready[index] = True
                if all(ready):
                    live.set()
                continue
            received[index] += 1

    watchers = [asyncio.create_task(subscriber(i)) for i in range(SUBSCRIBERS)]
    try:
        async with asyncio.timeout(30):
            await live.wait()
        cpu_before, started = _cpu_seconds(iris_pid), time.perf_counter()
        for _ in range(turns):
            reply = await stub.SendMessage(
                pb.SendMessageRequest(from_team="bench", to_team="bench", message=_CHUNKS), metadata=key
            )
            assert reply.status == "completed", reply
        await asyncio.sleep(0.5)  # the last events reach every subscriber
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(iris_pid) - cpu_before
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    total = sum(received)
    return {
        "subscribers": SUBSCRIBERS,
        "events_delivered": total,
        "events_per_second": total / elapsed,
        "iris_cpu_percent": 100 * cpu / elapsed,
        "seconds": elapsed,
    }


async def fill_history(home: Path, records: int) -> None:
    """Write ``records`` ended messages into a new record at ``home`` (schema by Store, rows in bulk)."""
    async with Store(home / "iris.db") as store:
        session = await store.session_id_for("bench", "bench")
    now = int(time.time() * 1000)
    rows = [
        (
            f"msg_hist{i:07d}",
            session,
            "bench",
            "bench" if i % 2 else "other",
            f"question {i}",
            "completed" if i % 5 else "error",
            f"answer {i}",
            now - (records - i) * 1000,
        )
        for i in range(records)
    ]
    with sqlite3.connect(home / "iris.db") as db:
        db.executemany(
            "INSERT INTO turns (message_id, session_id, from_team, to_team, request, status, response, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


async def history_query(
    start_iris: Callable[[Path], Awaitable[tuple[Any, int]]],
    stop: Callable[[Any], Awaitable[None]],
    work: Path,
    runs: int,
    summary: Summary,
) -> dict[str, Any]:
    """Time ListMessages on 100 000 records: the newest page, a filtered page, and a deep page."""
    home = work / "history-home"
    home.mkdir()
    await fill_history(home, HISTORY_RECORDS)
    server, port = await start_iris(home)
    try:
        key = (("authorization", "Bearer " + (home / "admin.key").read_text().strip()),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = iris_pb2_grpc.IrisStub(channel)
            queries = {
                "newest_page": pb.ListMessagesRequest(),
                "team_and_status": pb.ListMessagesRequest(team="bench", status="failed"),
                "page_1000": pb.ListMessagesRequest(page=1000, limit=50),
            }
            result: dict[str, Any] = {"records": HISTORY_RECORDS}
            for name, request in queries.items():
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    reply = await stub.ListMessages(request, metadata=key)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert reply.messages, name
                result[name] = summary(samples)
    finally:
        await stop(server)
    return result
