"""`iris serve` serves REST beside gRPC; `iris gateway` serves it alone in front of a running Iris."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx

from iris_app.app import running_iris
from iris_core.config import load_config
from tests.harness import Iris, write_config


async def test_iris_serve_runs_the_gateway_beside_grpc(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, api={"cors": {"origins": ["http://localhost:3100"]}}))
    home = tmp_path / "home"
    async with running_iris(
        config, home, host="127.0.0.1", grpc_port=0, offline_model=True, http_port=0
    ) as run:
        assert run.http_port
        key = (home / "admin.key").read_text().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{run.http_port}", timeout=60) as client:
            refused = await client.get("/api/teams")
            teams = await client.get("/api/teams", headers={"authorization": f"Bearer {key}"})
            told = await client.post(
                "/api/teams/tell",
                json={"toTeam": "alpha", "fromTeam": "curl", "message": "say over REST"},
                headers={"authorization": f"Bearer {key}"},
            )
            preflight = await client.options(
                "/api/teams",
                headers={"origin": "http://localhost:3100", "access-control-request-method": "GET"},
            )
    assert refused.status_code == 401 and refused.json()["error"] == "UnauthorizedError"
    assert teams.status_code == 200 and teams.json()["totalTeams"] == 3
    assert "x-ratelimit-remaining" in teams.headers
    assert told.status_code == 200 and told.json()["response"] == "over REST"
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3100"


async def test_iris_gateway_serves_rest_for_a_running_iris(iris: Iris) -> None:
    guarded_iris = iris
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iris_app.cli",
        "gateway",
        "--target",
        guarded_iris.target,
        "--http-port",
        "0",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stderr is not None
        async with asyncio.timeout(30):
            while not (
                found := re.search(
                    rb"REST listening on http://127\.0\.0\.1:(\d+)", await child.stderr.readline()
                )
            ):
                pass
        headers = {"authorization": f"Bearer {guarded_iris.admin_key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{int(found[1])}", timeout=30) as client:
            date = await client.get("/api/date", headers=headers)
        assert date.status_code == 200 and date.json()["year"] >= 2026
        child.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await child.stderr.read()
            assert await child.wait() == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
