"""The gateway's app factory: routes from the contract, a channel to Iris, one error path, safe headers.

The gateway decides nothing. Authentication, permissions, rate limits, validation and errors all happen
behind gRPC, so REST behaves exactly like every other transport; this app only binds HTTP to messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import grpc
from fastapi import FastAPI
from google.protobuf.descriptor import ServiceDescriptor
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from iris_client.generated.iris.v1 import iris_pb2

from .calls import Endpoint
from .dashboard import DASHBOARD_ASSETS, dashboard_assets, dashboard_page
from .errors import GatewayError, handle_exception, handle_http_exception
from .metadata import FORWARDED_HEADERS, RATE_LIMIT_HEADERS
from .openapi import openapi_document
from .routes import routes_of
from .security import DOCS_ASSETS, SecurityHeadersMiddleware, docs_assets, docs_page
from .websocket import PATH as WEBSOCKET_PATH
from .websocket import serve_socket

__all__ = ["ChannelFactory", "GatewayConfig", "Mount", "Mounted", "create_app"]

ChannelFactory = Callable[[], grpc.aio.Channel]
"""Makes the channel to Iris; called inside the running loop (a grpc.aio channel made earlier fails)."""

MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Mounted:
    """Another ASGI app served on the gateway's port (MCP at ``/mcp``), reaching Iris on the same channel."""

    path: str
    """The exact path it answers (GET, POST and DELETE)."""
    app: ASGIApp
    """The app."""
    lifespan: Callable[[], AbstractAsyncContextManager[None]]
    """Entered once the channel is open, exited before it closes."""


Mount = Callable[[Callable[[], grpc.aio.Channel]], Mounted]
"""Builds a mounted app from the gateway's live-channel accessor."""


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway serves HTTP (where Iris is, is the ``target`` of ``create_app``)."""

    cors_origins: Sequence[str] = ()
    """Origins a browser may call from; none by default, so no page on another site can use a key."""
    max_body_bytes: int = MAX_BODY_BYTES
    """Request bodies past this size are refused with 413 (the original iris-mcp's 10 MB JSON limit)."""
    services: Sequence[ServiceDescriptor] = field(
        default_factory=lambda: (iris_pb2.DESCRIPTOR.services_by_name["Iris"],)
    )
    """The services to serve; tests pass their own to show a new annotated RPC needs no gateway change."""
    title: str = "Iris REST gateway"
    """The OpenAPI title."""
    version: str = "1"
    """The OpenAPI document's version of the API."""
    mounts: Sequence[Mount] = ()
    """Other apps served beside the routes (``iris serve`` mounts the MCP adapter's HTTP transport)."""
    dashboard: bool = True
    """Serve the operator dashboard at ``/`` (static files; each call it makes needs a key, as any call)."""


def _channel_factory(target: str | ChannelFactory) -> ChannelFactory:
    if callable(target):
        return target
    return lambda: grpc.aio.insecure_channel(target)


def create_app(target: str | ChannelFactory, config: GatewayConfig | None = None) -> FastAPI:
    """Build the REST gateway for the Iris gRPC server at ``target`` (``host:port`` or a channel factory).

    The routes are generated now, from the descriptors, so a contract the gateway cannot serve fails here,
    at start-up. The channel is opened by the app's lifespan, in the server's loop, and closed with it.
    A TLS or otherwise special channel is the caller's to make: pass a factory.

    Raises:
        ValueError: an RPC's ``google.api.http`` rule cannot be served (see ``routes_of``).

    """
    config = config or GatewayConfig()
    make_channel = _channel_factory(target)
    live: list[grpc.aio.Channel] = []

    def channel() -> grpc.aio.Channel:
        if not live:
            raise GatewayError(
                503, "UnavailableError", "The gateway is not started", code=grpc.StatusCode.UNAVAILABLE
            )
        return live[0]

    mounted = [mount(channel) for mount in config.mounts]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        del app
        live.append(make_channel())
        try:
            async with AsyncExitStack() as stack:
                for each in mounted:
                    await stack.enter_async_context(each.lifespan())
                yield
        finally:
            await live.pop().close()

    app = FastAPI(
        title=config.title,
        version=config.version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url=None,  # served below: FastAPI would describe its own routes, which are none of these
    )
    routes = routes_of(config.services)
    for route in routes:
        endpoint = Endpoint(route, channel, config.max_body_bytes)
        app.add_route(route.path, endpoint.__call__, methods=[route.verb], include_in_schema=False)
    for each in mounted:
        # An app instance (not a function) as endpoint: Starlette hands it the raw ASGI call, no redirect.
        app.router.routes.append(
            StarletteRoute(each.path, each.app, methods=["GET", "POST", "DELETE"], include_in_schema=False)
        )
    document = openapi_document(routes, title=config.title, version=config.version)

    async def openapi(request: Request) -> Response:
        del request
        return JSONResponse(document)

    app.add_route("/openapi.json", openapi, methods=["GET"], include_in_schema=False)

    async def stream_socket(socket: WebSocket) -> None:
        await serve_socket(socket, channel())

    app.router.add_websocket_route(WEBSOCKET_PATH, stream_socket)
    app.add_route("/docs", docs_page(config.title, "/openapi.json"), methods=["GET"], include_in_schema=False)
    app.mount(DOCS_ASSETS, docs_assets(), name="docs-assets")
    if config.dashboard:
        page = dashboard_page()
        for path in ("/", "/dashboard"):
            app.add_route(path, page, methods=["GET"], include_in_schema=False)
        app.mount(DASHBOARD_ASSETS, dashboard_assets(), name="dashboard-assets")
    app.add_exception_handler(HTTPException, handle_http_exception)
    # GatewayError by name: the handler for Exception runs outside the middleware (no security headers).
    app.add_exception_handler(GatewayError, handle_exception)
    app.add_exception_handler(Exception, handle_exception)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=sorted({r.verb for r in routes}),
            allow_headers=[*FORWARDED_HEADERS, "content-type", "accept"],
            expose_headers=list(RATE_LIMIT_HEADERS.values()),
        )
    app.add_middleware(SecurityHeadersMiddleware)
    return app
