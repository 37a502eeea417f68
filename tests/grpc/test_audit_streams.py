"""Every call is audited, Tell streams that their client drops included (each gets its row, CANCELLED)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import httpx

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.audit import AuditLog
from iris_grpc.interceptors import AuditInterceptor
from tests.harness import Iris, audit_entries, start_iris, with_key

STREAMS = 10


def tell_rows(iris: Iris, key_name: str) -> list[tuple[str, str]]:
    return [
        (e.method, e.outcome)
        for e in audit_entries(iris.home)
        if e.key_name == key_name and e.method == "Tell"
    ]


async def test_tell_streams_dropped_by_their_client_are_each_audited_as_cancelled(iris: Iris) -> None:
    created = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="streamer", permissions=["team:tell"]))
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
        stub = iris_pb2_grpc.IrisStub(channel)
        for i in range(STREAMS):
            call = stub.Tell(pb.TellRequest(to_team=("alpha", "beta", "gamma")[i % 3], message="slow 20 100"))
            async with asyncio.timeout(30):
                first = await anext(aiter(call))
            assert first.WhichOneof("event") == "start"
            call.cancel()  # the client goes away mid-stream; the team's turn goes on
    async with asyncio.timeout(15):
        while len(tell_rows(iris, "streamer")) < STREAMS:
            await asyncio.sleep(0.05)
    assert tell_rows(iris, "streamer") == [("Tell", "CANCELLED")] * STREAMS


async def test_rest_streams_dropped_by_their_client_are_each_audited_as_cancelled(tmp_path: Path) -> None:
    async with start_iris(tmp_path, http=True) as iris:
        created = await iris.stub.CreateApiKey(
            pb.CreateApiKeyRequest(name="streamer", permissions=["team:tell"])
        )
        headers = {"authorization": f"Bearer {created.key}", "accept": "text/event-stream"}
        base = f"http://127.0.0.1:{iris.running.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            for i in range(STREAMS):
                team = ("alpha", "beta", "gamma")[i % 3]
                body = {"message": "slow 20 100"}
                async with http.stream("POST", f"/api/v1/teams/{team}/stream", json=body) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("event: start"):
                            break  # the client goes away mid-stream
        async with asyncio.timeout(15):
            while len(tell_rows(iris, "streamer")) < STREAMS:
                await asyncio.sleep(0.05)
        assert tell_rows(iris, "streamer") == [("Tell", "CANCELLED")] * STREAMS


@dataclass
class _CallDetails:
    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...] = ()


class _DroppedStreamContext:
    """The parts of a servicer context the Audit interceptor reads, for a call whose client went away."""

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    def code(self) -> None:
        return None


async def test_a_stream_closed_from_another_context_is_still_audited(tmp_path: Path) -> None:
    """grpc.aio may leave a dropped stream's generator to the event loop, which closes it in a task of its
    own (another context); the row must be written all the same."""
    async with AuditLog(tmp_path / "audit.db") as audit:
        interceptor = AuditInterceptor({"/iris.v1.Iris/Tell": "team:tell"}, audit)

        async def events(request: pb.TellRequest, context: object) -> AsyncIterator[pb.TellResponse]:
            yield pb.TellResponse(start=pb.TellStart(team=request.to_team))
            yield pb.TellResponse(chunk=pb.TellChunk(text="never read"))

        async def continuation(details: object) -> Any:
            return grpc.unary_stream_rpc_method_handler(events)

        wrapped = await interceptor.intercept_service(continuation, _CallDetails("/iris.v1.Iris/Tell"))
        assert wrapped is not None
        serve: Any = wrapped.unary_stream  # typed for sync servers by the stubs; an async generator here
        stream = cast(
            AsyncGenerator[pb.TellResponse], serve(pb.TellRequest(to_team="alpha"), _DroppedStreamContext())
        )
        assert (await anext(stream)).start.team == "alpha"
        await asyncio.create_task(stream.aclose(), context=contextvars.Context())
        await interceptor.drain()
        rows = await audit.tail()
    assert [(r.event, r.method, r.team, r.outcome) for r in rows] == [("call", "Tell", "alpha", "CANCELLED")]
