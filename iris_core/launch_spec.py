"""What a pair's Claude Code process is started with: its team's folder, environment, session and rules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from claude_agent_sdk.types import McpServerConfig

from .claude_process import LaunchSpec
from .config import GrantPermission
from .pairs import PairRuntime
from .permissions import PermissionBroker
from .rewind import Rewind
from .run_as import identity_of
from .session_mcp import MCP_SERVER_NAME
from .transcripts import find_transcripts

__all__ = ["launch_spec"]

_IRIS_TOOLS = f"mcp__{MCP_SERVER_NAME}"
"""Claude Code's allowedTools rule for every tool of the Iris MCP server."""


def launch_spec(
    state: PairRuntime,
    session_id: str,
    env: Mapping[str, str],
    broker: PermissionBroker,
    mcp_servers: Mapping[str, McpServerConfig] | None = None,
    rewind: Rewind | None = None,
) -> LaunchSpec:
    """Build the spec for the pair's next process.

    It resumes the session when Claude Code already has its transcript, and starts it under the Iris-chosen id
    otherwise; its permission prompts for "ask" are announced on whichever turn is running at the time.
    ``mcp_servers`` (the Iris MCP server of a ``sessionMcpEnabled`` team, see ``SessionMcp.servers_for``) are
    given to the process, and the tools of the ``iris`` one are allowed without asking: using Iris is what
    the team's config enabled, and its key's permissions already bound what those tools can do.
    ``rewind`` (see ``rewind.plan_rewind``) resumes the conversation from before a cut-off attempt.
    """
    team = state.team
    resume = bool(find_transcripts({**os.environ, **env}, session_id))

    async def announce(request_id: str, tool: str, tool_input: dict[str, Any], expires_at: int) -> None:
        turn = state.current
        if turn is not None:
            await turn.publish_permission_request(request_id, tool, tool_input, expires_at)

    servers = dict(mcp_servers or {})
    allowed = tuple(team.allowed_tools)
    if MCP_SERVER_NAME in servers and _IRIS_TOOLS not in allowed:
        allowed = (*allowed, _IRIS_TOOLS)
    # grantPermission "no" means only Iris's own tools: Claude Code still runs what it deems read-only (Bash
    # `id`, `ls`, `cat`) without asking, so the built-in tools are removed rather than denied one by one.
    no_builtins = team.grant_permission is GrantPermission.NO
    return LaunchSpec(
        cwd=team.path,
        env=dict(env),
        session_id=session_id,
        resume=resume,
        can_use_tool=broker.callback(team.grant_permission, state.pair.from_team, announce),
        model=team.model,
        tools=() if no_builtins else None,
        allowed_tools=allowed,
        disallowed_tools=team.disallowed_tools,
        mcp_servers=servers,
        pair=str(state.pair),
        run_as=identity_of(team.run_as) if team.run_as else None,
        resume_at=rewind.resume_at if rewind is not None else None,
        drops_turn=rewind.prompt if rewind is not None and rewind.resume_at else None,
        max_budget_usd=team.max_turn_budget_usd or None,
        remote=team.remote,
        ray=team.ray,
    )
