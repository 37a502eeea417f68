"""The operator dashboard: one static page and its ES modules, served by the gateway at ``/``.

The page is a client of the REST routes and the event stream like any other: it holds an API key the
operator types in (kept in the tab's sessionStorage, sent as ``Authorization: Bearer``, never in a URL) and
decides nothing itself. Its files ship inside the package (package data), so an installed Iris serves them
with no build step, no CDN and no network: an operator on a closed machine gets the same page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["DASHBOARD_ASSETS", "DASHBOARD_CSP", "STATIC", "dashboard_assets", "dashboard_page"]

STATIC = Path(__file__).resolve().parent / "static"
"""The page and its assets, as installed."""

DASHBOARD_ASSETS = "/dashboard/assets"
"""Where the page's scripts and styles are served from."""

DASHBOARD_CSP = "; ".join(
    [
        "default-src 'none'",
        # Only our own module files: no inline script, no eval, so injected text can never run.
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # fetch() for the routes and the event stream; nothing leaves the gateway's origin.
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
"""The page's policy: its own files only, talking only to its own origin."""


def dashboard_assets() -> StaticFiles:
    """Return the app serving the page's scripts and styles (``static/assets``)."""
    return StaticFiles(directory=STATIC / "assets")


def dashboard_page() -> Callable[[Request], Awaitable[Response]]:
    """Return the endpoint serving the page itself, with its own CSP.

    The file is read once, here, so a missing package-data file fails at start-up rather than on the first
    visit. ``no-cache`` makes a browser revalidate, so an upgraded Iris is never shown with a stale page.
    """
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": DASHBOARD_CSP, "Cache-Control": "no-cache"}

    async def page(request: Request) -> Response:
        del request
        return HTMLResponse(html, headers=headers)

    return page
