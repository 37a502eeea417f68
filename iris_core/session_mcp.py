"""Iris's own MCP tools for a team's Claude (``sessionMcpEnabled``), so it can message other teams itself.

A team with ``sessionMcpEnabled: true`` gets, in every Claude Code process Iris starts for it, an MCP server
named ``iris``: Iris's MCP adapter, reached over streamable HTTP or run as a stdio child. The adapter is an
ordinary Iris client and must authenticate, so Iris issues it a key itself, in memory only (never in keys.db,
never in a file the team's Claude could read back), holding the team's ``mcpPermissions``. That keeps what
a team's Claude may do through Iris a matter of config, enforced by the same checks as any other caller.

The core does not know where the adapter is served: the transport layer sets :attr:`SessionMcp.endpoint`
once it knows its ports. Until then, no team gets the tools (with one warning per team), rather than a
process being started with an address that does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass

from claude_agent_sdk.types import McpHttpServerConfig, McpServerConfig, McpStdioServerConfig

from .config import TeamConfig
from .keys import SESSION_KEY_PREFIX, KeyStore

__all__ = ["KEY_VARIABLE", "MCP_SERVER_NAME", "McpEndpoint", "SessionMcp", "session_key_name"]

logger = logging.getLogger(__name__)

MCP_SERVER_NAME = "iris"
"""The MCP server's name in a team's Claude Code: its tools are ``mcp__iris__<tool>``."""

KEY_VARIABLE = "IRIS_SESSION_KEY"
"""The environment variable that carries a team's key into its Claude process (never its command line)."""

_KEY_NAME_PREFIX = SESSION_KEY_PREFIX
_MAX_KEY_NAME = 64


@dataclass(frozen=True)
class McpEndpoint:
    """How a team's Claude reaches the Iris MCP adapter; exactly one of ``url`` and ``command`` is set.

    If both are set, ``url`` wins: an HTTP endpoint is served by the running server, while a command starts
    one more process per Claude process.
    """

    url: str = ""
    """Streamable HTTP endpoint of the adapter, e.g. ``http://127.0.0.1:8080/mcp``."""
    command: tuple[str, ...] = ()
    """Argv that runs the adapter over stdio, e.g. ``(sys.executable, "-m", "iris_app.cli", "mcp",
    "--target", "127.0.0.1:50051")``; Iris appends ``--from-team NAME`` and passes the key in
    ``IRIS_API_KEY``."""


def session_key_name(team: str) -> str:
    """Return the name of ``team``'s session key (shown in the audit log): ``mcp.<team>``.

    Key names are at most 64 characters and team names up to 100, so a long one is cut and ends in a short
    hash of the whole team name: two long names with the same beginning must not share a key name, as
    issuing a key under a name replaces the one issued before.
    """
    name = _KEY_NAME_PREFIX + team
    if len(name) <= _MAX_KEY_NAME:
        return name
    digest = hashlib.sha256(team.encode()).hexdigest()[:8]
    return f"{name[: _MAX_KEY_NAME - len(digest) - 1]}-{digest}"


class SessionMcp:
    """Gives each ``sessionMcpEnabled`` team's Claude processes the Iris MCP server and a key to use it.

    One key per team per server run: issued on first use and reused by every pair that targets the team, so
    restarting a process does not churn keys, and a restarted server issues fresh ones (the old ones died
    with it).
    """

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._endpoint: McpEndpoint | None = None
        self._endpoint_known = asyncio.Event()
        self._team_keys: dict[str, str] = {}
        self._warned: set[str] = set()

    @property
    def endpoint(self) -> McpEndpoint | None:
        """Where the adapter is served; None until the transport layer sets it, and no team gets the tools."""
        return self._endpoint

    @endpoint.setter
    def endpoint(self, value: McpEndpoint | None) -> None:
        self._endpoint = value
        if value is not None:
            self._endpoint_known.set()

    async def wait_for_endpoint(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until the transport has said where the adapter is.

        Persisted turns re-queued at start-up may launch a process before the ports are bound; waiting here
        gives that process the tools too. Past the timeout it starts without them (``servers_for`` warns).
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._endpoint_known.wait()

    def servers_for(self, team: TeamConfig) -> dict[str, McpServerConfig]:
        """Return the ``mcp_servers`` entry for ``team``'s Claude Code: ``{"iris": config}`` or ``{}``.

        ``{}`` when the team does not have ``sessionMcpEnabled``, or when no endpoint is known yet (logged
        once per team). The config is a claude-agent-sdk ``McpHttpServerConfig`` or ``McpStdioServerConfig``.
        Either way the adapter is told the calling team (the ``X-Iris-From-Team`` header or ``--from-team``)
        so messages it sends come from this team.
        """
        if not team.session_mcp_enabled:
            return {}
        endpoint = self._usable_endpoint()
        if endpoint is None:
            if team.name not in self._warned:
                self._warned.add(team.name)
                logger.warning(
                    "team %s has sessionMcpEnabled but the Iris MCP adapter's address is not known; "
                    "its Claude starts without the Iris tools",
                    team.name,
                )
            return {}
        # The key itself goes in the process's environment (env_for), which only its user can read; the
        # config, which Claude Code gets on its command line, names it, and Claude Code expands the name.
        reference = "${" + KEY_VARIABLE + "}"
        config: McpServerConfig
        if endpoint.url:
            config = McpHttpServerConfig(
                type="http",
                url=endpoint.url,
                headers={"Authorization": f"Bearer {reference}", "X-Iris-From-Team": team.name},
            )
        else:
            config = McpStdioServerConfig(
                type="stdio",
                command=endpoint.command[0],
                args=[*endpoint.command[1:], "--from-team", team.name],
                env={"IRIS_API_KEY": reference},
            )
        return {MCP_SERVER_NAME: config}

    def env_for(self, team: TeamConfig) -> dict[str, str]:
        """Return the environment a team's Claude process needs for its servers: the team's key, if any.

        Raises:
            ValidationError: the team's ``mcp_permissions`` are not valid permissions (a TeamConfig built
                by hand; a loaded config has been checked already).

        """
        if not team.session_mcp_enabled or self._usable_endpoint() is None:
            return {}
        return {KEY_VARIABLE: self._key_for(team)}

    def _usable_endpoint(self) -> McpEndpoint | None:
        endpoint = self._endpoint
        return endpoint if endpoint is not None and (endpoint.url or endpoint.command) else None

    def _key_for(self, team: TeamConfig) -> str:
        key = self._team_keys.get(team.name)
        if key is None:
            key = self._keys.issue_session_key(
                session_key_name(team.name), team.mcp_permissions, team=team.name
            )
            self._team_keys[team.name] = key
        return key
