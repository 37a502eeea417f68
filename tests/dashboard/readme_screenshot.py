"""Write docs/dashboard.png: the dashboard at laptop size, with real data from a real Iris (offline model).

Run from the repository: ``python -m tests.dashboard.readme_screenshot [PATH]``. It wakes a team, streams a
slow turn, leaves a permission request waiting, runs a job whose webhook fails once and then lands, and
takes the picture while the turn is still streaming. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.async_api import async_playwright, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iris_app.rest_server import serving_app
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, GUARDED, LAPTOP, ROOT, STEP_TIMEOUT_MS
from tests.harness import start_iris, write_config


async def main(out: Path) -> None:
    hits: list[int] = []

    async def hook(request: Request) -> Response:
        await request.body()
        hits.append(1)
        return Response(status_code=502 if len(hits) == 1 else 204)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = write_config(
            root,
            teams={
                GUARDED: {"description": "asks before its tools run", "grantPermission": "ask"},
                "alpha": {"color": "#2563eb"},
                "beta": {"color": "#d97706"},
            },
            api={"webhooks": {"allowPrivateNetworks": True, "retryBaseMs": 20}},
        )
        logging.getLogger().setLevel(logging.INFO)
        receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        async with (
            start_iris(root, config, http=True) as iris,
            serving_app(receiver, host="127.0.0.1", port=0) as hook_port,
            async_playwright() as playwright,
            asyncio.timeout(120),
        ):
            logging.getLogger().addHandler(iris.logs)
            url = f"http://127.0.0.1:{iris.running.http_port}"
            headers = {"authorization": f"Bearer {iris.admin_key}"}
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
                page = await browser.new_page(viewport=LAPTOP)
                page.set_default_timeout(STEP_TIMEOUT_MS)
                await page.goto(url + "/")
                await page.get_by_label("API key").fill(iris.admin_key)
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#connection")).to_have_text("Live")

                await http.post("/api/teams/gamma/wake", json={"fromTeam": "frontend"})
                await http.post(
                    "/api/v1/teams/alpha/ask", json={"question": "say The migrations are in db/."}
                )
                job = {
                    "task": "say Report generated",
                    "callback": {"url": f"http://127.0.0.1:{hook_port}/hook"},
                }
                await http.post("/api/v1/teams/beta/execute", json=job)
                await expect(page.locator("#jobs-table tbody tr").first).to_contain_text("delivered (2)")
                ask = "tool Bash " + json.dumps({"command": "npm audit fix", "description": "fix the audit"})
                asking = asyncio.create_task(
                    http.post(f"/api/v1/teams/{GUARDED}/ask", json={"question": ask, "timeout": 60000})
                )
                await expect(page.locator("#permission-list li.permission")).to_have_count(1)
                streaming = asyncio.create_task(
                    http.post(
                        "/api/teams/tell",
                        json={"toTeam": "alpha", "fromTeam": "ci", "message": "slow 12 250"},
                    )
                )
                await page.get_by_role("button", name="Apply").click()
                await page.wait_for_function(
                    "() => [...document.querySelectorAll('#turn-list .answer')]"
                    ".some(a => a.textContent.includes('chunk 6'))"
                )
                await page.screenshot(path=str(out), full_page=True)  # the whole page at laptop width
                await page.get_by_role("button", name="Deny Bash for guarded (for admin)").click()
                await asking
                await streaming
            await browser.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png"))
