"""What tracing costs: a warm SendMessage with tracing on (SDK, batched OTLP export) against tracing off.

Two ``iris serve`` of one config side by side on the same offline model: one with no ``OTEL_*`` (tracing off,
the default), one with ``OTEL_EXPORTER_OTLP_ENDPOINT`` at a sink in this process that accepts every export,
so its spans are made, batched, encoded and sent as they would be to a collector. Samples alternate one for
one, so drift on a shared machine hits both alike. ``bench.run`` can call ``tracing_overhead`` with its own
``start_iris``, ``stop`` and ``summary``; ``python -m bench.tracing`` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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

__all__ = ["tracing_overhead"]

Start = Callable[[Path, str, Path, str], Awaitable[tuple[asyncio.subprocess.Process, int, int]]]
"""``bench.run.start_iris``: (work, model url, home, name) -> (process, gRPC port, REST port)."""
Stop = Callable[[asyncio.subprocess.Process], Awaitable[None]]
Summary = Callable[[list[float]], dict[str, float]]


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Start a child with exactly these OTEL_* variables (none of the caller's own)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        for name in values:
            os.environ.pop(name, None)
        os.environ.update(saved)


async def tracing_overhead(
    start: Start, stop: Stop, work: Path, model_url: str, runs: int, summary: Summary
) -> dict[str, Any]:
    """Return warm SendMessage samples of an untraced and a traced Iris, and what the traced one exported."""
    exported = {"requests": 0, "bytes": 0}

    async def traces(request: Request) -> Response:
        body = await request.body()
        exported["requests"] += 1
        exported["bytes"] += len(body)
        return Response(b"", media_type="application/x-protobuf")  # an empty ExportTraceServiceResponse

    sink = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serving_app(sink, host="127.0.0.1", port=0) as sink_port:
        with _environ():
            untraced, off_port, _ = await start(work, model_url, work / "home-untraced", "iris-untraced")
        with _environ(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}", OTEL_BSP_SCHEDULE_DELAY="500"
        ):
            traced, on_port, _ = await start(work, model_url, work / "home-traced", "iris-traced")
        try:
            sides = []
            for home, port in ((work / "home-untraced", off_port), (work / "home-traced", on_port)):
                key = (("authorization", "Bearer " + (home / "admin.key").read_text().strip()),)
                sides.append((grpc.aio.insecure_channel(f"127.0.0.1:{port}"), key))
            samples: list[list[float]] = [[], []]

            async def send(side: int) -> float:
                channel, key = sides[side]
                stub = iris_pb2_grpc.IrisStub(channel)
                request = pb.SendMessageRequest(from_team="bench", to_team="bench", message="say hi")
                started = time.perf_counter()
                reply = await stub.SendMessage(request, metadata=key, timeout=60)
                assert reply.status == "completed", reply
                return (time.perf_counter() - started) * 1000

            try:
                for _ in range(10):  # warm: both processes started, caches hot
                    await send(0)
                    await send(1)
                for i in range(runs):
                    for side in (0, 1) if i % 2 == 0 else (1, 0):
                        samples[side].append(await send(side))
            finally:
                for channel, _ in sides:
                    await channel.close()
        finally:
            await stop(untraced)
            await stop(traced)  # its shutdown flushes what is still batched to the sink
    return {
        "off": summary(samples[0]),
        "on": summary(samples[1]),
        "paired_difference_p50_ms": statistics.median(on - off for off, on in zip(*samples, strict=True)),
        "exported": exported,
    }


async def main() -> None:
    from bench.common import spawn_logged, stop, summary
    from bench.run import start_iris

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="warm SendMessages per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="iris-bench-tracing-") as tmp:
        work = Path(tmp)
        model, url = await spawn_logged(
            work, "model", rb"serving at (http://[0-9.:]+)", sys.executable, "-m", "iris_offline_model"
        )
        try:
            result = await tracing_overhead(start_iris, stop, work, url.decode(), args.runs, summary)
        finally:
            await stop(model)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
