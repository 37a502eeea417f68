"""What each client adds to a warm Ask: the client's ``ask`` against the raw generated stub's Ask, on the
running ``iris serve`` of ``bench.run``, samples interleaved, the same request, key metadata and deadline.

Python is measured here; Go and TypeScript by their own benchmarks (``clients/go``: ``go test -bench
AskPaired``, ``clients/ts``: ``bench/ask.js``), run as children of this one against the same Iris.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iris_client import IrisClient
from iris_client.call_options import ASK_GRACE_S, DEFAULT_ASK_TIMEOUT_S
from iris_client.generated.iris.v1 import iris_pb2 as pb

__all__ = ["client_overheads"]

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "say hi"


def _python(address: str, key: str, runs: int) -> dict[str, float]:
    with IrisClient(address, api_key=key, from_team="bench-py") as iris:
        team = iris.teams.bench
        request = pb.AskRequest(
            team="bench", question=QUESTION, timeout=round(DEFAULT_ASK_TIMEOUT_S * 1000), from_team="bench-py"
        )
        metadata = (("authorization", f"Bearer {key}"),)

        def client() -> None:
            assert team.ask(QUESTION).response == "hi"

        def raw() -> None:
            reply = iris.stub.Ask(request, metadata=metadata, timeout=DEFAULT_ASK_TIMEOUT_S + ASK_GRACE_S)
            assert reply.response == "hi"

        for _ in range(10):
            client()
            raw()
        samples: dict[str, list[float]] = {"client": [], "raw": []}
        for i in range(runs):
            pair: list[tuple[str, Callable[[], None]]] = [("client", client), ("raw", raw)]
            for name, action in pair if i % 2 == 0 else reversed(pair):
                started = time.perf_counter()
                action()
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=True)
    return done.stdout


def _go(address: str, key: str, runs: int) -> dict[str, float]:
    env = {**os.environ, "IRIS_ADDRESS": address, "IRIS_API_KEY": key, "IRIS_BENCH_TEAM": "bench"}
    bench = ["-run", "^$", "-bench", "^BenchmarkAskPaired$", "-benchtime", f"{runs}x"]
    out = _run(["go", "test", "./iris", *bench], ROOT / "clients" / "go", env)
    p50 = {m[2]: float(m[1]) for m in re.finditer(r"([\d.]+) (client|raw)-p50-ms", out)}
    assert set(p50) == {"client", "raw"}, out
    return p50


def _ts(address: str, key: str, runs: int) -> dict[str, float]:
    env = {**os.environ, "IRIS_ADDRESS": address, "IRIS_API_KEY": key, "IRIS_BENCH_TEAM": "bench"}
    _run(["npm", "run", "--silent", "build"], ROOT / "clients" / "ts", env)
    out = _run(["node", "dist/bench/ask.js", str(runs)], ROOT / "clients" / "ts", env)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return {"client": float(result["client_p50_ms"]), "raw": float(result["raw_p50_ms"])}


async def client_overheads(address: str, key: str, runs: int) -> dict[str, dict[str, float]]:
    """Warm Ask p50 through each language's client and through its raw stub, in ms."""
    results: dict[str, dict[str, float]] = {}
    for name, measure in (("python", _python), ("go", _go), ("typescript", _ts)):
        results[name] = await asyncio.to_thread(measure, address, key, runs)
    return results
