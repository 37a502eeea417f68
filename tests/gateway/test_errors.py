"""Every failure has the documented HTTP status and the original iris-mcp's error body with the gRPC code."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import httpx
import pytest

from rest_gateway import HTTP_STATUS_OF
from tests.gateway.conftest import Gateway


def assert_error(response: httpx.Response, status: int, reason: str, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "statusCode", "timestamp", "code", "details"}
    assert (body["error"], body["statusCode"], body["code"]) == (reason, status, code)
    assert abs(body["timestamp"] - time.time() * 1000) < 60_000
    assert "Traceback" not in response.text and "/work/" not in response.text
    return body


async def test_an_unknown_route_is_404(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/nothing-here")
    assert_error(response, 404, "NotFoundError", "NOT_FOUND")


async def test_a_wrong_method_is_405_with_allow(gateway: Gateway) -> None:
    response = await gateway.client.put("/api/teams/tell", json={})
    assert_error(response, 405, "MethodNotAllowedError", "UNIMPLEMENTED")
    assert response.headers["allow"] == "POST"


async def test_malformed_json_is_400(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/teams/tell", content=b'{"toTeam": "alpha",', headers={"content-type": "application/json"}
    )
    body = assert_error(response, 400, "ValidationError", "INVALID_ARGUMENT")
    assert body["details"] == {"field": "body"} and "line 1" in body["message"]


async def test_a_body_that_is_not_an_object_is_400(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/teams/tell", json=["alpha"])
    assert_error(response, 400, "ValidationError", "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("field", "value"), [("timeout", "soon"), ("persist", "yes"), ("message", {"text": 1}), ("ttlDays", 1.5)]
)
async def test_a_wrong_field_type_is_400_naming_the_field(
    gateway: Gateway, field: str, value: object
) -> None:
    request = {"toTeam": "alpha", "fromTeam": "caller", "message": "say hi", field: value}
    response = await gateway.client.post("/api/teams/tell", json=request)
    body = assert_error(response, 400, "ValidationError", "INVALID_ARGUMENT")
    assert body["details"] == {"field": field} and field in body["message"]


async def test_a_wrong_query_parameter_type_is_400_naming_it(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/logs", params={"getAllStores": "maybe"})
    body = assert_error(response, 400, "ValidationError", "INVALID_ARGUMENT")
    assert body["details"] == {"field": "getAllStores"}


async def test_a_body_over_10_mb_is_413(gateway: Gateway) -> None:
    big = b'{"message": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = await gateway.client.post(
        "/api/teams/tell", content=big, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "PayloadTooLargeError", "RESOURCE_EXHAUSTED")


async def test_a_chunked_body_over_the_limit_is_413(gateway: Gateway) -> None:
    async def chunks() -> Any:
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    response = await gateway.client.post("/api/teams/tell", content=chunks())
    assert_error(response, 413, "PayloadTooLargeError", "RESOURCE_EXHAUSTED")


async def test_grpc_errors_keep_their_reason_details_and_status(gateway: Gateway) -> None:
    async with asyncio.timeout(30):
        unknown = await gateway.client.post("/api/teams/nobody/wake", json={"fromTeam": "caller"})
        invalid = await gateway.client.post("/api/teams/tell", json={"toTeam": "alpha", "message": ""})
        no_fork = await gateway.client.post("/api/teams/alpha/fork", json={"fromTeam": "caller"})
    body = assert_error(unknown, 404, "TeamNotFoundError", "NOT_FOUND")
    assert body["details"] == {"team": "nobody"} and "nobody" in body["message"]
    assert assert_error(invalid, 400, "ValidationError", "INVALID_ARGUMENT")["details"]["field"] == "message"
    assert_error(no_fork, 404, "SessionNotFoundError", "NOT_FOUND")


def test_the_status_table_follows_design_section_5() -> None:
    assert HTTP_STATUS_OF[grpc.StatusCode.DEADLINE_EXCEEDED] == 408
    assert HTTP_STATUS_OF[grpc.StatusCode.UNAVAILABLE] == 503
    assert HTTP_STATUS_OF[grpc.StatusCode.CANCELLED] == 499
    assert set(HTTP_STATUS_OF) == set(grpc.StatusCode)


async def test_an_unreachable_iris_is_503_without_transport_details(gateway: Gateway) -> None:
    from rest_gateway import create_app
    from tests.gateway.conftest import serving

    async with serving(create_app("127.0.0.1:1")) as url, httpx.AsyncClient(base_url=url) as client:
        async with asyncio.timeout(30):
            response = await client.get("/api/teams")
    body = assert_error(response, 503, "UnavailableError", "UNAVAILABLE")
    assert body["message"] == "The Iris server is not reachable"
