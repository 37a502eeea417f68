"""What metrics add to a warm turn: warm SendMessage p50 with metrics on against ``settings.metricsEnabled:
false`` (no Metrics interceptor, no hooks, no /metrics), two ``iris serve`` children on one offline model,
samples interleaved one for one so drift on a shared machine hits both alike.

``python -m bench.metrics_overhead [--warm N]`` prints the result as JSON; ``bench.run`` can call
``metrics_overhead(work, model_url, runs)`` with its own model. The access log (one INFO line a call) is on
in both: it is logging, not metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc
import yaml

from bench.common import spawn_logged, stop, summary, timed
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_offline_model import offline_model_env

__all__ = ["metrics_overhead"]


async def _serve(work: Path, model_url: str, *, metrics: bool) -> tuple[asyncio.subprocess.Process, int, str]:
    """Start ``iris serve`` (gRPC only) in ``work`` with metrics on or off; return it, its port and key."""
    (work / "team").mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    env = {**offline_model_env(model_url), "HOME": str(work / "claude-home")}
    settings = {"env": env, "idleTimeout": 0, "metricsEnabled": metrics}
    config.write_text(
        yaml.safe_dump(
            {
                "settings": settings,
                "api": {"rateLimit": {"maxRequests": 1_000_000}},  # measure the check, never trip it
                "teams": {"bench": {"path": str(work / "team"), "grantPermission": "yes"}},
            }
        )
    )
    server, port = await spawn_logged(
        work,
        "iris",
        rb"gRPC listening on 127\.0\.0\.1:(\d+)",
        sys.executable,
        *("-m", "iris_app.cli", "serve", "--config", str(config), "--home", str(work / "home")),
        *("--grpc-port", "0", "--no-http"),
    )
    return server, int(port), (work / "home" / "admin.key").read_text().strip()


async def metrics_overhead(work: Path, model_url: str, runs: int = 200) -> dict[str, Any]:
    """Return warm SendMessage summaries (ms) with metrics on and off, and the paired p50 difference."""
    sides: dict[str, list[float]] = {"on": [], "off": []}
    servers = []
    try:
        stubs = {}
        channels = []
        for side in sides:
            server, port, key = await _serve(work / side, model_url, metrics=side == "on")
            servers.append(server)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            channels.append(channel)
            stubs[side] = (iris_pb2_grpc.IrisStub(channel), (("authorization", f"Bearer {key}"),))

        async def send(side: str) -> None:
            stub, metadata = stubs[side]
            request = pb.SendMessageRequest(from_team="bench", to_team="bench", message="say hi")
            reply = await stub.SendMessage(request, metadata=metadata, timeout=60)
            assert reply.status == "completed", reply

        for side in sides:  # warm-up: the process, the session, connections, caches
            await timed(10, lambda side=side: send(side))  # type: ignore[misc]
        for _ in range(runs):
            for side in sides:
                sides[side] += await timed(1, lambda side=side: send(side))  # type: ignore[misc]
        for channel in channels:
            await channel.close()
    finally:
        for server in servers:
            await stop(server)
    return {
        "metrics_on": summary(sides["on"]),
        "metrics_off": summary(sides["off"]),
        "paired_difference_p50_ms": statistics.median(
            a - b for a, b in zip(sides["on"], sides["off"], strict=True)
        ),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=200, help="warm turns per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model, url = await spawn_logged(
            work, "model", rb"serving at (http://[0-9.:]+)", sys.executable, "-m", "iris_offline_model"
        )
        try:
            result = await metrics_overhead(work, url.decode(), args.warm)
        finally:
            await stop(model)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
