"""The MCP adapter: the original iris-mcp's 17 tools for Claude Code, each one gRPC call into Iris.

It decides nothing. Which RPCs are tools, their names and descriptions come from the contract's
``(iris.v1.mcp_tool)`` options; their input schemas from the request messages and their comments; their
results are the replies as JSON. Authentication, validation and limits happen behind gRPC, so a tool call
behaves exactly as the same call over REST or a gRPC stub, and fails with the same error body.

Transports: stdio (``iris mcp --from-team NAME``, what Claude Code runs; its own small JSON-RPC server) and
streamable HTTP (the MCP SDK's server), mounted at ``/mcp`` on the REST gateway's port by ``iris serve``.
``build_server`` is imported on first use, so the stdio adapter never loads the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .calls import Caller
from .tools import IrisTool, iris_tools

if TYPE_CHECKING:
    from .server import build_server

__all__ = ["Caller", "IrisTool", "build_server", "iris_tools"]


def __getattr__(name: str) -> Any:
    """Load ``build_server`` (and with it the MCP SDK) only when it is asked for."""
    if name == "build_server":
        from .server import build_server

        return build_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
