"""Speed and scale: a new pair's first answer with and without warm spares.

One ``iris serve`` (gRPC only) on the bench's offline model, with two teams in the same folder: ``spared``
(``warmSpares: 1``) and ``cold`` (none). A sample is the first SendMessage of a brand-new pair to each team,
the two interleaved, then TeamSleep of both pairs; between samples the bench waits until the spared team's
spare has been started again (its process is up, then a pause for its handshake, which /proc cannot see).
Warm SendMessage samples on one existing pair, interleaved too, give the warm turn of the same run, the
yardstick of the target (a spared first answer within 2x a warm turn).

``python -m bench.placements [--runs N]`` prints the result as JSON; ``bench.run`` calls ``warm_spares``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import yaml

from bench.common import spawn_logged, stop, summary
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_offline_model import offline_model_env

__all__ = ["warm_spares"]

_HANDSHAKE_PAUSE_S = 1.5
"""Time a spare's process, once it exists, is given to finish starting (Claude Code's start is ~0.3 s)."""


def _live_in(folder: Path) -> int:
    """Count live processes whose working directory is ``folder`` (the team's Claude Code processes)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == str(folder):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                count += state != "Z"
        except OSError:
            continue
    return count


async def _serve(work: Path, model_url: str) -> tuple[asyncio.subprocess.Process, int, str, Path]:
    """Start ``iris serve`` with a spared and a cold team; return it, its port, key and spared folder."""
    spared, cold = work / "spared", work / "cold"
    spared.mkdir(parents=True, exist_ok=True)
    cold.mkdir(parents=True, exist_ok=True)
    env = {**offline_model_env(model_url), "HOME": str(work / "claude-home")}
    config = work / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "settings": {"env": env, "idleTimeout": 0, "maxProcesses": 10},
                "api": {"rateLimit": {"maxRequests": 1_000_000}},
                "teams": {
                    "spared": {"path": str(spared), "grantPermission": "yes", "warmSpares": 1},
                    "cold": {"path": str(cold), "grantPermission": "yes"},
                },
            }
        )
    )
    server, port = await spawn_logged(
        work,
        "iris-spares",
        rb"gRPC listening on 127\.0\.0\.1:(\d+)",
        sys.executable,
        *("-m", "iris_app.cli", "serve", "--config", str(config), "--home", str(work / "home")),
        *("--grpc-port", "0", "--no-http"),
    )
    return server, int(port), (work / "home" / "admin.key").read_text().strip(), spared


async def _spare_ready(folder: Path) -> None:
    """Wait (bounded) until the spared team has exactly its spare running, then for its handshake."""
    async with asyncio.timeout(30):
        while _live_in(folder) != 1:
            await asyncio.sleep(0.02)
    await asyncio.sleep(_HANDSHAKE_PAUSE_S)


async def warm_spares(work: Path, model_url: str, runs: int = 10) -> dict[str, Any]:
    """Return first-answer summaries (ms) of new pairs with and without a spare, and the warm turn's."""
    server, port, key, spared_folder = await _serve(work, model_url)
    metadata = (("authorization", f"Bearer {key}"),)
    samples: dict[str, list[float]] = {"spared": [], "cold": [], "warm": []}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = iris_pb2_grpc.IrisStub(channel)

            async def ask(frm: str, to: str) -> float:
                started = time.perf_counter()
                reply = await stub.SendMessage(
                    pb.SendMessageRequest(from_team=frm, to_team=to, message="say ready"),
                    metadata=metadata,
                    timeout=60,
                )
                assert reply.status == "completed", reply
                return (time.perf_counter() - started) * 1000

            await ask("warm", "cold")  # the warm pair's process, started once
            for i in range(runs):
                await _spare_ready(spared_folder)
                order = ("spared", "cold") if i % 2 == 0 else ("cold", "spared")
                for team in order:
                    samples[team].append(await ask(f"new{i}", team))
                for _ in range(3):
                    samples["warm"].append(await ask("warm", "cold"))
                for team in ("spared", "cold"):
                    await stub.TeamSleep(
                        pb.TeamSleepRequest(team=team, from_team=f"new{i}"), metadata=metadata, timeout=60
                    )
    finally:
        await stop(server)
    warm_p50 = statistics.median(samples["warm"])
    return {
        "spared_first": summary(samples["spared"]),
        "cold_first": summary(samples["cold"]),
        "warm": summary(samples["warm"]),
        "spared_over_warm": statistics.median(samples["spared"]) / warm_p50,
        "cold_over_warm": statistics.median(samples["cold"]) / warm_p50,
    }


async def main() -> None:
    """Run the warm-spares measurement alone against an offline model of its own."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="iris-bench-spares-") as tmp:
        work = Path(tmp)
        model, model_url = await spawn_logged(
            work, "model", rb"serving at (http://[0-9.:]+)", sys.executable, "-m", "iris_offline_model"
        )
        try:
            result = await warm_spares(work, model_url.decode(), args.runs)
        finally:
            await stop(model)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
