"""The operator dashboard in a real browser, against a real Iris and real Claude Code (the offline model).

Each test signs in as an operator would and checks what the page shows; every step leaves a screenshot in
the artifacts folder (see conftest.py). Every wait is bounded: Playwright's expectations by
``STEP_TIMEOUT_MS``, the test's own calls by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iris_app.rest_server import serving_app
from tests.dashboard.conftest import GUARDED, Dashboard


def own_row(dash: Dashboard, team: str) -> Any:
    """The teams table's row of the key's own pair with ``team``."""
    return dash.page.locator(f'#teams-table tr[data-team="{team}"][data-caller="self"]')


def turn_card(dash: Dashboard, message_id: str) -> Any:
    return dash.page.locator(f'#turn-list li.turn[data-message-id="{message_id}"]')


async def signed_in(dash: Dashboard) -> None:
    await dash.sign_in()
    await expect(dash.page.locator("#connection")).to_have_text("Live")
    await expect(own_row(dash, "alpha")).to_be_visible()


async def test_1_sign_in_refuses_a_wrong_key_and_takes_the_admin_key(dashboard: Dashboard) -> None:
    page = dashboard.page
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_label("API key")).to_be_focused()
    await dashboard.sign_in("iris_sk_live_" + "x" * 40)
    await expect(page.locator("#login-error")).to_contain_text("That key was refused")
    await expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    await dashboard.shot("1a-wrong-key")
    assert await page.evaluate("sessionStorage.length") == 0

    await dashboard.sign_in()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("Live")
    for team in ("alpha", "beta", "gamma", GUARDED):
        await expect(own_row(dashboard, team)).to_contain_text("asleep")
    # The key is kept in the tab only, and never put in a URL the page asked for.
    assert await page.evaluate("sessionStorage.getItem('iris.apiKey')") == dashboard.iris.admin_key
    assert dashboard.iris.admin_key not in page.url
    await dashboard.shot("1b-signed-in")


async def test_2_a_team_woken_over_rest_shows_awake_with_its_pid(dashboard: Dashboard) -> None:
    await signed_in(dashboard)
    async with asyncio.timeout(60):
        woke = (await dashboard.http.post("/api/teams/alpha/wake", json={})).json()
    assert woke["pid"] > 0, woke

    row = own_row(dashboard, "alpha")
    await expect(row.locator(".badge")).to_have_text("awake")
    await expect(row.locator("td.pid")).to_have_text(str(woke["pid"]))
    await expect(row.get_by_role("button", name="Put alpha (this key) to sleep")).to_be_enabled()
    await dashboard.shot("2a-team-awake")

    # The page's own Sleep button, by keyboard: the process goes, and the row says so.
    await row.get_by_role("button", name="Put alpha (this key) to sleep").focus()
    await dashboard.page.keyboard.press("Enter")
    await expect(row.locator(".badge")).to_have_text("asleep")
    await expect(row.locator("td.pid")).to_have_text("—")
    await dashboard.shot("2b-team-asleep")


async def test_3_a_tell_streams_into_the_live_turns_as_it_comes(dashboard: Dashboard) -> None:
    await signed_in(dashboard)
    events: list[dict[str, Any]] = []

    async def tell() -> None:
        body = {"fromTeam": "ops", "message": "slow 5 200"}
        async with dashboard.http.stream("POST", "/api/v1/teams/alpha/stream", json=body) as response:
            assert response.status_code == 200
            events.extend([json.loads(line)["result"] async for line in response.aiter_lines() if line])

    async with asyncio.timeout(60):
        telling = asyncio.create_task(tell())
        try:
            # Mid-turn: a card with some chunks but not all, still running.
            await dashboard.page.wait_for_function(
                """() => [...document.querySelectorAll('#turn-list li.turn')].some(card =>
                     card.querySelector('.answer').textContent.includes('chunk 2') &&
                     !card.querySelector('.answer').textContent.includes('chunk 5') &&
                     card.querySelector('.badge').textContent === 'running')""",
                polling="raf",
            )
            await dashboard.shot("3a-turn-streaming")
        finally:
            await telling

    message_id = events[0]["start"]["messageId"]
    card = turn_card(dashboard, message_id)
    await expect(card.locator(".answer")).to_have_text("chunk 1 chunk 2 chunk 3 chunk 4 chunk 5 ")
    await expect(card.locator(".badge")).to_have_text("completed")
    await expect(card.locator("h3")).to_contain_text("alpha ← ops")
    # The stream showed the calling team's pair: its row appears in the teams table.
    await expect(
        dashboard.page.locator('#teams-table tr[data-team="alpha"][data-caller="ops"]')
    ).to_be_visible()
    await dashboard.shot("3b-turn-completed")


async def test_4_a_permission_request_is_allowed_from_the_page_and_the_tool_runs(
    dashboard: Dashboard,
) -> None:
    await signed_in(dashboard)
    folder = dashboard.iris.config.teams[GUARDED].path
    command = "echo allowed-from-the-dashboard > allowed.txt"
    message = "tool Bash " + json.dumps({"command": command, "description": "write a file"})

    async with asyncio.timeout(90):
        asking = asyncio.create_task(
            dashboard.http.post(f"/api/v1/teams/{GUARDED}/ask", json={"question": message, "timeout": 60000})
        )
        try:
            request = dashboard.page.locator("#permission-list li.permission")
            await expect(request).to_have_count(1)
            await expect(request.locator(".tool")).to_have_text("Bash")
            await expect(request.locator(".input")).to_contain_text(command)
            await expect(dashboard.page.locator("#permissions-announce")).to_contain_text(
                f"{GUARDED} wants to use Bash"
            )
            await dashboard.shot("4a-permission-requested")
            await request.get_by_role("button", name=re.compile(r"^Allow Bash for guarded")).click()
        finally:
            reply = (await asking).json()

    assert reply["status"] == "completed", reply
    await expect(dashboard.page.locator("#permission-list li")).to_have_count(0)
    await expect(dashboard.page.locator("#permissions-empty")).to_be_visible()
    card = turn_card(dashboard, reply["messageId"])
    await expect(card.locator(".badge")).to_have_text("completed")
    await expect(card.locator(".turn-lines .tool")).to_contain_text("tool Bash")
    await expect(card.locator(".turn-lines")).to_contain_text("Bash: allowed")
    await expect(card.locator(".answer")).to_contain_text("tool result")
    assert (folder / "allowed.txt").read_text().strip() == "allowed-from-the-dashboard"
    await dashboard.shot("4b-permission-allowed")


async def test_6_logs_are_filtered_by_level_logger_and_text(dashboard: Dashboard) -> None:
    await signed_in(dashboard)
    async with asyncio.timeout(60):
        assert (await dashboard.http.post("/api/teams/alpha/wake", json={})).status_code == 200
    page = dashboard.page
    logs = page.locator("#logs-table tbody tr")
    await page.get_by_role("button", name="Apply").click()
    await expect(logs.first).to_be_visible()
    every = await logs.count()
    await dashboard.shot("6a-logs")

    await page.get_by_label("Text").fill("no record says this")
    await page.get_by_role("button", name="Apply").click()
    await expect(logs).to_have_count(0)
    await expect(page.locator("#logs-count")).to_contain_text("0 of 0 matching")

    await page.get_by_label("Text").fill("")
    await page.get_by_label("Logger").fill("iris_core")
    await page.get_by_role("button", name="Apply").click()
    await expect(logs.first).to_be_visible()
    for logger in await page.locator("#logs-table tbody td.mono").all_text_contents():
        assert logger.startswith("iris_core"), logger
    assert await logs.count() <= every
    await dashboard.shot("6b-logs-filtered")


async def test_5_the_cost_of_a_turn_shows_for_its_team(dashboard: Dashboard) -> None:
    await signed_in(dashboard)
    page = dashboard.page
    async with asyncio.timeout(60):
        reply = await dashboard.http.post("/api/v1/teams/alpha/ask", json={"question": "say what it costs"})
    assert reply.json()["metadata"]["costUsd"] > 0, reply.text

    # The turn's completion refreshes the view; the table beside the chart has the numbers.
    cost = page.locator('#usage-table tr[data-group="alpha"] td.cost')
    await expect(cost).to_have_text(re.compile(r"^\$0?\.\d*[1-9]"))
    await expect(page.locator("#usage-chart svg rect").first).to_be_visible()
    await dashboard.shot("5-cost-moved")


async def test_5b_the_cost_chart_draws_the_usage_shape_per_team_and_per_key(dashboard: Dashboard) -> None:
    """The view against GetUsage's announced JSON shape, answered by the browser itself (page.route): what
    the page draws from given rows, whether or not the server has the route yet."""
    asked: list[str] = []

    def rows(by: str) -> list[dict[str, Any]]:
        return [
            {by: name, "day": day, "turns": turns, "costUsd": cost, "usage": {"inputTokens": 10 * turns}}
            for name, day, turns, cost in [
                ("alpha", "2026-11-29", 3, 0.12),
                ("alpha", "2026-11-30", 1, 0.05),
                ("beta", "2026-11-30", 2, 0.2),
            ]
        ]

    async def usage(route: Any) -> None:
        asked.append(route.request.url)
        by = "key" if "groupBy=key" in route.request.url else "team"
        total = {"turns": 6, "costUsd": 0.37}
        await route.fulfill(json={"rows": rows(by), "total": total, "since": "0", "until": "0"})

    await dashboard.page.route("**/api/v1/usage?*", usage)
    await signed_in(dashboard)
    page = dashboard.page
    await expect(page.locator("#usage-total")).to_have_text("Total $0.3700 over 6 turns")
    await expect(page.locator('#usage-table tr[data-group="alpha"] td.cost')).to_have_text("$0.1700")
    await expect(page.locator('#usage-table tr[data-group="beta"] td.cost')).to_have_text("$0.2000")
    await expect(page.locator("#usage-chart svg rect title")).to_have_count(3)  # one bar piece per row
    await expect(page.locator("#usage-chart svg")).to_have_attribute("role", "img")
    assert "groupBy=team" in asked[-1] and "groupBy=day" in asked[-1] and "since=" in asked[-1]
    await dashboard.shot("5b-cost-chart-shape")

    await page.get_by_label("Group by").select_option("key")
    await expect(page.locator("#usage-group-head")).to_have_text("Key")
    await expect(page.locator('#usage-table tr[data-group="alpha"]')).to_be_visible()
    assert "groupBy=key" in asked[-1]


async def test_7_a_jobs_webhook_deliveries_show_with_the_job(dashboard: Dashboard) -> None:
    await signed_in(dashboard)
    attempts: list[int] = []

    async def receive(request: Request) -> Response:
        await request.body()
        attempts.append(len(attempts) + 1)
        return Response(status_code=503 if len(attempts) == 1 else 204)  # the first attempt fails

    receiver = Starlette(routes=[Route("/hook", receive, methods=["POST"])])
    async with serving_app(receiver, host="127.0.0.1", port=0) as port:
        async with asyncio.timeout(60):
            job = (
                await dashboard.http.post(
                    "/api/v1/teams/beta/execute",
                    json={"task": "say job done", "callback": {"url": f"http://127.0.0.1:{port}/hook"}},
                )
            ).json()
        row = dashboard.page.locator(f'#jobs-table tr[data-message-id="{job["messageId"]}"]')
        await expect(row).to_contain_text("completed")
        await expect(row).to_contain_text("delivered (2)")
    assert attempts == [1, 2]

    await row.get_by_role("button", name=f"Details and deliveries of {job['jobId']}").click()
    detail = dashboard.page.locator("#job-detail")
    await expect(detail).to_be_focused()
    deliveries = detail.locator("tbody tr")
    await expect(deliveries).to_have_count(2)
    await expect(deliveries.nth(0)).to_contain_text("503")
    await expect(deliveries.nth(1)).to_contain_text("204")
    await expect(deliveries.nth(1).locator("td").nth(3)).to_have_text("yes")
    await dashboard.shot("7-job-deliveries")
