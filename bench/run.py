"""make bench: what Iris adds to a Claude Code turn, measured against the same turn made directly.

One run, one machine, one offline model (its own process: python -m iris_offline_model) for both:
- direct: ClaudeSDKClient in this process (connect + first turn; warm turns);
- Iris: `iris serve` as a child process (auth, rate limit and audit on), its team pointed at the same model,
  reached over each transport in turn: SendMessage over gRPC, SendMessage over REST, ask_message over MCP
  stdio (`python -m mcp_adapter`, a child of this process) and over /mcp. Every transport's warm turns are
  interleaved one for one with direct turns, so each is read as the median of paired differences against
  the same baseline in the same run, with the CPU `iris serve` (and the stdio adapter) used per turn.
So each Iris figure differs from the direct one by exactly what Iris adds on that path.

Results go to bench/results/<UTC time>.json (and latest.json) and replace the table in docs/performance.md
(``--quick``: the transports only, printed, nothing written)."""

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
from bench.placements import scale, scale_table  # noqa: E402
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


TARGETS_MS = {"grpc": 2.0, "rest": 3.0, "mcp_stdio": 4.0, "mcp_http": 4.0}
"""Issue 14: what each transport may add to a warm turn (median of paired differences against direct)."""

TRANSPORT_NAMES = {
    "grpc": "SendMessage over gRPC",
    "rest": "SendMessage over REST (gateway in `iris serve`)",
    "mcp_stdio": "ask_message over MCP stdio (`iris mcp`)",
    "mcp_http": "ask_message over MCP streamable HTTP (/mcp in `iris serve`)",
}


async def measure(
    work: Path, model_url: str, cold_runs: int, warm_runs: int, *, quick: bool = False
) -> dict[str, Any]:
    """Direct and Iris samples, interleaved one for one, so drift on a shared machine hits both alike.

    Each transport gets its own phase of warm turns, each turn paired with a direct turn next to it (the order
    alternating), and the CPU ``iris serve`` (and the stdio adapter) used over that phase, in which only its
    own turns run, so every transport's cost is read against the same baseline in the same run.
    """
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

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
        headers = {"authorization": key[0][1], "x-iris-from-team": "bench"}
        stdio = StdioServerParameters(
            command=sys.executable,
            args=["-m", "mcp_adapter", "--target", f"127.0.0.1:{port}", "--from-team", "bench"],
            env={**os.environ, "IRIS_API_KEY": key[0][1].removeprefix("Bearer ")},
        )
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{http_port}", headers={"authorization": key[0][1]}, timeout=30
            ) as http,
            httpx2.AsyncClient(headers=headers, timeout=30) as mcp_http,
        ):
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

            rest_body = {"toTeam": "bench", "fromTeam": "bench", "message": "say hi"}

            async def rest_send() -> None:
                reply = await http.post("/api/teams/tell", json=rest_body)
                assert reply.status_code == 200 and reply.json()["status"] == "completed"

            async def ask(mcp_client: Any) -> None:
                result = await mcp_client.call_tool("ask_message", {"toTeam": "bench", "message": "say hi"})
                assert not result.is_error and result.structured_content["status"] == "completed", result

            client = ClaudeSDKClient(options)
            await client.connect()
            try:
                async with (
                    Client(
                        streamable_http_client(f"http://127.0.0.1:{http_port}/mcp", http_client=mcp_http)
                    ) as over_http,
                    Client(stdio) as over_stdio,
                ):
                    await ask(over_stdio)
                    (adapter,) = children_running("mcp_adapter")
                    adapter_rss_after_first_call = rss_mb(adapter)
                    transports: dict[str, Callable[[], Awaitable[None]]] = {
                        "grpc": lambda: send("say hi"),
                        "rest": rest_send,
                        "mcp_stdio": lambda: ask(over_stdio),
                        "mcp_http": lambda: ask(over_http),
                    }

                    async def direct() -> None:
                        await turn(client, "say hi")

                    for _ in range(10):  # warm-up: connections, caches, the process
                        await direct()
                        for action in transports.values():
                            await action()
                    phases: dict[str, Any] = {}
                    for name, action in transports.items():
                        runs = warm_runs if name == "grpc" else max(warm_runs // 2, 20)
                        phases[name] = await paired_phase(runs, direct, action, server.pid, adapter, name)
                    adapter_rss_after_calls = rss_mb(adapter)
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
            rest = await rest_extras(stub, key, http, warm_runs)
            extras: dict[str, Any] = {}
            if not quick:
                extras["v1"] = {
                    "execute_to_webhook": await v1.execute_to_webhook(
                        stub, key, max(warm_runs // 10, 10), summary
                    ),
                    "watch_fan_out": await v1.watch_fan_out(stub, key, server.pid, max(warm_runs // 20, 5)),
                }

                async def second_iris(home: Path) -> tuple[asyncio.subprocess.Process, int]:
                    started, grpc_port, _ = await start_iris(work, model_url, home, "iris-history")
                    return started, grpc_port

                extras["v1"]["history"] = await v1.history_query(
                    second_iris, stop, work, max(warm_runs // 2, 20), summary
                )
                key_text = key[0][1].removeprefix("Bearer ")
                extras["clients"] = await client_overheads(
                    f"127.0.0.1:{port}", key_text, max(warm_runs // 2, 20)
                )
                extras["scale"] = await scale(work / "scale", model_url, max(warm_runs // 2, 20))
                half = max(warm_runs // 2, 20)
                extras["observability"] = {
                    "metrics": await metrics_overhead(work / "metrics-bench", model_url, half),
                    "tracing": await tracing_overhead(start_iris, stop, work, model_url, half, summary),
                }
    finally:
        await stop(server)
    return {
        "cold": {
            "direct_connect_and_first_turn": summary(cold_direct),
            "iris_first_answer": summary(cold_iris),
        },
        "transports": phases,
        "tell_time_to_first_chunk": summary(ttfc),
        "stdio_adapter": {
            "rss_mb_after_first_call": adapter_rss_after_first_call,
            "rss_mb_after_all_calls": adapter_rss_after_calls,
            "cpu_ms_per_call": phases["mcp_stdio"]["adapter_cpu_ms_per_call"],
        },
        "rest": rest,
        **extras,
    }


async def paired_phase(
    runs: int,
    direct: Callable[[], Awaitable[None]],
    action: Callable[[], Awaitable[None]],
    serve_pid: int,
    adapter_pid: int,
    name: str,
) -> dict[str, Any]:
    """``runs`` warm turns through one transport, each next to a direct turn (the order alternating).

    Returns both summaries, the median of the paired differences (transport minus the direct turn beside
    it), and the CPU ``iris serve`` and the stdio adapter used per turn over the phase.
    """
    direct_ms: list[float] = []
    iris_ms: list[float] = []
    serve_before, adapter_before = cpu_ms(serve_pid), cpu_ms(adapter_pid)
    for i in range(runs):
        pair = [(direct_ms, direct), (iris_ms, action)]
        for samples, step in pair if i % 2 == 0 else reversed(pair):
            samples += await timed(1, step)
    serve_cpu = (cpu_ms(serve_pid) - serve_before) / runs
    adapter_cpu = (cpu_ms(adapter_pid) - adapter_before) / runs
    return {
        "iris": summary(iris_ms),
        "direct": summary(direct_ms),
        "paired_difference_p50_ms": statistics.median(i - d for i, d in zip(iris_ms, direct_ms, strict=True)),
        "target_ms": TARGETS_MS[name],
        "serve_cpu_ms_per_turn": serve_cpu,
        **({"adapter_cpu_ms_per_call": adapter_cpu} if name == "mcp_stdio" else {}),
    }


async def rest_extras(stub: Any, key: Any, http: httpx.AsyncClient, runs: int) -> dict[str, Any]:
    """ListTeams through the gateway against gRPC, interleaved; the time from a streaming POST to a chunk."""

    async def rest_list() -> None:
        assert (await http.get("/api/teams")).status_code == 200

    async def grpc_list() -> None:
        await stub.ListTeams(pb.ListTeamsRequest(), metadata=key)

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

    samples: dict[str, list[float]] = {"rl": [], "gl": []}
    for _ in range(10):  # warm-up
        await rest_list()
        await grpc_list()
    for i in range(runs):
        pairs = [("rl", rest_list), ("gl", grpc_list)]
        for name, action in pairs if i % 2 == 0 else reversed(pairs):
            samples[name] += await timed(1, action)
    sse = [await sse_first_chunk() for _ in range(runs // 4)]
    return {
        "list_teams_rest": summary(samples["rl"]),
        "list_teams_grpc": summary(samples["gl"]),
        "sse_time_to_first_chunk": summary(sse),
    }


def row(name: str, s: dict[str, float], digits: int = 1, target: str = "") -> str:
    """One Markdown table row of a summary."""
    cells = " | ".join(f"{s[k]:.{digits}f}" for k in ("p50", "p95", "min"))
    return f"| {name} | {s['n']:.0f} | {cells} | {target} |"


def table(result: dict[str, Any]) -> str:
    """The Markdown that replaces the part of docs/performance.md between the bench markers."""
    c, t = result["cold"], result["transports"]
    lines = [
        f"Run {result['when']} on {result['machine']} (Python {result['python']}, Claude Code "
        f"{result['claude_code']}).",
        "",
        "| Warm turn, each transport against a direct ClaudeSDKClient turn beside it | n | Iris p50 ms "
        "| direct p50 ms | paired difference ms | target | `iris serve` CPU ms/turn |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, phase in t.items():
        met = "met" if phase["paired_difference_p50_ms"] <= phase["target_ms"] else "not met"
        lines.append(
            f"| {TRANSPORT_NAMES[name]} | {phase['iris']['n']:.0f} | {phase['iris']['p50']:.1f} | "
            f"{phase['direct']['p50']:.1f} | **{phase['paired_difference_p50_ms']:+.1f}** | "
            f"≤ +{phase['target_ms']:.0f} ms ({met}) | {phase['serve_cpu_ms_per_turn']:.1f} |"
        )
    a = result["stdio_adapter"]
    g = t["grpc"]["serve_cpu_ms_per_turn"]
    rss = a["rss_mb_after_first_call"]
    lines += [
        "",
        f"**`iris serve` spends {g:.1f} ms of CPU per warm gRPC turn** (target ≤ 4 ms: "
        f"{'met' if g <= 4 else 'not met'}). **The stdio adapter (`iris mcp`) holds {rss:.0f} MB** after its "
        f"first call (target ≤ 50 MB: {'met' if rss <= 50 else 'not met'}; "
        f"{a['rss_mb_after_all_calls']:.0f} MB after all) and spends {a['cpu_ms_per_call']:.1f} ms of CPU "
        "per call. The paired difference is the "
        "median over the phase of (Iris turn − the direct turn next to it); CPU is from `/proc/<pid>/stat` "
        "over the phase, in which only that transport's turns run.",
        "",
        "| Measure | n | p50 ms | p95 ms | min ms | target |",
        "|---|---:|---:|---:|---:|---|",
        row(
            "Cold: first message to a sleeping team → answer (Iris)",
            c["iris_first_answer"],
            target="≤ 450 ms",
        ),
        row("Cold: connect + first turn (direct ClaudeSDKClient)", c["direct_connect_and_first_turn"]),
        row("Tell: time to first chunk over gRPC (Iris)", result["tell_time_to_first_chunk"]),
    ]
    r = result["rest"]
    lines += [
        row("ListTeams over REST (gateway)", r["list_teams_rest"], 2),
        row("ListTeams over gRPC", r["list_teams_grpc"], 2),
        row("SSE: time to first chunk (gateway)", r["sse_time_to_first_chunk"]),
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
    if "scale" in result:
        lines += scale_table(result["scale"])
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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only the cold and warm turns per transport (no v1 API, clients, metrics/tracing); print "
        "the table, leave docs/performance.md and bench/results/ alone",
    )
    args = parser.parse_args()
    from claude_agent_sdk._cli_version import __cli_version__

    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp:
        work = Path(tmp)
        model, url = await spawn_logged(
            work, "model", rb"serving at (http://[0-9.:]+)", sys.executable, "-m", "iris_offline_model"
        )
        try:
            measured = await measure(work, url.decode(), args.cold, args.warm, quick=args.quick)
        finally:
            await stop(model)
        result = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "claude_code": __cli_version__,
            **measured,
        }
    if not args.quick:
        write(result)
    print(table(result))


if __name__ == "__main__":
    asyncio.run(main())
