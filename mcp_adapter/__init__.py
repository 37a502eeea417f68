"""The MCP adapter: the original iris-mcp's 17 tools for Claude Code, each one gRPC call into Iris.

It decides nothing. Which RPCs are tools, their names and descriptions come from the contract's
``(iris.v1.mcp_tool)`` options; their input schemas from the request messages and their comments; their
results are the replies as JSON. Authentication, validation and limits happen behind gRPC, so a tool call
behaves exactly as the same call over REST or a gRPC stub, and fails with the same error body.

Transports: stdio (``iris mcp --from-team NAME``, what Claude Code runs) and streamable HTTP, mounted at
``/mcp`` on the REST gateway's port by ``iris serve``.
"""

from .calls import Caller
from .server import build_server
from .tools import IrisTool, iris_tools

__all__ = ["Caller", "IrisTool", "build_server", "iris_tools"]
