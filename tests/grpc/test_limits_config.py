"""Rate limits as configured: switched off, and a key's own limit (by RPC or CLI) beside the default one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import Iris, start_iris, with_key, write_config

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo a failed call carries (reason and metadata)."""
    for name, value in exc.trailing_metadata() or ():
        if name == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError(f"no ErrorInfo on {exc.code()}: {exc.details()}")


async def get_date(stub: iris_pb2_grpc.IrisAsyncStub) -> dict[str, str]:
    """Call GetDate; return the reply's trailing metadata."""
    call = stub.GetDate(pb.GetDateRequest(), timeout=30)
    await call
    return {name: str(value) for name, value in await call.trailing_metadata()}


async def key_stub(iris: Iris, key: str) -> tuple[grpc.aio.Channel, iris_pb2_grpc.IrisAsyncStub]:
    channel = grpc.aio.insecure_channel(iris.target, interceptors=with_key(key))
    return channel, iris_pb2_grpc.IrisStub(channel)


async def test_with_rate_limiting_disabled_calls_beyond_max_requests_all_succeed_without_rate_metadata(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path, api={"rateLimit": {"enabled": False, "windowMs": 600_000, "maxRequests": 2}}
    )
    async with start_iris(tmp_path, config) as iris:
        stub = iris_pb2_grpc.IrisStub(iris.channel)
        trailers = [await get_date(stub) for _ in range(12)]
        stream = stub.Tell(pb.TellRequest(from_team="c", to_team="alpha", message="say unlimited"))
        headers = {name: str(value) for name, value in await stream.initial_metadata()}
        async with asyncio.timeout(60):
            events = [event async for event in stream]
    assert len(trailers) == 12
    for metadata in trailers:
        assert not set(RATE_HEADERS) & set(metadata), metadata
    assert not set(RATE_HEADERS) & set(headers), headers
    assert events[-1].complete.response == "unlimited"


async def test_with_rate_limiting_enabled_the_same_calls_carry_rate_metadata(tmp_path: Path) -> None:
    """The counterpart of the test above: the headers it expects to be absent do exist when enabled."""
    config = write_config(tmp_path, api={"rateLimit": {"windowMs": 600_000, "maxRequests": 20}})
    async with start_iris(tmp_path, config) as iris:
        metadata = await get_date(iris_pb2_grpc.IrisStub(iris.channel))
    assert set(RATE_HEADERS) <= set(metadata) and metadata["x-ratelimit-limit"] == "20"


async def test_a_key_created_with_its_own_rate_limit_is_refused_past_it_while_another_key_is_not(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, api={"rateLimit": {"windowMs": 600_000, "maxRequests": 50}})
    async with start_iris(tmp_path, config) as iris:
        tight = await iris.stub.CreateApiKey(
            pb.CreateApiKeyRequest(name="tight", permissions=["status:read"], rate_limit=3)
        )
        roomy = await iris.stub.CreateApiKey(
            pb.CreateApiKeyRequest(name="roomy", permissions=["status:read"])
        )
        tight_channel, tight_stub = await key_stub(iris, tight.key)
        roomy_channel, roomy_stub = await key_stub(iris, roomy.key)
        async with tight_channel, roomy_channel:
            allowed = [await get_date(tight_stub) for _ in range(3)]
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await get_date(tight_stub)
            others = [await get_date(roomy_stub) for _ in range(8)]
            with pytest.raises(grpc.aio.AioRpcError) as still_limited:
                await get_date(tight_stub)
    assert [m["x-ratelimit-limit"] for m in allowed] == ["3", "3", "3"]
    assert [m["x-ratelimit-remaining"] for m in allowed] == ["2", "1", "0"]
    for refusal in (limited.value, still_limited.value):
        assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(refusal)
        assert info.reason == "TooManyRequestsError"
        assert int(info.metadata["retryAfterMs"]) > 0
    assert [m["x-ratelimit-limit"] for m in others] == ["50"] * 8
    assert others[-1]["x-ratelimit-remaining"] == "42"


async def test_a_key_generated_by_the_cli_with_a_rate_limit_is_refused_past_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, api={"rateLimit": {"windowMs": 600_000, "maxRequests": 50}})
    async with start_iris(tmp_path, config) as iris:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "iris_app.cli",
            "key",
            "generate",
            "--home",
            str(iris.home),
            "--name",
            "cli-tight",
            "--permissions",
            "status:read",
            "--rate-limit",
            "2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await child.communicate()
        assert child.returncode == 0, err.decode()
        channel, stub = await key_stub(iris, out.decode().strip())
        async with channel:
            allowed = [await get_date(stub) for _ in range(2)]
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await get_date(stub)
        admin = await get_date(iris_pb2_grpc.IrisStub(iris.channel))
        listed = await iris.stub.ListApiKeys(pb.ListApiKeysRequest())
    assert [m["x-ratelimit-remaining"] for m in allowed] == ["1", "0"]
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert int(error_info(limited.value).metadata["retryAfterMs"]) > 0
    assert admin["x-ratelimit-limit"] == "50"
    assert next(k for k in listed.keys if k.name == "cli-tight").rate_limit == 2
