"""OpenAPI from the descriptors, interactive docs, security headers and CORS."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from iris_client.generated.iris.v1 import iris_pb2
from rest_gateway import GatewayConfig, create_app, routes_of
from tests.gateway.conftest import Gateway, serving

ROUTES = routes_of([iris_pb2.DESCRIPTOR.services_by_name["Iris"]])


async def test_openapi_documents_every_route_with_camel_case_schemas(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        doc: dict[str, Any] = (await gateway.client.get("/openapi.json")).json()
    for route in ROUTES:
        operation = doc["paths"][route.path][route.verb.lower()]
        # an additional binding of a method gets a numbered id (ids must be unique)
        assert operation["operationId"].rstrip("0123456789") == route.method.name
    schemas = doc["components"]["schemas"]
    assert set(schemas["SendMessageRequest"]["properties"]) == {
        "toTeam",
        "message",
        "fromTeam",
        "timeout",
        "persist",
        "ttlDays",
    }
    assert schemas["SendMessageResponse"]["properties"]["timestamp"] == {"type": "integer", "format": "int64"}
    tell = doc["paths"]["/api/v1/teams/{toTeam}/stream"]["post"]
    assert tell["parameters"][0] == {
        "name": "toTeam",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    assert set(schemas["TellBody"]["properties"]) == {"message", "fromTeam", "timeout", "persist", "ttlDays"}
    assert set(tell["responses"]["200"]["content"]) == {"text/event-stream", "application/x-ndjson"}
    report = doc["paths"]["/api/teams/{team}/report"]["get"]
    assert [p["name"] for p in report["parameters"]] == ["team", "fromTeam", "pageSize", "pageToken"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_docs_page_has_its_own_strict_csp(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        response = await gateway.client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'sha256-" in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp


async def test_docs_work_offline_from_the_servers_own_files(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        page = await gateway.client.get("/docs")
        script = await gateway.client.get("/docs/assets/swagger-ui-bundle.js")
        style = await gateway.client.get("/docs/assets/swagger-ui.css")
    assert "https://" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000 and "SwaggerUIBundle" in script.text
    assert style.status_code == 200 and "text/css" in style.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_every_response_has_the_security_headers(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        responses = [
            await gateway.client.get("/api/teams"),
            await gateway.client.get("/nowhere"),
            await gateway.client.post("/api/teams/tell", content=b"{"),
        ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_cors_is_off_by_default_and_follows_config(gateway: Gateway) -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST"}
    async with asyncio.timeout(10):
        default = await gateway.client.options("/api/teams/tell", headers=preflight)
        assert "access-control-allow-origin" not in default.headers
        app = create_app(gateway.iris.target, GatewayConfig(cors_origins=["https://app.example"]))
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
            allowed = await client.options("/api/teams/tell", headers=preflight)
            other = await client.options(
                "/api/teams/tell", headers={**preflight, "origin": "https://evil.example"}
            )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
