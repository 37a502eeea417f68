"""Fuzzed REST and gRPC input, the hostile cases of finding 11 first: never a 5xx, never an ERROR in the log.

Hypothesis draws in a worker thread; each request is made on the test's own loop, where Iris and its REST
gateway run (``start_iris(..., http=True)``). Bounded: a fixed number of examples, fixed randomness
(``derandomize``), and a deadline on the whole run. Only calls that start no Claude process are fuzzed;
the explicit examples reach the others too, and each is refused before anything starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from iris_client.generated.iris.v1 import iris_pb2
from rest_gateway import routes_of
from tests.harness import start_iris

T = TypeVar("T")

ROUTES = routes_of([iris_pb2.DESCRIPTOR.services_by_name["Iris"]])
CHEAP = {
    "TeamStatus",
    "ListTeams",
    "GetLogs",
    "GetDate",
    "GetStatus",
    "GetHealth",
    "GetCache",
    "SessionReport",
    "SessionCancel",
    "SessionReboot",
    "TeamSleep",
    "PermissionsApprove",
}
"""RPCs that start no Claude process and revoke no key, whatever their input."""
FUZZED_ROUTES = [r for r in ROUTES if r.method.name in CHEAP]
SERVER_ERRORS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS}


@dataclass(frozen=True)
class Rest:
    verb: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class Grpc:
    method: str
    payload: bytes
    streaming: bool = False


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


TELL = '{"toTeam":"alpha","fromTeam":"caller","message":"hi","timeout":%s}'
HOSTILE_REST = [
    Rest("POST", "/api/teams/tell", body=b"[" * 100_000),
    Rest("POST", "/api/teams/tell", body=b"[" * 50_000 + b"]" * 50_000),
    Rest("POST", "/api/teams/tell", body=(TELL % ("9" * 5000)).encode()),
    Rest(
        "POST",
        "/api/permissions/approve",
        body=('{"requestId":"perm_x","decision":"allow","input":' + nested_objects(5000) + "}").encode(),
    ),
    Rest(
        "POST",
        "/api/teams/tell",
        body=json.dumps(
            {"toTeam": "alpha", "fromTeam": "caller", "message": "\N{GRINNING FACE}" * 102_400}
        ).encode(),
    ),
    Rest("POST", "/api/teams/tell", body=b'{"toTeam":"alpha","fromTeam":"caller","message":"hi","timout":1}'),
    Rest("GET", "/api/logs", query=(("logs_since", "9" * 5000),)),
]
GARBAGE = b"\x0a\x40only a few bytes"
HOSTILE_GRPC = [
    Grpc("SendMessage", GARBAGE),
    Grpc("Tell", GARBAGE, streaming=True),
    Grpc("GetDate", b"\xff" * 9),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@st.composite
def rest_requests(draw: st.DrawFn) -> Rest:
    route = draw(st.sampled_from(FUZZED_ROUTES))
    names = [f.json_name for f in route.method.input_type.fields] + ["timout", "stream", "includeMessages"]
    key = st.sampled_from(names) | st.text(max_size=10)
    value = st.text(max_size=20) | st.integers(min_value=0, max_value=10**60).map(str)
    path = re.sub(
        r"\{\w+(:path)?\}", lambda _: quote(draw(st.text(min_size=1, max_size=12)), safe=""), route.path
    )
    query = tuple(draw(st.lists(st.tuples(key, value), max_size=3)))
    body = b""
    if route.body:
        body = draw(
            st.dictionaries(key, json_values, max_size=4).map(lambda d: json.dumps(d).encode())
            | st.binary(max_size=64)
            | st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n)
        )
    return Rest(route.verb, path, query, body)


grpc_requests = st.builds(Grpc, st.sampled_from(sorted(CHEAP)), st.binary(max_size=64)) | st.builds(
    Grpc, st.just("Tell"), st.binary(min_size=1, max_size=16).map(lambda b: b"\xff" + b), st.just(True)
)
"""Any bytes to the cheap RPCs; to Tell, only bytes that cannot decode (0xff starts no valid field)."""


async def outcome(request: Rest | Grpc, client: httpx.AsyncClient, channel: grpc.aio.Channel) -> str:
    """Make the request; return what came back, or why it counts as a server error ("5xx ...")."""
    if isinstance(request, Rest):
        response = await client.request(
            request.verb, request.path, params=list(request.query), content=request.body or None
        )
        return f"{response.status_code} {response.text[:200]}"
    path = f"/iris.v1.Iris/{request.method}"  # no serializers: the payload goes as it is
    try:
        if request.streaming:
            stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
            call = stream(request.payload, timeout=20)
            await call.read()
            call.cancel()
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
            await unary(request.payload, timeout=20)
    except grpc.aio.AioRpcError as exc:
        server_error = exc.code() in SERVER_ERRORS
        return f"{'5xx ' if server_error else ''}{exc.code().name} {exc.details()}"
    return "OK"


def fuzz(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, channel: grpc.aio.Channel) -> None:
    """Run the examples (in this worker thread), each request on ``loop``."""

    def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result(timeout=30)

    @settings(
        max_examples=120,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(request=st.one_of(rest_requests(), grpc_requests))
    def never_a_server_error(request: Rest | Grpc) -> None:
        answer = on_loop(outcome(request, client, channel))
        assert not answer.startswith("5"), f"{request!r:.300} -> {answer}"

    for hostile in (*HOSTILE_REST, *HOSTILE_GRPC):
        never_a_server_error = example(request=hostile)(never_a_server_error)
    never_a_server_error()


async def test_fuzzed_rest_and_grpc_input_gets_no_5xx_and_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with start_iris(tmp_path, http=True) as iris:
        url = f"http://127.0.0.1:{iris.running.http_port}"
        headers = {"authorization": f"Bearer {iris.admin_key}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as client:
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(60):
                await asyncio.to_thread(fuzz, loop, client, iris.channel)
    loud = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno > logging.WARNING or r.exc_info
    ]
    assert loud == []
