"""The server's own services and the contract's validation rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, error_details, error_reason


async def test_reflection_lists_the_iris_service(iris: Iris) -> None:
    # The reflection and health stubs are typed for sync channels only; the aio channel works the same.
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(iris.channel)  # type: ignore[arg-type]

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async with asyncio.timeout(10):
        responses = [r async for r in stub.ServerReflectionInfo(ask())]
    names = {s.name for s in responses[0].list_services_response.service}
    assert "iris.v1.Iris" in names and "grpc.health.v1.Health" in names


async def test_health_says_serving_overall_and_for_iris(iris: Iris) -> None:
    stub: Any = health_pb2_grpc.HealthStub(iris.channel)
    for service in ("", "iris.v1.Iris"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


LONG = "x" * 102_401


@pytest.mark.parametrize(
    ("to_team", "from_team", "message", "timeout_ms", "field"),
    [
        ("", "caller", "hi", None, "toTeam"),
        ("../etc", "caller", "hi", None, "toTeam"),
        ("a/b", "caller", "hi", None, "toTeam"),
        ("a\\b", "caller", "hi", None, "toTeam"),
        ("alpha", "c" * 101, "hi", None, "fromTeam"),
        ("alpha", "caller", "", None, "message"),
        ("alpha", "caller", LONG, None, "message"),
        ("alpha", "caller", "nul\0byte", None, "message"),
        ("alpha", "caller", "hi", -2, "timeout"),
        ("alpha", "caller", "hi", 3_600_001, "timeout"),
    ],
)
async def test_each_validation_rule_is_invalid_argument_and_records_nothing(
    iris: Iris, to_team: str, from_team: str, message: str, timeout_ms: int | None, field: str
) -> None:
    request = pb.SendMessageRequest(to_team=to_team, from_team=from_team, message=message)
    if timeout_ms is not None:
        request.timeout = timeout_ms
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await iris.stub.SendMessage(request)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(failure.value) == "ValidationError"
    assert error_details(failure.value)["field"] == field
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(from_team="caller"))
    assert all(t.message_count == 0 for t in status.teams)


async def test_the_largest_allowed_message_is_accepted(iris: Iris) -> None:
    reply = await iris.stub.SendMessage(
        pb.SendMessageRequest(to_team="alpha", from_team="c", message="y" * 102_400)
    )
    assert reply.status == "completed"


async def test_an_unknown_team_is_not_found(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await iris.stub.SendMessage(pb.SendMessageRequest(to_team="nobody", from_team="c", message="hi"))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(failure.value) == "TeamNotFoundError"
    assert "nobody" in (failure.value.details() or "")


async def test_an_unknown_team_fails_tell_before_the_stream_starts(iris: Iris) -> None:
    call = iris.stub.Tell(pb.TellRequest(to_team="nobody", from_team="c", message="hi"))
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        async for _ in call:
            raise AssertionError("no event may arrive for an unknown team")
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


async def test_error_messages_carry_no_server_paths_or_traces(iris: Iris) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await iris.stub.SessionFork(pb.SessionForkRequest(to_team="alpha", from_team="c"))
    details = failure.value.details() or ""
    assert str(iris.home) not in details and "Traceback" not in details


async def test_an_omitted_from_team_is_the_callers_key_name(iris: Iris) -> None:
    reply = await iris.stub.SendMessage(pb.SendMessageRequest(to_team="alpha", message="say hi"))
    assert reply.from_team == "admin" and reply.response == "hi"
    status = await iris.stub.TeamStatus(pb.TeamStatusRequest(team="alpha"))
    assert status.teams[0].message_count == 1
