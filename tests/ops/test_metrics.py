"""GET /metrics after real turns of real Claude Code against the offline model: every family, sane values."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.metrics import IrisMetrics
from tests.harness import Iris, send, start_iris, write_config

FAMILIES = {
    "iris_grpc_calls": "counter",
    "iris_grpc_call_duration_seconds": "histogram",
    "iris_turns": "counter",
    "iris_turn_duration_seconds": "histogram",
    "iris_turn_first_chunk_seconds": "histogram",
    "iris_process_spawn_duration_seconds": "histogram",
    "iris_processes_alive": "gauge",
    "iris_processes_busy": "gauge",
    "iris_processes_spare": "gauge",
    "iris_process_slots_used": "gauge",
    "iris_process_slots_max": "gauge",
    "iris_pair_queue_depth": "gauge",
    "iris_job_queue_depth": "gauge",
    "iris_webhook_deliveries": "counter",
    "iris_cost_usd": "counter",
    "iris_tokens": "counter",
    "iris_rate_limit_refusals": "counter",
    "iris_budget_refusals": "counter",
    "iris_api_rate_limit_events": "counter",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Return the families (name -> type) and every sample by (sample name, labels)."""
    families: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(port: int | None, path: str = "/metrics", *, key: str = "") -> httpx.Response:
    assert port is not None
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", headers=headers)


@pytest.fixture
async def rest_iris(tmp_path: Path) -> AsyncIterator[Iris]:
    async with start_iris(tmp_path, http=True) as running:
        yield running


async def test_metrics_after_one_turn_has_every_family_with_sane_values(rest_iris: Iris) -> None:
    reply = await send(rest_iris, "chunks one|two|three")
    assert reply.status == "completed"
    response = await scrape(rest_iris.running.http_port, key=rest_iris.admin_key)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families, samples = parse(response.text)
    assert {name: families.get(name) for name in FAMILIES} == FAMILIES

    assert value(samples, "iris_turns_total", team="alpha", status="completed") == 1
    assert value(samples, "iris_turns_total", team="beta", status="completed") == 0
    assert value(samples, "iris_grpc_calls_total", method="SendMessage", code="OK") >= 1
    assert value(samples, "iris_grpc_call_duration_seconds_count", method="SendMessage") >= 1
    assert value(samples, "iris_turn_duration_seconds_count", team="alpha") == 1
    assert 0 < value(samples, "iris_turn_duration_seconds_sum", team="alpha") < 60
    assert value(samples, "iris_turn_first_chunk_seconds_count", team="alpha") == 1
    assert value(samples, "iris_turn_first_chunk_seconds_sum", team="alpha") <= value(
        samples, "iris_turn_duration_seconds_sum", team="alpha"
    )
    assert value(samples, "iris_process_spawn_duration_seconds_count", team="alpha") == 1
    assert value(samples, "iris_cost_usd_total", team="alpha", key="admin") > 0
    assert value(samples, "iris_tokens_total", team="alpha", key="admin", kind="input") > 0
    assert value(samples, "iris_tokens_total", team="alpha", key="admin", kind="output") > 0
    assert value(samples, "iris_processes_alive") == 1
    assert value(samples, "iris_processes_busy") == 0
    assert value(samples, "iris_processes_spare") == 0
    assert value(samples, "iris_process_slots_max") == rest_iris.config.settings.max_processes
    assert value(samples, "iris_pair_queue_depth") == 0
    assert value(samples, "iris_job_queue_depth") == 0
    assert value(samples, "iris_rate_limit_refusals_total", limit="key") == 0


async def test_a_refused_call_is_counted_with_its_code(rest_iris: Iris) -> None:
    # The harness's channel adds the admin key after this one; the first key presented is the one checked.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rest_iris.stub.GetDate(
            pb.GetDateRequest(), metadata=(("authorization", "Bearer iris_sk_nope"),)
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    _, samples = parse((await scrape(rest_iris.running.http_port, key=rest_iris.admin_key)).text)
    assert value(samples, "iris_grpc_calls_total", method="GetDate", code="UNAUTHENTICATED") == 1


async def test_label_sets_do_not_grow_with_message_texts(rest_iris: Iris) -> None:
    await send(rest_iris, "warm up")
    _, before = parse((await scrape(rest_iris.running.http_port, key=rest_iris.admin_key)).text)
    for i in range(50):
        reply = await send(rest_iris, f"distinct message number {i} about {i * 7919}")
        assert reply.status == "completed"
    _, after = parse((await scrape(rest_iris.running.http_port, key=rest_iris.admin_key)).text)
    assert set(after) == set(before)
    assert value(after, "iris_turns_total", team="alpha", status="completed") == 51


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_metrics_port_serves_metrics_alone_when_configured(tmp_path: Path) -> None:
    config = write_config(tmp_path, settings={"metricsPort": free_port()})
    async with start_iris(tmp_path, config) as iris:
        assert iris.running.http_port is None and iris.running.metrics_port is not None
        await send(iris, "hello")
        response = await scrape(iris.running.metrics_port)
        assert response.status_code == 200
        _, samples = parse(response.text)
        assert value(samples, "iris_turns_total", team="alpha", status="completed") == 1
        assert (await scrape(iris.running.metrics_port, "/api/teams")).status_code == 404


async def test_metrics_off_removes_the_endpoint_and_the_hooks(tmp_path: Path) -> None:
    config = write_config(tmp_path, settings={"metricsEnabled": False, "metricsPort": free_port()})
    async with start_iris(tmp_path, config, http=True) as iris:
        assert iris.running.service.metrics is None and iris.running.metrics_port is None
        assert (await send(iris, "hello")).status == "completed"
        assert (await scrape(iris.running.http_port)).status_code == 404


def test_two_registries_do_not_clash() -> None:
    first, second = IrisMetrics(["alpha"]), IrisMetrics(["alpha"])
    first.turn_ended("alpha", "completed", 1.0)
    assert first.registry.get_sample_value("iris_turns_total", {"team": "alpha", "status": "completed"}) == 1
    assert second.registry.get_sample_value("iris_turns_total", {"team": "alpha", "status": "completed"}) == 0


def test_unknown_api_rate_limit_statuses_are_bounded() -> None:
    metrics = IrisMetrics()
    metrics.api_rate_limit("alpha", "rejected")
    metrics.api_rate_limit("alpha", "something new from the CLI")
    sample = metrics.registry.get_sample_value
    assert sample("iris_api_rate_limit_events_total", {"team": "alpha", "status": "rejected"}) == 1
    assert sample("iris_api_rate_limit_events_total", {"team": "alpha", "status": "other"}) == 1


async def test_metrics_on_the_rest_port_need_a_key_that_may_read_status(rest_iris: Iris) -> None:
    # They name every key and what it spent, which GetUsage shows only to admins.
    anonymous = await scrape(rest_iris.running.http_port)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "UnauthorizedError")
    created = await rest_iris.stub.CreateApiKey(
        pb.CreateApiKeyRequest(name="teller", permissions=["team:tell"])
    )
    lacking = await scrape(rest_iris.running.http_port, key=created.key)
    assert (lacking.status_code, lacking.json()["error"]) == (403, "ForbiddenError")
    created = await rest_iris.stub.CreateApiKey(
        pb.CreateApiKeyRequest(name="scraper", permissions=["status:read"])
    )
    assert (await scrape(rest_iris.running.http_port, key=created.key)).status_code == 200
