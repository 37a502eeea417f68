"""The Go client (clients/go) against the live Iris: go vet is clean, go test passes with nothing skipped,
and its examples run."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.clients.conftest import CLIENTS, LiveIris, run_tool
from tests.clients.webhook_receiver import webhook_receiver

GO = CLIENTS / "go"
# A first build downloads the pinned modules and compiles grpc: minutes on a cold cache.
BUILD_WITHIN_S = 600


@pytest.fixture(scope="module")
def vetted() -> None:
    assert shutil.which("go") is not None, "Go 1.26+ is needed for the Go client's tests"
    run_tool(["go", "vet", "./..."], cwd=GO, env=None, within_s=BUILD_WITHIN_S)
    assert run_tool(["gofmt", "-l", "."], cwd=GO, env=None, within_s=60).strip() == ""


@pytest.mark.timeout(BUILD_WITHIN_S + 300)
def test_the_go_client_passes_its_tests_against_a_live_iris(vetted: None, live_iris: LiveIris) -> None:
    out = run_tool(["go", "test", "-count=1", "-v", "./..."], cwd=GO, env=live_iris.env(), within_s=600)
    passed = re.findall(r"^--- PASS: (\w+)", out, re.M)
    assert not re.search(r"^--- (SKIP|FAIL)", out, re.M), out
    assert len(passed) >= 15, out


@pytest.mark.timeout(BUILD_WITHIN_S + 120)
def test_the_go_example_asks_and_streams(vetted: None, live_iris: LiveIris) -> None:
    out = run_tool(
        ["go", "run", "./examples/ask", "-team", "backend"], cwd=GO, env=live_iris.env(), within_s=300
    )
    assert "echo: What database do we use?" in out
    assert "echo: Explain auth\n(completed)" in out


@pytest.mark.timeout(BUILD_WITHIN_S + 120)
def test_the_go_quick_start_runs_as_written(vetted: None, live_iris: LiveIris) -> None:
    with webhook_receiver() as receiver:
        env = live_iris.env(IRIS_CALLBACK_URL=receiver.url)
        out = run_tool(["go", "run", "./examples/quickstart"], cwd=GO, env=env, within_s=300)
        delivery = receiver.first()
    lines = out.splitlines()
    assert lines[:2] == ["echo: What database do we use?", "echo: Explain auth"]
    job_id, status, response = lines[2].split(": ", 2)
    assert (status, response, delivery.body["jobId"]) == ("completed", "echo: Generate the report", job_id)
