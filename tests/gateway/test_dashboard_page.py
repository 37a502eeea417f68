"""The dashboard's files as the gateway serves them: its own strict CSP, every asset, nothing from elsewhere.

The page's behaviour is tested in a real browser (tests/dashboard); these check what needs no browser.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import tomllib
from pathlib import Path

from rest_gateway.dashboard import DASHBOARD_CSP, STATIC
from tests.gateway.conftest import Gateway

ROOT = Path(__file__).resolve().parents[2]


async def test_the_page_is_served_at_the_root_with_a_csp_allowing_only_its_own_files(
    gateway: Gateway,
) -> None:
    async with asyncio.timeout(10):
        page = await gateway.client.get("/", headers={"authorization": ""})  # the page itself needs no key
        again = await gateway.client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert again.text == page.text
    csp = page.headers["content-security-policy"]
    assert csp == DASHBOARD_CSP
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-cache"


async def test_every_asset_the_page_loads_is_served_and_none_comes_from_elsewhere(gateway: Gateway) -> None:
    html = (STATIC / "index.html").read_text()
    scripts = {p.name: p.read_text() for p in (STATIC / "assets").glob("*.js")}
    referenced = set(re.findall(r'(?:src|href)="(/dashboard/assets/[^"]+)"', html))
    for source in scripts.values():
        referenced |= {f"/dashboard/assets/{name}" for name in re.findall(r'from "\./([\w-]+\.js)"', source)}
    assert {
        "/dashboard/assets/app.js",
        "/dashboard/assets/style.css",
        "/dashboard/assets/events.js",
    } <= referenced
    async with asyncio.timeout(10):
        for path in sorted(referenced):
            response = await gateway.client.get(path)
            assert response.status_code == 200, path
            kind = "text/css" if path.endswith(".css") else "javascript"
            assert kind in response.headers["content-type"], (path, response.headers["content-type"])
    for text in [html, *scripts.values()]:
        # (SVG's namespace is a name, not a place anything is loaded from.)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\b)", text), "the page works offline"
        assert "EventSource" not in text or "cannot send" in text  # headers carry the key, never a URL


def test_package_data_ships_every_dashboard_file() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "rest_gateway.dashboard"
    ]
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"
