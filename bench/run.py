"""make bench: what Iris adds to a Claude Code turn, measured against the same turn made directly.

One run, one machine, one offline model (its own process: python -m iris_offline_model) for both:
- direct: ClaudeSDKClient in this process (connect + first turn; warm turns), sample for sample interleaved
  with
- Iris: `iris serve` as a child process (auth, rate limit and audit on), its team pointed at the same model,
  called over gRPC from here (cold first answer from a sleeping team; warm SendMessage; Tell time to first
  chunk).
So the Iris column differs from the direct one by exactly what Iris adds: gRPC, the pool, the record.

Results go to bench/results/<UTC time>.json (and latest.json) and replace the table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import httpx2
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK", "1")

from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage  # noqa: E402

from bench import v1  # noqa: E402
from bench.clients import client_overheads  # noqa: E402
from bench.common import children_running, cpu_ms, rss_mb, spawn_logged, stop, summary, timed  # noqa: E402
from bench.metrics_overhead import metrics_overhead  # noqa: E402
from bench.tracing import tracing_overhead  # noqa: E402
from iris_client.generated.iris.v1 import iris_pb2 as pb  # noqa: E402
from iris_client.generated.iris.v1 import iris_pb2_grpc  # noqa: E402
from iris_offline_model import offline_model_env  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


async def start_iris(
    work: Path, model_url: str, home: Path | None = None, name: str = "iris"
) -> tuple[asyncio.subprocess.Process, int, int]:
    teams = work / "teams" / "bench"
    teams.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    env = {**offline_model_env(model_url), "HOME": str(work / "iris-claude-home")}
    config.write_text(
        yaml.safe_dump(
            {
                "settings": {"env": env, "idleTimeout": 0, "healthEventInterval": 200},
                "api": {
                    "rateLimit": {"maxRequests": 1_000_000},  # measure the check, never trip it
                    "webhooks": {"allowPrivateNetworks": True},  # the receiver is on loopback
                },
                "teams": {
                    "bench": {"path": str(teams), "grantPermission": "yes"},
                    "other": {"path": str(teams), "grantPermission": "yes"},
                },
            }
        )
    )
    home = home or work / "home"
    server, port = await spawn_logged(
        work,
        name,
        rb"gRPC listening on 127\.0\.0\.1:(\d+)",
        sys.executable,
        "-m",
        "iris_app.cli",
        "serve",
        "--config",
        str(config),
        "--home",
        str(home),
        "--grpc-port",
        "0",
        "--http-port",
        "0",
    )
    log = work / f"{name}.log"
    async with asyncio.timeout(30):  # the line follows the gRPC one at once; polling a log has no event
        while not (rest := re.search(rb"REST listening on http://127\.0\.0\.1:(\d+)", log.read_bytes())):
            await asyncio.sleep(0.05)
    return server, int(port), int(rest[1])


async def measure(work: Path, model_url: str, cold_runs: int, warm_runs: int) -> dict[str, Any]:
    """Direct and Iris samples, interleaved one for one, so drift on a shared machine hits both alike."""
    env = {**offline_model_env(model_url), "HOME": str(work / "direct-home")}
    (work / "direct").mkdir()
    options = ClaudeAgentOptions(cwd=str(work / "direct"), env=env, include_partial_messages=True)

    async def turn(client: ClaudeSDKClient, text: str) -> None:
        await client.query(text)
        async for message in client.receive_response():
            if isinstance(message, ResultMessage):
                assert not message.is_error, message.result

    server, port, http_port = await start_iris(work, model_url)
    try:
        # The key goes as per-call metadata, as a Go or TypeScript client sends it (no client interceptor).
        key = (("authorization", "Bearer " + (work / "home" / "admin.key").read_text().strip()),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = iris_pb2_grpc.IrisStub(channel)

            async def send(text: str) -> None:
                reply = await stub.SendMessage(
                    pb.SendMessageRequest(from_team="bench", to_team="bench", message=text), metadata=key
                )
                assert reply.status == "completed", reply

            async def direct_cold() -> None:
                client = ClaudeSDKClient(options)
                await client.connect()
                try:
                    await turn(client, "say ready")
                finally:
                    await client.disconnect()

            async def iris_cold() -> float:
                await stub.TeamSleep(pb.TeamSleepRequest(team="bench", from_team="bench"), metadata=key)
                started = time.perf_counter()
                await send("say ready")
                return (time.perf_counter() - started) * 1000

            cold_direct: list[float] = []
            cold_iris: list[float] = []
            for _ in range(cold_runs):
                cold_direct += await timed(1, direct_cold)
                cold_iris.append(await iris_cold())

            client = ClaudeSDKClient(options)
            await client.connect()
            try:
                await timed(10, lambda: turn(client, "say warm"))
                await timed(10, lambda: send("say warm"))
                warm_direct: list[float] = []
                warm_iris: list[float] = []
                cpu_before = cpu_ms(server.pid)
                for i in range(warm_runs):
                    pair = [
                        (warm_direct, lambda: turn(client, "say hi")),
                        (warm_iris, lambda: send("say hi")),
                    ]
                    for samples, action in pair if i % 2 == 0 else reversed(pair):
                        samples += await timed(1, action)
                serve_cpu_per_turn = (cpu_ms(server.pid) - cpu_before) / warm_runs
            finally:
                await client.disconnect()

            async def first_chunk() -> float:
                started = time.perf_counter()
                first = 0.0
                async for event in stub.Tell(
                    pb.TellRequest(from_team="bench", to_team="bench", message="say hi"), metadata=key
                ):
                    if event.WhichOneof("event") == "chunk" and not first:
                        first = (time.perf_counter() - started) * 1000
                return first

            ttfc = [await first_chunk() for _ in range(warm_runs // 2)]
            rest = await rest_versus_grpc(stub, key, http_port, warm_runs)
            mcp = await mcp_versus_grpc(stub, key, port, http_port, warm_runs // 2)
            webhook = await v1.execute_to_webhook(stub, key, max(warm_runs // 10, 10), summary)
            fan_out = await v1.watch_fan_out(stub, key, server.pid, max(warm_runs // 20, 5))

            async def second_iris(home: Path) -> tuple[asyncio.subprocess.Process, int]:
                started, grpc_port, _ = await start_iris(work, model_url, home, "iris-history")
                return started, grpc_port

            history = await v1.history_query(second_iris, stop, work, max(warm_runs // 2, 20), summary)
            key_text = key[0][1].removeprefix("Bearer ")
            clients = await client_overheads(f"127.0.0.1:{port}", key_text, max(warm_runs // 2, 20))
            half = max(warm_runs // 2, 20)
            observability = {
                "metrics": await metrics_overhead(work / "metrics-bench", model_url, half),
                "tracing": await tracing_overhead(start_iris, stop, work, model_url, half, summary),
            }
    finally:
        await stop(server)
    return {
        "direct": {"cold_connect_and_first_turn": summary(cold_direct), "warm_turn": summary(warm_direct)},
        "iris": {
            "cold_first_answer": summary(cold_iris),
            "warm_send_message": summary(warm_iris),
            "tell_time_to_first_chunk": summary(ttfc),
            "serve_cpu_ms_per_warm_turn": serve_cpu_per_turn,
        },
        "rest": rest,
        "mcp": mcp,
        "v1": {"execute_to_webhook": webhook, "watch_fan_out": fan_out, "history": history},
        "clients": clients,
        "observability": observability,
        "paired_warm_difference_p50_ms": statistics.median(
            i - d for i, d in zip(warm_iris, warm_direct, strict=True)
        ),
    }


async def rest_versus_grpc(stub: Any, key: Any, http_port: int, runs: int) -> dict[str, Any]:
    """The same calls through the REST gateway and directly over gRPC, interleaved (the gateway's cost)."""
    headers = {"authorization": key[0][1]}
    turn = {"toTeam": "bench", "fromTeam": "bench", "message": "say hi"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{http_port}", headers=headers, timeout=30
    ) as http:

        async def rest_list() -> None:
            assert (await http.get("/api/teams")).status_code == 200

        async def grpc_list() -> None:
            await stub.ListTeams(pb.ListTeamsRequest(), metadata=key)

        async def rest_send() -> None:
            reply = await http.post("/api/teams/tell", json=turn)
            assert reply.status_code == 200 and reply.json()["status"] == "completed"

        async def grpc_send() -> None:
            await stub.SendMessage(
                pb.SendMessageRequest(from_team="bench", to_team="bench", message="say hi"), metadata=key
            )

        async def sse_first_chunk() -> float:
            started = time.perf_counter()
            first = 0.0
            body = {"fromTeam": "bench", "message": "say hi"}
            async with http.stream(
                "POST", "/api/v1/teams/bench/stream", json=body, headers={"accept": "text/event-stream"}
            ) as response:
                async for line in response.aiter_lines():
                    if line == "event: chunk" and not first:
                        first = (time.perf_counter() - started) * 1000
            return first

        samples: dict[str, list[float]] = {name: [] for name in ("rl", "gl", "rs", "gs")}
        for _ in range(10):  # warm-up: connections, caches
            for warm_up in (rest_list, grpc_list, rest_send, grpc_send):
                await warm_up()
        for i in range(runs):
            pairs = [("rl", rest_list), ("gl", grpc_list)]
            for name, action in pairs if i % 2 == 0 else reversed(pairs):
                samples[name] += await timed(1, action)
        for i in range(runs // 2):
            pairs = [("rs", rest_send), ("gs", grpc_send)]
            for name, action in pairs if i % 2 == 0 else reversed(pairs):
                samples[name] += await timed(1, action)
        sse = [await sse_first_chunk() for _ in range(runs // 4)]
    return {
        "list_teams_rest": summary(samples["rl"]),
        "list_teams_grpc": summary(samples["gl"]),
        "send_message_rest": summary(samples["rs"]),
        "send_message_grpc": summary(samples["gs"]),
        "sse_time_to_first_chunk": summary(sse),
    }


async def mcp_versus_grpc(stub: Any, key: Any, port: int, http_port: int, runs: int) -> dict[str, Any]:
    """ask_message as Claude Code makes it (MCP over stdio, and over HTTP at /mcp) against SendMessage."""
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    stdio = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_adapter", "--target", f"127.0.0.1:{port}", "--from-team", "bench"],
        env={**os.environ, "IRIS_API_KEY": key[0][1].removeprefix("Bearer ")},
    )
    headers = {"authorization": key[0][1], "x-iris-from-team": "bench"}
    arguments = {"toTeam": "bench", "message": "say hi"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"http://127.0.0.1:{http_port}/mcp", http_client=http)) as over_http,
        Client(stdio) as over_stdio,
    ):

        async def ask(client: Any) -> None:
            result = await client.call_tool("ask_message", arguments)
            assert not result.is_error and result.structured_content["status"] == "completed", result

        async def grpc_send() -> None:
            await stub.SendMessage(
                pb.SendMessageRequest(from_team="bench", to_team="bench", message="say hi"), metadata=key
            )

        samples: dict[str, list[float]] = {name: [] for name in ("stdio", "http", "grpc")}
        actions: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("stdio", lambda: ask(over_stdio)),
            ("http", lambda: ask(over_http)),
            ("grpc", grpc_send),
        ]
        await ask(over_stdio)
        (adapter,) = children_running("mcp_adapter")
        adapter_rss_after_first_call = rss_mb(adapter)
        for _ in range(5):  # warm-up
            for _, action in actions:
                await action()
        adapter_cpu = cpu_ms(adapter)
        for i in range(runs):
            for name, action in actions[i % 3 :] + actions[: i % 3]:
                samples[name] += await timed(1, action)
        adapter_cpu_per_call = (cpu_ms(adapter) - adapter_cpu) / runs
    return {
        **{f"ask_message_{name}": summary(values) for name, values in samples.items()},
        "stdio_adapter_rss_mb_after_first_call": adapter_rss_after_first_call,
        "stdio_adapter_cpu_ms_per_call": adapter_cpu_per_call,
    }


def row(name: str, s: dict[str, float], digits: int = 1, target: str = "") -> str:
    """One Markdown table row of a summary."""
    cells = " | ".join(f"{s[k]:.{digits}f}" for k in ("p50", "p95", "min"))
    return f"| {name} | {s['n']:.0f} | {cells} | {target} |"


def table(result: dict[str, Any]) -> str:
    d, i = result["direct"], result["iris"]
    added = i["warm_send_message"]["p50"] - d["warm_turn"]["p50"]
    rows = [
        ("Cold: first message to a sleeping team → answer (Iris)", i["cold_first_answer"], "≤ 450 ms"),
        ("Cold: connect + first turn (direct ClaudeSDKClient)", d["cold_connect_and_first_turn"], ""),
        ("Warm SendMessage over gRPC (Iris)", i["warm_send_message"], ""),
        ("Warm turn (direct ClaudeSDKClient)", d["warm_turn"], ""),
        ("Tell: time to first chunk over gRPC (Iris)", i["tell_time_to_first_chunk"], ""),
    ]
    lines = [
        f"Run {result['when']} on {result['machine']} (Python {result['python']}, Claude Code "
        f"{result['claude_code']}).",
        "",
        "| Measure | n | p50 ms | p95 ms | min ms | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [row(name, s, target=target) for name, s, target in rows]
    r = result["rest"]
    lines += [
        row("ListTeams over REST (gateway)", r["list_teams_rest"], 2),
        row("ListTeams over gRPC", r["list_teams_grpc"], 2),
        row("Warm SendMessage over REST (gateway)", r["send_message_rest"]),
        row("Warm SendMessage over gRPC", r["send_message_grpc"]),
        row("SSE: time to first chunk (gateway)", r["sse_time_to_first_chunk"]),
        "",
        f"**The gateway adds {r['send_message_rest']['p50'] - r['send_message_grpc']['p50']:.1f} ms p50 to a "
        f"warm turn** (target ≤ 2 ms) and {r['list_teams_rest']['p50'] - r['list_teams_grpc']['p50']:.2f} ms "
        f"to ListTeams (REST/gRPC ratio {r['list_teams_rest']['p50'] / r['list_teams_grpc']['p50']:.1f}).",
    ]
    m = result.get("mcp")
    if m is not None:
        grpc_p50 = m["ask_message_grpc"]["p50"]
        lines += [
            "",
            "| MCP (ask_message, what Claude Code calls) | n | p50 ms | p95 ms | min ms | target |",
            "|---|---:|---:|---:|---:|---|",
            row("ask_message over MCP stdio (iris mcp)", m["ask_message_stdio"]),
            row("ask_message over MCP streamable HTTP (/mcp)", m["ask_message_http"]),
            row("The same turn: SendMessage over gRPC", m["ask_message_grpc"]),
            "",
            f"**The MCP adapter adds {m['ask_message_stdio']['p50'] - grpc_p50:.1f} ms p50 over stdio and "
            f"{m['ask_message_http']['p50'] - grpc_p50:.1f} ms over HTTP** to a warm turn (via Tell). "
            f"The stdio adapter holds {m['stdio_adapter_rss_mb_after_first_call']:.0f} MB after its first "
            f"call (target ≤ 50 MB) and spends {m['stdio_adapter_cpu_ms_per_call']:.1f} ms of CPU per call.",
        ]
    v = result.get("v1")
    if v is not None:
        h, f = v["history"], v["watch_fan_out"]
        lines += [
            "",
            "| The v1 API | n | p50 ms | p95 ms | min ms | target |",
            "|---|---:|---:|---:|---:|---|",
            row("Execute → signed webhook received (offline model)", v["execute_to_webhook"]),
            row(f"ListMessages, newest page of {h['records']:,} records", h["newest_page"], 2),
            row(f"ListMessages, team + status filter, {h['records']:,} records", h["team_and_status"], 2),
            row(f"ListMessages, page 1000 of {h['records']:,} records", h["page_1000"], 2),
            "",
            f"**WatchEvents fan-out: {f['events_per_second']:,.0f} events/s** delivered to "
            f"{f['subscribers']} subscribers together ({f['events_delivered']:,} events in "
            f"{f['seconds']:.1f} s of streaming turns), Iris at {f['iris_cpu_percent']:.0f}% of one core.",
        ]
    c = result.get("clients")
    if c is not None:
        lines += [
            "",
            "| Warm Ask p50 ms, one Iris, one turn | via the client | via the raw stub | the client adds |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {s['client']:.2f} | {s['raw']:.2f} | {s['client'] - s['raw']:+.2f} |"
            for name, s in c.items()
        ]
    o = result.get("observability")
    if o is not None:
        m, t = o["metrics"], o["tracing"]
        lines += [
            "",
            "| What metrics and tracing cost (warm SendMessage, two `iris serve` side by side) | n | p50 ms "
            "| p95 ms | min ms | target |",
            "|---|---:|---:|---:|---:|---|",
            row("Metrics on (the default)", m["metrics_on"]),
            row("Metrics off (settings.metricsEnabled: false)", m["metrics_off"]),
            row("Tracing on (SDK, batched OTLP export to a local sink)", t["on"]),
            row("Tracing off (the default)", t["off"]),
            "",
            f"**Metrics add {m['paired_difference_p50_ms']:+.2f} ms and tracing "
            f"{t['paired_difference_p50_ms']:+.2f} ms** to a warm turn (medians of paired differences; "
            f"{t['exported']['requests']} OTLP exports, {t['exported']['bytes']:,} bytes).",
        ]
    lines += [
        "",
        f"**Iris adds {added:.1f} ms p50 to a warm turn** (target ≤ 2 ms); the median of the paired "
        f"differences (each Iris turn against the direct turn next to it) is "
        f"{result['paired_warm_difference_p50_ms']:.1f} ms. `iris serve` spends "
        f"{i['serve_cpu_ms_per_warm_turn']:.1f} ms of CPU per warm turn (target ≤ 4 ms).",
    ]
    return "\n".join(lines)


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = result["when"].replace(":", "").replace("-", "")
    for name in (f"{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    DOC.write_text(f"{before}{BEGIN}\n{table(result)}\n{END}{after}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=200, help="warm turns per side")
    parser.add_argument("--cold", type=int, default=7, help="cold starts per side")
    args = parser.parse_args()
    from claude_agent_sdk._cli_version import __cli_version__

    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp:
        work = Path(tmp)
        model, url = await spawn_logged(
            work, "model", rb"serving at (http://[0-9.:]+)", sys.executable, "-m", "iris_offline_model"
        )
        try:
            measured = await measure(work, url.decode(), args.cold, args.warm)
        finally:
            await stop(model)
        result = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "claude_code": __cli_version__,
            **measured,
        }
    write(result)
    print(table(result))


if __name__ == "__main__":
    asyncio.run(main())
