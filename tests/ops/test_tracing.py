"""Traces: one REST call is one trace (gateway → gRPC → turn: admission, spawn, model), with real Claude Code.

The SDK's in-memory exporter records what the libraries emit through the OpenTelemetry API; Iris runs in this
process (``start_iris``), so every span of a call is seen here. A global provider can be installed only once
per process, so one is installed for the whole run and records only while a test of this module asks.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iris_app.rest_server import serving_app
from iris_app.tracing import tracer_provider_from_env
from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, iris_serve, start_iris, write_config
from tests.mcp.conftest import adapter_client
from tests.ops.untraced_call import claude_traceparents

ROOT = Path(__file__).resolve().parent.parent.parent
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


class _Recorder(SpanProcessor):
    """Keeps ended spans while ``on``; drops them otherwise (the provider outlives this module's tests)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.exporter.export((span,))


_RECORDER = _Recorder()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(_RECORDER)
        trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another provider was installed first"
    _RECORDER.exporter.clear()
    _RECORDER.on = True
    try:
        yield _RECORDER.exporter
    finally:
        _RECORDER.on = False
        _RECORDER.exporter.clear()


@pytest.fixture
async def iris(tmp_path: Path, spans: InMemorySpanExporter) -> AsyncIterator[Iris]:
    async with start_iris(tmp_path, http=True) as running:
        yield running


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return hex_id(span.context.trace_id, 32)


def parent_of(span: ReadableSpan) -> str:
    assert span.parent is not None, f"{span.name} has no parent"
    return hex_id(span.parent.span_id, 16)


def id_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return hex_id(span.context.span_id, 16)


async def ended(exporter: InMemorySpanExporter, *names: str, within_s: float = 10) -> dict[str, ReadableSpan]:
    """Wait (bounded) until a span of each name has ended; return the first of each.

    The reply can reach the caller a moment before the span around it ends (the gateway's ends once the
    response is sent), so the test waits for it rather than assuming it.
    """
    async with asyncio.timeout(within_s):
        while True:
            found: dict[str, ReadableSpan] = {}
            for span in exporter.get_finished_spans():
                found.setdefault(span.name, span)
            if all(name in found for name in names):
                return found
            await asyncio.sleep(0.01)


def no_prompt_text(spans: Sequence[ReadableSpan], text: str) -> None:
    for span in spans:
        for value in (span.attributes or {}).values():
            assert text not in str(value), f"{span.name} carries the prompt"


async def test_one_rest_call_is_one_trace_from_the_gateway_to_the_turn(
    iris: Iris, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{iris.running.http_port}"
    headers = {"authorization": f"Bearer {iris.admin_key}", "traceparent": TRACEPARENT}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        reply = await client.post(
            "/api/teams/tell", json={"fromTeam": "caller", "toTeam": "alpha", "message": "secret-prompt"}
        )
    assert reply.status_code == 200, reply.text
    message_id = reply.json()["messageId"]

    found = await ended(
        spans,
        "POST /api/teams/tell",
        "iris.v1.Iris/SendMessage",
        "iris.turn",
        "iris.turn.admission",
        "iris.process.spawn",
        "iris.turn.model",
    )
    gateway, grpc_call = found["POST /api/teams/tell"], found["iris.v1.Iris/SendMessage"]
    turn = found["iris.turn"]
    assert {trace_of(span) for span in found.values()} == {TRACE_ID}
    assert parent_of(gateway) == CALLER_SPAN and gateway.kind is SpanKind.SERVER
    assert parent_of(grpc_call) == id_of(gateway) and grpc_call.kind is SpanKind.SERVER
    assert parent_of(turn) == id_of(grpc_call)
    for child in ("iris.turn.admission", "iris.process.spawn", "iris.turn.model"):
        assert parent_of(found[child]) == id_of(turn), child

    assert gateway.attributes is not None and gateway.attributes["http.route"] == "/api/teams/tell"
    assert gateway.attributes["http.response.status_code"] == 200
    assert grpc_call.attributes is not None and grpc_call.attributes["rpc.grpc.status_code"] == 0
    assert dict(turn.attributes or {}) == {
        "iris.team": "alpha",
        "iris.from_team": "caller",
        "iris.message_id": message_id,
        "iris.session_id": reply.json()["sessionId"],
        "iris.status": "completed",
        "iris.cost_usd": pytest.approx(reply.json()["costUsd"]),
        "iris.attempts": 1,
    }
    # Admission, then the process's start, then the model: in order, within the turn.
    admission, spawn, model = (
        found[n] for n in ("iris.turn.admission", "iris.process.spawn", "iris.turn.model")
    )
    assert turn.start_time is not None and turn.end_time is not None
    assert admission.start_time is not None and admission.end_time is not None
    assert spawn.start_time is not None and spawn.end_time is not None
    assert model.start_time is not None and model.end_time is not None
    assert turn.start_time <= admission.start_time <= admission.end_time <= spawn.start_time
    assert spawn.end_time <= model.start_time <= model.end_time <= turn.end_time
    no_prompt_text(spans.get_finished_spans(), "secret-prompt")

    # Claude Code was started with the spawn span as its parent: its own spans join this trace.
    assert claude_traceparents(tmp_path) == [f"00-{TRACE_ID}-{id_of(spawn)}-01"]


async def test_a_grpc_call_with_traceparent_metadata_continues_the_callers_trace(
    iris: Iris, spans: InMemorySpanExporter
) -> None:
    request = pb.SendMessageRequest(from_team="caller", to_team="beta", message="hello")
    reply = await iris.stub.SendMessage(request, metadata=(("traceparent", TRACEPARENT),))
    assert reply.status == "completed"
    found = await ended(spans, "iris.v1.Iris/SendMessage", "iris.turn")
    call, turn = found["iris.v1.Iris/SendMessage"], found["iris.turn"]
    assert trace_of(call) == trace_of(turn) == TRACE_ID
    assert parent_of(call) == CALLER_SPAN and parent_of(turn) == id_of(call)
    assert call.attributes is not None and call.attributes["rpc.method"] == "SendMessage"


async def test_a_turn_on_a_process_another_turn_started_links_to_where_claude_codes_spans_are(
    iris: Iris, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    # Claude Code reads TRACEPARENT once, at its start: its spans of every turn of that process go under the
    # first turn's spawn span. A later turn's model span links there.
    first = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
    second_trace = "0af7651916cd43dd8448eb211c80319c"
    for traceparent in (first, f"00-{second_trace}-b7ad6b7169203331-01"):
        request = pb.SendMessageRequest(from_team="caller", to_team="gamma", message="hello")
        reply = await iris.stub.SendMessage(request, metadata=(("traceparent", traceparent),))
        assert reply.status == "completed"
    await ended(spans, "iris.turn.model")
    spawns = [s for s in spans.get_finished_spans() if s.name == "iris.process.spawn"]
    models = {trace_of(s): s for s in spans.get_finished_spans() if s.name == "iris.turn.model"}
    assert [trace_of(s) for s in spawns] == [TRACE_ID]  # one process, started by the first turn
    assert models[TRACE_ID].links == ()
    assert [hex_id(link.context.span_id, 16) for link in models[second_trace].links] == [id_of(spawns[0])]
    assert claude_traceparents(tmp_path, "gamma") == [f"00-{TRACE_ID}-{id_of(spawns[0])}-01"]


async def test_a_refused_call_has_a_span_with_its_status_and_no_error(
    iris: Iris, spans: InMemorySpanExporter
) -> None:
    request = pb.SendMessageRequest(from_team="caller", to_team="nobody", message="hello")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await iris.stub.SendMessage(request, metadata=(("traceparent", TRACEPARENT),))
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    call = (await ended(spans, "iris.v1.Iris/SendMessage"))["iris.v1.Iris/SendMessage"]
    assert (
        call.attributes is not None
        and call.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    )
    assert call.status.status_code is StatusCode.UNSET  # a caller's mistake is not the server's error


async def test_a_job_runs_in_a_trace_of_its_own_linked_to_the_call_that_accepted_it(
    iris: Iris, spans: InMemorySpanExporter
) -> None:
    request = pb.ExecuteRequest(team="alpha", task="a job", from_team="caller")
    accepted = await iris.stub.Execute(request, metadata=(("traceparent", TRACEPARENT),))
    found = await ended(spans, "iris.v1.Iris/Execute", "iris.turn", within_s=60)
    call, turn = found["iris.v1.Iris/Execute"], found["iris.turn"]
    assert turn.attributes is not None and turn.attributes["iris.job_id"] == accepted.job_id
    assert trace_of(call) == TRACE_ID and trace_of(turn) != TRACE_ID and turn.parent is None
    assert [hex_id(link.context.span_id, 16) for link in turn.links] == [id_of(call)]


async def test_an_mcp_tool_call_is_a_span_whose_grpc_call_continues_it(
    iris: Iris, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("tests")
    async with adapter_client(iris.channel, api_key=iris.admin_key) as client:
        with tracer.start_as_current_span("client") as outer:
            result = await client.call_tool("list_teams", {})
    assert not result.is_error
    found = await ended(spans, "tools/call list_teams", "iris.v1.Iris/ListTeams")
    tool, call = found["tools/call list_teams"], found["iris.v1.Iris/ListTeams"]
    outer_trace = hex_id(outer.get_span_context().trace_id, 32)
    assert trace_of(tool) == trace_of(call) == outer_trace
    assert tool.kind is SpanKind.SERVER and parent_of(call) == id_of(tool)


async def test_without_an_sdk_nothing_is_recorded_and_claude_code_gets_no_callers_context(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'python'}"}
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tests.ops.untraced_call", str(tmp_path), TRACEPARENT),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(90):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    seen = json.loads(out.splitlines()[-1])  # after what the first start prints
    assert seen["status"] == 200 and seen["answer"] == "echo: untraced"
    assert seen["provider"] == "ProxyTracerProvider"
    # Tracing off: Claude Code is handed no trace context at all. The caller's (its traceparent, and a
    # tracestate of the caller's own text) would stay in the process's environment for every later caller.
    assert seen["claude_processes"] == 1
    assert seen["claude_traceparents"] == []


def test_tracing_is_off_unless_the_environment_asks_for_it() -> None:
    assert tracer_provider_from_env({}) is None
    assert tracer_provider_from_env({"OTEL_SERVICE_NAME": "iris"}) is None
    assert tracer_provider_from_env({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracer_provider_from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) is None


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
    ],
)
def test_the_standard_variables_turn_it_on_with_iris_as_the_default_service_name(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = tracer_provider_from_env(environ)
    assert provider is not None
    try:
        assert provider.resource.attributes[SERVICE_NAME] == "iris"
    finally:
        provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "iris-staging")
    named = tracer_provider_from_env(environ)
    assert named is not None
    try:
        assert named.resource.attributes[SERVICE_NAME] == "iris-staging"
    finally:
        named.shutdown()


async def test_iris_serve_exports_its_spans_over_otlp_when_the_standard_variables_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    sink = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serving_app(sink, host="127.0.0.1", port=0) as port:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export soon: the server is killed after
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        async with iris_serve(tmp_path, write_config(tmp_path)) as served:
            request = pb.SendMessageRequest(from_team="caller", to_team="alpha", message="hello")
            reply = await served.stub.SendMessage(request, metadata=(("traceparent", TRACEPARENT),))
            assert reply.status == "completed"
            async with asyncio.timeout(30):
                while not {"iris.v1.Iris/SendMessage", "iris.turn"} <= exported_names(received):
                    await asyncio.sleep(0.05)
    resources = {
        attribute.value.string_value
        for export in received
        for spans in export.resource_spans
        for attribute in spans.resource.attributes
        if attribute.key == SERVICE_NAME
    }
    assert resources == {"iris"}
    trace_ids = {
        span.trace_id.hex()
        for export in received
        for spans in export.resource_spans
        for scope in spans.scope_spans
        for span in scope.spans
        if span.name in ("iris.v1.Iris/SendMessage", "iris.turn")
    }
    assert trace_ids == {TRACE_ID}


def exported_names(received: Sequence[ExportTraceServiceRequest]) -> set[str]:
    return {
        span.name
        for export in received
        for spans in export.resource_spans
        for scope in spans.scope_spans
        for span in scope.spans
    }
