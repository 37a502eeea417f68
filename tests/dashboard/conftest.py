"""A real Iris with REST, and a real Chromium (Debian's) driven by Playwright, for the dashboard's tests.

Playwright's own browser builds cannot be downloaded on the project's machines, so the tests use the
system's Chromium (``apt-get install chromium``), or the one ``IRIS_CHROMIUM`` names. Without it they skip,
saying so; nothing else skips them. Each step writes a screenshot into ``IRIS_DASHBOARD_ARTIFACTS`` (default
``.build/artifacts/dashboard/`` in the repository, which git ignores).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.harness import Iris, start_iris, write_config

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("IRIS_DASHBOARD_ARTIFACTS", ROOT / ".build" / "artifacts" / "dashboard"))
"""Where each step's screenshot goes (Playwright makes the folder)."""
CHROMIUM = os.environ.get("IRIS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium reaches for Google's services at start, which this closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
STEP_TIMEOUT_MS = 20_000
"""The longest any one wait in the page may take (Playwright's default for every action and expect)."""

GUARDED = "guarded"
"""The team whose tools need an operator's yes (grantPermission "ask")."""


@dataclass
class Dashboard:
    """A running Iris, an HTTP client holding its admin key, and a browser page at its dashboard."""

    iris: Iris
    url: str
    http: httpx.AsyncClient
    page: Page

    async def shot(self, name: str) -> Path:
        """Save a screenshot of the whole page as a test artifact; return its path."""
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def sign_in(self, key: str | None = None) -> None:
        """Type the key into the login form and submit it."""
        await self.page.get_by_label("API key").fill(self.iris.admin_key if key is None else key)
        await self.page.get_by_role("button", name="Sign in").click()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once, before anything runs
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium) or set IRIS_CHROMIUM "
            "to a Chromium binary to run the dashboard's browser tests"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=STEP_TIMEOUT_MS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def dashboard(tmp_path: Path, browser: Browser) -> AsyncIterator[Dashboard]:
    config = write_config(
        tmp_path,
        teams={GUARDED: {"description": "asks before its tools run", "grantPermission": "ask"}},
        # The jobs step's webhook receiver is the test's own, on loopback; its retry comes at once.
        api={"webhooks": {"allowPrivateNetworks": True, "retryBaseMs": 20}},
    )
    async with start_iris(tmp_path, config, http=True) as iris:
        # As the iris command does: the log ring gets the records, so the Logs view has some to show.
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(iris.logs)
        root.setLevel(logging.INFO)
        try:
            async with _served(iris, browser) as served:
                yield served
        finally:
            root.removeHandler(iris.logs)
            root.setLevel(old_level)


@asynccontextmanager
async def _served(iris: Iris, browser: Browser) -> AsyncIterator[Dashboard]:
    url = f"http://127.0.0.1:{iris.running.http_port}"
    headers = {"authorization": f"Bearer {iris.admin_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        context = await browser.new_context(viewport=LAPTOP)
        try:
            page = await context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            await page.goto(url + "/")
            yield Dashboard(iris, url, http, page)
        finally:
            await context.close()
