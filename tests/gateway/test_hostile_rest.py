"""Hostile REST input gets a 4xx naming what is wrong, and no ERROR or traceback in the log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.harness import Iris, start_iris


@pytest.fixture
async def rest(tmp_path: Path) -> AsyncIterator[tuple[Iris, httpx.AsyncClient]]:
    async with start_iris(tmp_path, http=True) as iris:
        url = f"http://127.0.0.1:{iris.running.http_port}"
        headers = {"authorization": f"Bearer {iris.admin_key}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            yield iris, client


def loud_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines above WARNING, or carrying a traceback: hostile input must cause neither."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno > logging.WARNING or r.exc_info
    ]


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_BODIES = {
    "100 000 opening brackets": ("/api/teams/tell", "[" * 100_000, "body"),
    "a 50 000-deep nested array": ("/api/teams/tell", nested(50_000), "body"),
    "a 5000-digit timeout": (
        "/api/teams/tell",
        '{"toTeam":"alpha","fromTeam":"caller","message":"hi","timeout":' + "9" * 5000 + "}",
        "timeout",
    ),
    "a 5000-digit timeout as a string": (
        "/api/teams/tell",
        '{"toTeam":"alpha","fromTeam":"caller","message":"hi","timeout":"' + "9" * 5000 + '"}',
        "timeout",
    ),
    "a 5000-deep PermissionsApprove input": (
        "/api/permissions/approve",
        '{"requestId":"perm_x","decision":"allow","input":' + nested_objects(5000) + "}",
        "body",
    ),
    "a body one level deeper than the bound": (
        "/api/permissions/approve",
        '{"requestId":"perm_x","decision":"allow","input":' + nested_objects(32) + "}",
        "body",
    ),
    "NaN, which JSON does not have": ("/api/teams/tell", '{"timeout":NaN}', "body"),
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
async def test_a_hostile_body_is_a_400_validation_error_naming_where_and_logs_no_error(
    rest: tuple[Iris, httpx.AsyncClient], caplog: pytest.LogCaptureFixture, case: str
) -> None:
    _, client = rest
    path, body, field = HOSTILE_BODIES[case]
    async with asyncio.timeout(30):
        response = await client.post(path, content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "ValidationError"
    assert response.json()["details"]["field"] == field
    assert loud_records(caplog) == []


async def test_a_body_nested_just_within_the_bound_reaches_iris(
    rest: tuple[Iris, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    """31 objects inside the body object: 32 levels, the bound; Iris itself answers (no such request)."""
    _, client = rest
    body = '{"requestId":"perm_x","decision":"allow","input":' + nested_objects(31) + "}"
    async with asyncio.timeout(30):
        response = await client.post("/api/permissions/approve", content=body)
    assert response.status_code == 404, response.text
    assert loud_records(caplog) == []


async def test_a_huge_number_in_a_query_value_is_a_400_naming_it(
    rest: tuple[Iris, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = rest
    async with asyncio.timeout(30):
        response = await client.get("/api/logs", params={"logs_since": "9" * 5000})
    assert response.status_code == 400, response.text
    assert response.json()["details"]["field"] == "logs_since"
    assert loud_records(caplog) == []


async def test_an_unknown_body_field_is_a_400_naming_it(rest: tuple[Iris, httpx.AsyncClient]) -> None:
    """A typo such as ``timout`` is refused, as the MCP adapter refuses an unknown parameter."""
    _, client = rest
    body = {"toTeam": "alpha", "fromTeam": "caller", "message": "hi", "timout": 5}
    async with asyncio.timeout(30):
        response = await client.post("/api/teams/tell", content=json.dumps(body))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "ValidationError"
    assert response.json()["details"]["field"] == "timout"
    assert "timout" in response.json()["message"]


async def test_an_unknown_query_parameter_is_a_400_naming_it_but_the_originals_are_accepted(
    rest: tuple[Iris, httpx.AsyncClient],
) -> None:
    _, client = rest
    async with asyncio.timeout(30):
        typo = await client.get("/api/teams/status", params={"fromTeam": "caller", "teem": "beta"})
        on_a_post = await client.post("/api/teams/alpha/sleep?force=true", content="{}")
        original = await client.get("/api/teams", params={"includeProcessDetails": "true"})
    assert typo.status_code == 400 and typo.json()["details"]["field"] == "teem"
    assert on_a_post.status_code == 400 and on_a_post.json()["details"]["field"] == "force"
    assert original.status_code == 200


async def test_a_client_that_disconnects_mid_body_is_logged_quietly(
    rest: tuple[Iris, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    iris, _ = rest
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection("127.0.0.1", iris.running.http_port)
    head = (
        "POST /api/teams/tell HTTP/1.1\r\nhost: iris\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {iris.admin_key}\r\ncontent-length: 100000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"toTeam": "alpha", "mess')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    del reader

    def gateway_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name.startswith("rest_gateway")]

    async with asyncio.timeout(10):  # until the gateway has said what became of the request
        while not gateway_lines():
            await asyncio.sleep(0.01)
    assert loud_records(caplog) == []
    assert len(gateway_lines()) == 1 and gateway_lines()[0].levelno <= logging.WARNING
