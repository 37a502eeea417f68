"""The MCP server: list the contract's tools, and answer each call with one gRPC call to Iris.

Built on the SDK's low-level ``Server``, whose list/call handlers suit tools generated from descriptors.
Every failure is a tool error (``isError``) whose text and structured content are the standard error body
(``error``, ``message``, ``code``, ...), so a model reads why, and a client never sees a crash.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import grpc
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from iris_client.call_errors import CallFailure, failure_of

from .arguments import ToolInputError, request_from_arguments
from .calls import Caller, CallRefused, ToolCalls
from .tools import IrisTool, iris_tools

__all__ = ["CallerOf", "build_server"]

logger = logging.getLogger(__name__)

CallerOf = Callable[[ServerRequestContext[Any, Any]], Caller]
"""Says whom a request is for: fixed for stdio, read from the request's headers over HTTP."""

SERVER_NAME = "iris"
"""The server's name; Claude Code shows the tools as ``mcp__iris__<tool>``."""


def _package_version() -> str:
    try:
        return importlib.metadata.version("iris")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"


def _result(data: dict[str, Any], *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(data, indent=2))], structured_content=data, is_error=error
    )


def _failed(failure: CallFailure) -> types.CallToolResult:
    return _result(failure.body(), error=True)


def _instructions(from_team: str) -> str:
    who = f" Your calls are made as team '{from_team}' unless you pass fromTeam." if from_team else ""
    return (
        "Iris connects you to other teams: each team is a project with its own Claude Code. Ask a team "
        "(ask_message), tell it to do something (send_message), notify it without waiting (quick_message), "
        "and manage its sessions and processes. list_teams shows the teams." + who
    )


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
    listed = [
        types.Tool(name=tool.name, description=tool.description, input_schema=tool.input_schema)
        for tool in catalog.values()
    ]

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        del ctx, params
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = catalog.get(params.name)
        if tool is None:
            return _failed(
                CallFailure(
                    "NotFoundError",
                    f"No tool named '{params.name}'; tools/list shows the {len(catalog)} tools",
                    grpc.StatusCode.NOT_FOUND,
                    {"tool": params.name},
                )
            )
        sent = 0

        async def progress(text: str) -> None:
            nonlocal sent
            sent += 1
            await ctx.session.report_progress(sent, None, text)

        try:
            caller = caller_of(ctx)
            request = request_from_arguments(tool, params.arguments, caller.from_team)
            return _result(await calls.call(tool, request, caller, progress))
        except (ToolInputError, CallRefused) as exc:
            return _failed(exc.failure)
        except grpc.aio.AioRpcError as exc:
            return _failed(failure_of(exc))
        except Exception as exc:  # noqa: BLE001 - the call's top: a tool error, never a crash or a trace
            logger.error("MCP tool %s failed unexpectedly", tool.name, exc_info=exc)
            return _failed(
                CallFailure(
                    "InternalError", "Internal error; see the adapter's log", grpc.StatusCode.INTERNAL
                )
            )

    return Server(
        SERVER_NAME,
        version=_package_version(),
        instructions=_instructions(from_team),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
