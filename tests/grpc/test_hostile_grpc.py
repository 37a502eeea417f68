"""Hostile gRPC input: payloads that are not the request message, and messages over the limit in bytes."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.errors import ValidationError
from iris_core.validation import validate_message
from tests.harness import Iris, audit_entries, error_details, error_reason

LIMIT_BYTES = 102_400
"""100 KB, as the original iris-mcp documents it."""

GARBAGE = {
    "bytes that are no protobuf at all": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    "a field cut short": b"\x0a\x40only a few bytes",
    "a string field that is not UTF-8": b"\x0a\x02\xff\xfe",
}


def loud_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno > logging.WARNING or r.exc_info
    ]


def raw_call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A call that sends its bytes as they are: no serializer on either side."""
    return channel.unary_unary(f"/iris.v1.Iris/{method}")


@pytest.mark.parametrize("payload", list(GARBAGE))
async def test_a_payload_that_is_not_the_request_message_is_invalid_argument_with_a_validation_error(
    iris: Iris, caplog: pytest.LogCaptureFixture, payload: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await raw_call(iris.channel, "SendMessage")(GARBAGE[payload], timeout=10)
    tell: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = iris.channel.unary_stream("/iris.v1.Iris/Tell")
    stream = tell(GARBAGE[payload], timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        async with asyncio.timeout(10):
            await stream.read()
    for failure in (unary.value, streamed.value):
        assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.details()
        assert error_reason(failure) == "ValidationError"
        assert error_details(failure)["field"] == "request"
    assert loud_records(caplog) == []


async def test_an_undecodable_payload_still_meets_authentication_first_and_is_audited(iris: Iris) -> None:
    async with grpc.aio.insecure_channel(iris.target) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as no_key:
            await raw_call(anonymous, "SendMessage")(GARBAGE["a field cut short"], timeout=10)
    with pytest.raises(grpc.aio.AioRpcError):
        await raw_call(iris.channel, "SendMessage")(GARBAGE["a field cut short"], timeout=10)

    def rows() -> list[tuple[str, str]]:
        return [(e.event, e.outcome) for e in audit_entries(iris.home) if e.method == "SendMessage"]

    async with asyncio.timeout(10):  # an answered call's row is written just after its reply
        while len(rows()) < 2:
            await asyncio.sleep(0.02)
    assert no_key.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rows() == [("auth_failure", "UNAUTHENTICATED"), ("call", "INVALID_ARGUMENT")]


def test_the_message_limit_counts_utf8_bytes_not_characters() -> None:
    two_byte = "é"
    validate_message(two_byte * (LIMIT_BYTES // 2))
    with pytest.raises(ValidationError, match="too long") as refused:
        validate_message(two_byte * (LIMIT_BYTES // 2 + 1))
    assert refused.value.details == {"field": "message"}


async def test_a_message_of_409_600_bytes_of_emoji_is_refused_naming_the_message(iris: Iris) -> None:
    emoji = "\N{GRINNING FACE}" * 102_400  # 102 400 characters, four bytes each
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await iris.stub.SendMessage(pb.SendMessageRequest(to_team="alpha", from_team="c", message=emoji))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(failure.value)["field"] == "message"
    assert "too long" in (failure.value.details() or "")
