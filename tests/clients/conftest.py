"""One live Iris (offline model) that every client's tests talk to: Python in process, Go and TypeScript in
their own toolchains, each told where it is by IRIS_ADDRESS and IRIS_API_KEY."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import write_config

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
TEAM = {"grantPermission": "yes"}
START_WITHIN_S = 60.0
STOP_WITHIN_S = 30.0


@dataclass(frozen=True)
class LiveIris:
    """An ``iris serve`` the clients connect to."""

    address: str
    """host:port of its gRPC server."""
    api_key: str
    """Its admin key."""
    home: Path
    """Its $IRIS_HOME (the webhook signing secret is there)."""
    stderr: list[str]
    """What it has logged so far."""

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a client's test run gets: where Iris is, and the key."""
        return {**os.environ, "IRIS_ADDRESS": self.address, "IRIS_API_KEY": self.api_key, **extra}


@pytest.fixture(scope="session")
def live_iris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIris]:
    root = tmp_path_factory.mktemp("live-iris")
    teams = {name: {**TEAM, "description": f"the {name} team"} for name in ("backend", "data-pipeline")}
    # Job callbacks go to the tests' own receivers on 127.0.0.1.
    api = {"webhooks": {"allowPrivateNetworks": True}}
    config = write_config(root, settings={"maxProcesses": 16}, teams=teams, api=api)
    home = root / "iris-home"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "iris_app.cli", "serve", "--config", str(config), "--home", str(home)),
            *("--grpc-port", "0", "--no-http", "--offline-model"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK": "1"},
        cwd=ROOT,
        start_new_session=True,
    )
    assert server.stderr is not None
    lines: list[str] = []
    listening = threading.Event()
    port: list[int] = []

    def read() -> None:  # reads to the end, so the server never blocks on a full pipe
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if not port and (match := re.search(r"gRPC listening on 127\.0\.0\.1:(\d+)", line)):
                port.append(int(match[1]))
                listening.set()
        listening.set()

    reader = threading.Thread(target=read, name="live-iris-stderr", daemon=True)
    reader.start()
    try:
        assert listening.wait(START_WITHIN_S) and port, "".join(lines)
        key = (home / "admin.key").read_text().strip()
        yield LiveIris(f"127.0.0.1:{port[0]}", key, home, lines)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(STOP_WITHIN_S)
        reader.join(STOP_WITHIN_S)
        server.stderr.close()


def run_tool(argv: list[str], *, cwd: Path, env: dict[str, str] | None, within_s: float) -> str:
    """Run a client toolchain's command to its end (bounded), and return what it printed; fail on non-zero."""
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=within_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        printed = b"".join(
            x if isinstance(x, bytes) else (x or "").encode() for x in (exc.stdout, exc.stderr)
        )
        pytest.fail(f"{' '.join(argv)} did not end within {within_s} s:\n{printed.decode(errors='replace')}")
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{out}"
    return out
