"""Auth through REST: the gRPC server decides, the gateway carries the key in and the limits out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.gateway.conftest import Gateway, gateway_for
from tests.harness import start_iris, write_config


async def test_no_key_is_401(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as anonymous, asyncio.timeout(10):
        response = await anonymous.get("/api/teams")
    assert response.status_code == 401
    assert (response.json()["error"], response.json()["code"]) == ("UnauthorizedError", "UNAUTHENTICATED")


async def test_x_api_key_is_accepted_like_bearer(gateway: Gateway) -> None:
    headers = {"x-api-key": gateway.iris.admin_key}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as client, asyncio.timeout(10):
        assert (await client.get("/api/teams")).status_code == 200


async def test_a_key_without_the_permission_is_403_naming_it(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        created = await gateway.client.post(
            "/api/keys", json={"name": "reader", "permissions": ["status:read"]}
        )
        assert created.status_code == 200, created.text
        key = created.json()["key"]
        async with httpx.AsyncClient(base_url=gateway.url, headers={"x-api-key": key}) as reader:
            allowed = await reader.get("/api/teams")
            refused = await reader.post("/api/teams/tell", json={"toTeam": "alpha", "message": "hi"})
    assert allowed.status_code == 200
    assert refused.status_code == 403
    assert refused.json()["error"] == "ForbiddenError" and "team:tell" in refused.json()["message"]


async def test_the_rate_limit_is_429_with_headers(tmp_path: Path) -> None:
    config = write_config(tmp_path, api={"rateLimit": {"windowMs": 60000, "maxRequests": 2}})
    async with start_iris(tmp_path, config) as iris, gateway_for(iris) as gateway, asyncio.timeout(30):
        first = await gateway.client.get("/api/date")
        second = await gateway.client.get("/api/date")
        third = await gateway.client.get("/api/date")
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    assert third.status_code == 429
    body = third.json()
    assert (body["error"], body["code"]) == ("TooManyRequestsError", "RESOURCE_EXHAUSTED")
    assert int(body["details"]["retryAfterMs"]) > 0
    assert third.headers["X-RateLimit-Remaining"] == "0" and int(third.headers["Retry-After"]) >= 1


async def test_a_stream_carries_the_rate_limit_headers(gateway: Gateway) -> None:
    request = {"fromTeam": "caller", "message": "say hi"}
    async with asyncio.timeout(60):
        async with gateway.client.stream("POST", "/api/v1/teams/alpha/stream", json=request) as response:
            assert response.status_code == 200
            assert "X-RateLimit-Limit" in response.headers
            await response.aread()


async def test_a_credential_header_grpc_cannot_carry_is_401(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client, asyncio.timeout(10):
        response = await client.get("/api/teams", headers={b"x-api-key": "iris_sk_\u00e9t\u00e9".encode()})
    assert response.status_code == 401
    assert response.json()["error"] == "UnauthorizedError"
