"""Speed and scale: warm spares, what each placement adds to a warm turn, and 50 pairs asking at once.

**Warm spares** (``warm_spares``): a new pair's first answer with and without a spare.

One ``iris serve`` (gRPC only) on the bench's offline model, with two teams in the same folder: ``spared``
(``warmSpares: 1``) and ``cold`` (none). A sample is the first SendMessage of a brand-new pair to each team,
the two interleaved, then TeamSleep of both pairs; between samples the bench waits until the spared team's
spare has been started again (its process is up, then a pause for its handshake, which /proc cannot see).
Warm SendMessage samples on one existing pair, interleaved too, give the warm turn of the same run, the
yardstick of the target (a spared first answer within 2x a warm turn).

**Placements** (``placement_costs``): one ``iris serve`` with a local team, a remote team on an sshd that the
bench starts on 127.0.0.1 (SSH over loopback: the cost of ssh, the relay and the remote script, not of a
network), and, given a Ray cluster's address, a team placed on it; warm SendMessage samples on one pair of
each, interleaved, as ratios to the local p50 and medians of paired differences.

**Load** (``concurrent_pairs``): N pairs (50) of one team, their processes started first, each sending one
message at the same moment; the wall time gives turns per second, ``/proc`` gives Iris's CPU per turn. Run for
a local team and, given a cluster, a Ray-placed one.

``python -m bench.placements [--runs N] [--ray ADDRESS]`` prints the results as JSON; ``bench.run`` calls
them.
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

from bench.common import cpu_ms, spawn_logged, stop, summary
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_offline_model import offline_model_env

__all__ = ["concurrent_pairs", "placement_costs", "scale", "scale_table", "warm_spares"]

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


async def _serve_teams(
    work: Path, model_url: str, teams: dict[str, dict[str, Any]], name: str, max_processes: int = 10
) -> tuple[asyncio.subprocess.Process, int, str]:
    """Start ``iris serve`` (gRPC only) with ``teams``; return it, its gRPC port and its admin key."""
    env = {**offline_model_env(model_url), "HOME": str(work / "claude-home")}
    config = work / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "settings": {
                    "env": env,
                    "idleTimeout": 0,
                    "maxProcesses": max_processes,
                    "spawnTimeout": 60000,
                },
                "api": {"rateLimit": {"maxRequests": 1_000_000}},
                "teams": teams,
            }
        )
    )
    home = work / f"{name}-home"
    server, port = await spawn_logged(
        work,
        name,
        rb"gRPC listening on 127\.0\.0\.1:(\d+)",
        sys.executable,
        *("-m", "iris_app.cli", "serve", "--config", str(config), "--home", str(home)),
        *("--grpc-port", "0", "--no-http"),
    )
    return server, int(port), (home / "admin.key").read_text().strip()


def _team(path: Path, **extra: Any) -> dict[str, Any]:
    path.mkdir(parents=True, exist_ok=True)
    return {"path": str(path), "grantPermission": "yes", **extra}


async def placement_costs(
    work: Path, model_url: str, runs: int = 100, ray_address: str | None = None
) -> dict[str, Any]:
    """Warm SendMessage p50 per placement (local, SSH over loopback, Ray if given) and ratios to local."""
    from iris_core.deathsig import real_cli
    from tests.ssh.sshd import running_sshd

    (work / "sshd").mkdir(parents=True, exist_ok=True)
    async with running_sshd(work / "sshd") as sshd:
        teams = {
            "local": _team(work / "local"),
            "ssh": _team(
                work / "remote",
                remote=f"ssh {sshd.destination}",
                claudePath=real_cli(),
                remoteOptions={
                    "port": sshd.port,
                    "identity": str(sshd.identity),
                    "extraSshArgs": ["-o", f"UserKnownHostsFile={sshd.known_hosts}"],
                },
            ),
        }
        if ray_address is not None:
            teams["ray"] = _team(work / "ray", placement={"kind": "ray", "address": ray_address, "cpus": 0.5})
        server, port, key = await _serve_teams(work, model_url, teams, "iris-placements")
        metadata = (("authorization", f"Bearer {key}"),)
        samples: dict[str, list[float]] = {team: [] for team in teams}
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = iris_pb2_grpc.IrisStub(channel)

                async def ask(team: str) -> float:
                    started = time.perf_counter()
                    reply = await stub.SendMessage(
                        pb.SendMessageRequest(from_team="bench", to_team=team, message="say ready"),
                        metadata=metadata,
                        timeout=120,
                    )
                    assert reply.status == "completed", reply
                    return (time.perf_counter() - started) * 1000

                names = list(teams)
                for team in names:  # start each pair's process; then warm turns only
                    await ask(team)
                for i in range(runs):
                    for team in names[i % len(names) :] + names[: i % len(names)]:
                        samples[team].append(await ask(team))
        finally:
            await stop(server)
    local = samples["local"]
    result: dict[str, Any] = {"n": runs}
    for team, values in samples.items():
        result[team] = summary(values)
        if team != "local":
            result[f"{team}_over_local"] = statistics.median(values) / statistics.median(local)
            result[f"{team}_minus_local_paired_ms"] = statistics.median(
                [a - b for a, b in zip(values, local, strict=True)]
            )
    return result


async def concurrent_pairs(
    work: Path, model_url: str, pairs: int = 50, ray_address: str | None = None
) -> dict[str, Any]:
    """Turns per second and Iris CPU per turn when ``pairs`` pairs ask at once, locally and on Ray."""
    teams = {"local": _team(work / "load-local")}
    if ray_address is not None:
        teams["ray"] = _team(
            work / "load-ray", placement={"kind": "ray", "address": ray_address, "cpus": 0.01, "memoryMb": 64}
        )
    server, port, key = await _serve_teams(work, model_url, teams, "iris-load", max_processes=pairs + 5)
    metadata = (("authorization", f"Bearer {key}"),)
    result: dict[str, Any] = {"pairs": pairs}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = iris_pb2_grpc.IrisStub(channel)
            starting = asyncio.Semaphore(4)  # start the processes a few at a time: 2 cores

            async def wake(team: str, i: int) -> None:
                async with starting:
                    await stub.TeamWake(
                        pb.TeamWakeRequest(team=team, from_team=f"p{i}"), metadata=metadata, timeout=120
                    )

            async def ask(team: str, i: int) -> None:
                reply = await stub.SendMessage(
                    pb.SendMessageRequest(from_team=f"p{i}", to_team=team, message="say ready"),
                    metadata=metadata,
                    timeout=120,
                )
                assert reply.status == "completed", reply

            for team in teams:
                await asyncio.gather(*(wake(team, i) for i in range(pairs)))
                await asyncio.gather(*(ask(team, i) for i in range(pairs)))  # each process's first turn
                cpu_before, started = cpu_ms(server.pid), time.perf_counter()
                await asyncio.gather(*(ask(team, i) for i in range(pairs)))
                wall_s, cpu = time.perf_counter() - started, cpu_ms(server.pid) - cpu_before
                result[team] = {
                    "wall_ms": wall_s * 1000,
                    "turns_per_s": pairs / wall_s,
                    "iris_cpu_ms_per_turn": cpu / pairs,
                }
                await asyncio.gather(
                    *(
                        stub.TeamSleep(
                            pb.TeamSleepRequest(team=team, from_team=f"p{i}"), metadata=metadata, timeout=120
                        )
                        for i in range(pairs)
                    )
                )
    finally:
        await stop(server)
    return result


async def scale(work: Path, model_url: str, runs: int, pairs: int = 50) -> dict[str, Any]:
    """Everything above in one run, with a local Ray cluster (a head and two workers) started for it."""
    from tests.ray.cluster import start_cluster

    cluster = await asyncio.to_thread(start_cluster, 2)
    try:
        return {
            "spares": await warm_spares(work / "spares", model_url, max(runs // 10, 8)),
            "placements": await placement_costs(work / "placements", model_url, runs, cluster.address),
            "load": await concurrent_pairs(work / "load", model_url, pairs, cluster.address),
        }
    finally:
        await asyncio.to_thread(cluster.stop)


def _row(name: str, s: dict[str, float]) -> str:
    return f"| {name} | {s['n']} | {s['p50']:.1f} | {s['p95']:.1f} | {s['min']:.1f} |"


def scale_table(result: dict[str, Any]) -> list[str]:
    """The Markdown lines of the speed-and-scale part of docs/performance.md."""
    sp, pl, load = result["spares"], result["placements"], result["load"]
    lines = [
        "",
        "| New pair's first answer, and where a team runs (SendMessage) | n | p50 ms | p95 ms | min ms |",
        "|---|---:|---:|---:|---:|",
        _row("First answer of a new pair, team with a warm spare", sp["spared_first"]),
        _row("First answer of a new pair, team without spares (a cold start)", sp["cold_first"]),
        _row("Warm turn of the same run (yardstick)", sp["warm"]),
        _row("Warm turn, local team", pl["local"]),
        _row("Warm turn, remote team over SSH (loopback sshd)", pl["ssh"]),
    ]
    if "ray" in pl:
        lines.append(_row("Warm turn, team on Ray (local 2-worker cluster)", pl["ray"]))
    lines += [
        "",
        f"**With a warm spare a new pair's first answer takes {sp['spared_over_warm']:.1f}x a warm turn** "
        f"(target ≤ 2x: {'met' if sp['spared_over_warm'] <= 2 else 'not met'}); without one, "
        f"{sp['cold_over_warm']:.1f}x. **SSH adds {pl['ssh_minus_local_paired_ms']:+.1f} ms** to a warm turn "
        f"(x{pl['ssh_over_local']:.2f} of local)"
        + (
            f" and **Ray {pl['ray_minus_local_paired_ms']:+.1f} ms** (x{pl['ray_over_local']:.2f})"
            if "ray" in pl
            else ""
        )
        + " (medians of paired differences).",
        "",
        f"| {load['pairs']} pairs asking at once (processes started first) | wall ms | turns/s "
        "| `iris serve` CPU ms/turn |",
        "|---|---:|---:|---:|",
    ]
    for placement in ("local", "ray"):
        if placement in load:
            r = load[placement]
            cpu = r["iris_cpu_ms_per_turn"]
            lines.append(f"| {placement} | {r['wall_ms']:.0f} | {r['turns_per_s']:.1f} | {cpu:.2f} |")
    return lines


async def main() -> None:
    """Run the warm-spares measurement alone against an offline model of its own."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ray", help="a Ray cluster's address, to measure the Ray placement too")
    parser.add_argument("--only", choices=("spares", "placements", "load"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="iris-bench-spares-") as tmp:
        work = Path(tmp)
        model, model_url = await spawn_logged(
            work, "model", rb"serving at (http://[0-9.:]+)", sys.executable, "-m", "iris_offline_model"
        )
        url = model_url.decode()
        result: dict[str, Any] = {}
        try:
            if args.only in (None, "spares"):
                result["spares"] = await warm_spares(work, url, args.runs)
            if args.only in (None, "placements"):
                result["placements"] = await placement_costs(work, url, args.runs * 10, args.ray)
            if args.only in (None, "load"):
                result["load"] = await concurrent_pairs(work, url, 50, args.ray)
        finally:
            await stop(model)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
