"""Security headers on every response, and the one page that needs a looser policy: /docs.

The gateway fronts agents that edit code and run commands, so its responses carry helmet's defaults:
``nosniff`` (a JSON reply is never run as a script), ``DENY`` framing (no clickjacking of the docs page),
no referrer, and a Content-Security-Policy that allows nothing, since JSON needs nothing. The interactive
docs are a page with scripts, so they get a policy that allows exactly Swagger UI's files and the hash of
its one inline script, computed from the page itself so an upgrade of FastAPI cannot silently widen it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

__all__ = ["API_CSP", "SECURITY_HEADERS", "SecurityHeadersMiddleware", "docs_page"]

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For JSON and streams: nothing may load, run or frame."""

SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
"""Sent on every response (CSP too, unless the response brought its own)."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` and a CSP to every HTTP response.

    A pure ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which would buffer the response
    in a task of its own and get in the way of streams and of noticing a client that hangs up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the response's start."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self._extra if k not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", API_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _docs_csp(html: str) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {hashes}",
            # Swagger UI sets style attributes from its scripts; styles cannot run code.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


DOCS_ASSETS = "/docs/assets"
"""Where Swagger UI's own files are served from (the swagger-ui-bundle package), so /docs works offline."""


def docs_assets() -> StaticFiles:
    """Return the app that serves Swagger UI's files from the installed swagger-ui-bundle package."""
    return StaticFiles(directory=swagger_ui_path)


def docs_page(title: str, openapi_url: str) -> Callable[[Request], Awaitable[Response]]:
    """Return the endpoint of the interactive docs: Swagger UI on ``openapi_url``, with its own CSP.

    Its scripts and styles come from this server (``DOCS_ASSETS``), not a CDN: the page works offline.
    """
    html = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        ).body
    ).decode()
    csp = _docs_csp(html)

    async def page(request: Request) -> Response:
        del request
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    return page
