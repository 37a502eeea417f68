"""The TypeScript client (clients/ts) against the live Iris: tsc builds it, its node --test suite passes with
nothing skipped, and its examples run."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.clients.conftest import CLIENTS, LiveIris, run_tool
from tests.clients.webhook_receiver import webhook_receiver

TS = CLIENTS / "ts"


@pytest.fixture(scope="module")
def built() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js 20+ is needed for the TypeScript client's tests"
    assert (TS / "node_modules" / ".package-lock.json").exists(), (
        "run `make test` (it runs npm ci in clients/ts)"
    )
    run_tool(["npm", "run", "--silent", "build"], cwd=TS, env=None, within_s=300)


@pytest.mark.timeout(600)
def test_the_typescript_client_passes_its_tests_against_a_live_iris(built: None, live_iris: LiveIris) -> None:
    out = run_tool(["node", "--test", "dist/test/"], cwd=TS, env=live_iris.env(), within_s=540)
    counts = {name: int(n) for name, n in re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", out, re.M)}
    assert counts["fail"] == counts["skipped"] == counts["cancelled"] == 0, out
    assert counts["pass"] >= 14, out


def test_the_typescript_example_asks_and_streams(built: None, live_iris: LiveIris) -> None:
    out = run_tool(["node", "dist/examples/ask.js", "backend"], cwd=TS, env=live_iris.env(), within_s=120)
    assert out.splitlines() == ["backend: echo: What database do we use?", "echo: Explain auth"]


def test_the_typescript_quick_start_runs_as_written(built: None, live_iris: LiveIris) -> None:
    with webhook_receiver() as receiver:
        env = live_iris.env(IRIS_CALLBACK_URL=receiver.url)
        out = run_tool(["node", "dist/examples/quickstart.js"], cwd=TS, env=env, within_s=120)
        delivery = receiver.first()
    lines = out.splitlines()
    assert lines[:2] == ["echo: What database do we use?", "echo: Explain auth"]
    assert re.fullmatch(r"job_\w+: completed: echo: Generate the report", lines[2]), out
    assert delivery.body["jobId"] == lines[2].split(":")[0]
