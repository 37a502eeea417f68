"""What the MCP server says, whatever carries it: its identity, its tools, and each tool call's result.

Shared by the two servers: the SDK's (``server.py``, for ``/mcp`` over HTTP) and the stdio adapter's own
small JSON-RPC loop (``stdio_server.py``), which must not import the SDK to stay small. Both therefore list
the same tools and answer a call with the same result, built here as the wire's JSON.

Every failure is a tool error (``isError``) whose text and structured content are the standard error body
(``error``, ``message``, ``code``, ...), so a model reads why, and a client never sees a crash.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from iris_client.call_errors import CallFailure, failure_of

from .arguments import ToolInputError, request_from_arguments
from .calls import Caller, CallRefused, Progress, ToolCalls
from .tools import IrisTool

__all__ = ["SERVER_NAME", "ToolAnswer", "answer_call", "instructions", "package_version", "tool_listing"]

logger = logging.getLogger(__name__)

SERVER_NAME = "iris"
"""The server's name; Claude Code shows the tools as ``mcp__iris__<tool>``."""

ToolAnswer = tuple[dict[str, Any], bool]
"""A tool call's structured result and whether it is an error."""


def package_version() -> str:
    """Return the installed ``iris`` version, reported as the server's version."""
    try:
        return importlib.metadata.version("iris")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"


def instructions(from_team: str) -> str:
    """Return the server's instructions to the model (naming ``from_team`` as the default caller, if any)."""
    who = f" Your calls are made as team '{from_team}' unless you pass fromTeam." if from_team else ""
    return (
        "Iris connects you to other teams: each team is a project with its own Claude Code. Ask a team "
        "(ask_message), tell it to do something (send_message), notify it without waiting (quick_message), "
        "and manage its sessions and processes. list_teams shows the teams." + who
    )


def tool_listing(tool: IrisTool) -> dict[str, Any]:
    """``tool`` as ``tools/list`` shows it."""
    return {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}


def text_of(data: Mapping[str, Any]) -> str:
    """Return a result's text content: its structured content as indented JSON, for a model to read."""
    return json.dumps(data, indent=2)


async def answer_call(
    catalog: Mapping[str, IrisTool],
    name: str,
    arguments: Mapping[str, Any] | None,
    calls: ToolCalls,
    caller_of: Callable[[], Caller],
    progress: Progress,
) -> ToolAnswer:
    """Answer one tool call: its structured result, and whether it is an error (never an exception).

    ``caller_of`` says whom the call is for (it raises ``CallRefused`` for credentials gRPC cannot carry);
    ``progress`` reports progress to the client.
    """
    tool = catalog.get(name)
    if tool is None:
        missing = CallFailure(
            "NotFoundError",
            f"No tool named '{name}'; tools/list shows the {len(catalog)} tools",
            grpc.StatusCode.NOT_FOUND,
            {"tool": name},
        )
        return missing.body(), True
    try:
        caller = caller_of()
        request = request_from_arguments(tool, arguments, caller.from_team)
        return await calls.call(tool, request, caller, progress), False
    except (ToolInputError, CallRefused) as exc:
        return exc.failure.body(), True
    except grpc.aio.AioRpcError as exc:
        return failure_of(exc).body(), True
    except Exception as exc:  # noqa: BLE001 - the call's top: a tool error, never a crash or a trace
        logger.error("MCP tool %s failed unexpectedly", tool.name, exc_info=exc)
        internal = CallFailure(
            "InternalError", "Internal error; see the adapter's log", grpc.StatusCode.INTERNAL
        )
        return internal.body(), True
