"""``iris serve --log-format json``: JSON lines, an access line per call (refused ones too), trace ids."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest

from iris_app.log_format import JsonLineFormatter
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_grpc.interceptors import trace_id_of
from tests.harness import iris_serve, write_config

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_json_logs_have_one_access_line_per_call_with_its_fields(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with iris_serve(tmp_path, config, args=("--log-format", "json")) as served:
        reply = await served.stub.SendMessage(
            pb.SendMessageRequest(from_team="caller", to_team="alpha", message="hello"),
            metadata=(("traceparent", TRACEPARENT),),
            timeout=60,
        )
        assert reply.status == "completed"
        await served.stub.GetDate(pb.GetDateRequest(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            # The harness's channel adds the admin key after this one; the first key presented is checked.
            await served.stub.GetDate(
                pb.GetDateRequest(), metadata=(("x-api-key", "iris_sk_nope"),), timeout=10
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        served.process.terminate()
        async with asyncio.timeout(30):
            await served.process.wait()
    lines = [json.loads(line) for line in served.stderr if line.startswith(b"{")]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert not [line for line in served.stderr if line.strip() and not line.startswith(b"{")], (
        "every stderr line after start-up's banner is JSON"
    )
    access = [line for line in lines if line["logger"] == "iris.access"]
    assert [(a["method"], a["code"]) for a in access] == [
        ("SendMessage", "OK"),
        ("GetDate", "OK"),
        ("GetDate", "UNAUTHENTICATED"),
    ]
    send = access[0]
    assert send["key"] == "admin" and send["from_team"] == "caller" and send["to_team"] == "alpha"
    assert send["trace_id"] == TRACE_ID and send["duration_ms"] > 0 and send["level"] == "info"
    assert access[1]["from_team"] == "admin" and "trace_id" not in access[1]
    assert access[2]["key"] == ""


def test_traceparent_is_read_only_when_valid() -> None:
    assert trace_id_of([("traceparent", TRACEPARENT)]) == TRACE_ID
    assert trace_id_of([("x-other", "1"), ("traceparent", TRACEPARENT)]) == TRACE_ID
    assert trace_id_of([("traceparent", f"00-{'0' * 32}-00f067aa0ba902b7-01")]) == ""
    assert trace_id_of([("traceparent", f"00-{TRACE_ID}-{'0' * 16}-01")]) == ""
    assert trace_id_of([("traceparent", f"ff-{TRACE_ID}-00f067aa0ba902b7-01")]) == ""
    assert trace_id_of([("traceparent", "garbage")]) == ""
    assert trace_id_of(None) == ""


def test_a_json_line_carries_extra_fields_and_stays_on_one_line() -> None:
    record = logging.LogRecord("iris.access", logging.INFO, __file__, 1, "two\nlines %s", ("x",), None)
    extra: dict[str, Any] = {"method": "GetDate", "duration_ms": 1.5}
    record.__dict__.update(extra)
    line = JsonLineFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "two\nlines x" and parsed["level"] == "info" and parsed["method"] == "GetDate"
    assert parsed["time"].endswith("Z")
