"""REST gateway generated from the contract's ``google.api.http`` rules.

``create_app(target)`` returns a FastAPI app whose routes, request binding and OpenAPI document all come
from the service descriptors; it reaches Iris over a gRPC channel, so auth, limits and errors are Iris's own.
"""

from .app import ChannelFactory, GatewayConfig, Mount, Mounted, create_app
from .errors import HTTP_STATUS_OF, GatewayError
from .openapi import openapi_document
from .routes import Route, compile_template, routes_of

__all__ = [
    "HTTP_STATUS_OF",
    "ChannelFactory",
    "GatewayConfig",
    "GatewayError",
    "Mount",
    "Mounted",
    "Route",
    "compile_template",
    "create_app",
    "openapi_document",
    "routes_of",
]
