"""The SDK's MCP server (``/mcp`` over HTTP, and in-memory clients): the contract's tools, each one gRPC call.

Built on the SDK's low-level ``Server``, whose list/call handlers suit tools generated from descriptors.
What it lists and answers comes from ``answers``, shared with the stdio adapter's own lighter server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from .answers import SERVER_NAME, answer_call, instructions, package_version, text_of, tool_listing
from .calls import Caller, ToolCalls
from .tools import IrisTool, iris_tools

__all__ = ["SERVER_NAME", "CallerOf", "build_server"]

CallerOf = Callable[[ServerRequestContext[Any, Any]], Caller]
"""Says whom a request is for: fixed for stdio, read from the request's headers over HTTP."""


def build_server(
    calls: ToolCalls,
    caller_of: CallerOf,
    *,
    tools: Iterable[IrisTool] | None = None,
    from_team: str = "",
) -> Server[Any]:
    """Return an MCP server offering ``tools`` (default: the contract's) and calling Iris through ``calls``.

    ``from_team`` only words the server's instructions; each call's own default comes from ``caller_of``.
    """
    catalog = {tool.name: tool for tool in (iris_tools() if tools is None else tools)}
    listed = [types.Tool.model_validate(tool_listing(tool)) for tool in catalog.values()]

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        del ctx, params
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        sent = 0

        async def progress(text: str) -> None:
            nonlocal sent
            sent += 1
            await ctx.session.report_progress(sent, None, text)

        data, error = await answer_call(
            catalog, params.name, params.arguments, calls, lambda: caller_of(ctx), progress
        )
        return types.CallToolResult(
            content=[types.TextContent(text=text_of(data))], structured_content=data, is_error=error
        )

    return Server(
        SERVER_NAME,
        version=package_version(),
        instructions=instructions(from_team),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
