"""Tool permissions for teams' Claude processes: grantPermission yes / no / ask.

Claude Code asks the ``can_use_tool`` callback when its own rules say "ask" (writing files, running
commands). The answer depends on the team's ``grantPermission``:

- ``yes``: allow.
- ``no``: the original iris-mcp's policy, Iris's own ``mcp__iris__*`` tools allowed, everything else denied.
- ``ask``: Iris's own tools allowed; anything else becomes a pending request, announced on the turn's stream
  as a ``permission_request`` event, answered by ``PermissionsApprove(request_id, decision)``, and denied when
  nobody answers within ``settings.permissionTimeout``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext
from claude_agent_sdk.types import PermissionResult

from .clock import now_ms
from .config import GrantPermission
from .errors import NotFoundError, ValidationError

__all__ = ["Decision", "PermissionBroker", "policy_decision"]

logger = logging.getLogger(__name__)

IRIS_TOOL_PREFIX = "mcp__iris__"


@dataclass(frozen=True, slots=True)
class Decision:
    """An allow/deny answer with a reason for people."""

    allow: bool
    message: str


def policy_decision(tool_name: str) -> Decision:
    """Apply the original iris-mcp's policy: Iris's own MCP tools are allowed, every other tool is denied."""
    if tool_name.startswith(IRIS_TOOL_PREFIX):
        return Decision(True, f"{tool_name} is an Iris tool")
    return Decision(False, f"{tool_name} is not an Iris tool; the policy denies it")


@dataclass(slots=True)
class _Pending:
    from_team: str
    future: asyncio.Future[bool]


# Announces a pending request on the running turn: (request_id, tool, input, expires_at_ms).
Announce = Callable[[str, str, dict[str, Any], int], Awaitable[None]]


class PermissionBroker:
    """Holds the pending "ask" requests and builds each process's ``can_use_tool`` callback."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._pending: dict[str, _Pending] = {}
        self.on_decided: Callable[[str, str, str], None] | None = None
        """Told (request id, calling team, "allow"/"deny") of every answer (the event log)."""

    def callback(
        self, grant: GrantPermission, from_team: str, announce: Announce
    ) -> Callable[[str, dict[str, Any], ToolPermissionContext], Awaitable[PermissionResult]]:
        """Return the ``can_use_tool`` callback for a process of the pair (from_team -> a team)."""

        async def can_use_tool(
            tool_name: str, tool_input: dict[str, Any], _context: ToolPermissionContext
        ) -> PermissionResult:
            decision = await self._decide(grant, from_team, tool_name, tool_input, announce)
            logger.info(
                "permission %s for %s (%s)", "allowed" if decision.allow else "denied", tool_name, grant
            )
            if decision.allow:
                return PermissionResultAllow(updated_input=tool_input)
            return PermissionResultDeny(message=decision.message)

        return can_use_tool

    async def _decide(
        self,
        grant: GrantPermission,
        from_team: str,
        tool_name: str,
        tool_input: dict[str, Any],
        announce: Announce,
    ) -> Decision:
        if grant is GrantPermission.YES:
            return Decision(True, "grantPermission is yes")
        if grant is GrantPermission.NO or tool_name.startswith(IRIS_TOOL_PREFIX):
            return policy_decision(tool_name)
        request_id = f"perm_{uuid.uuid4().hex}"
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(from_team, future)
        try:
            await announce(request_id, tool_name, tool_input, now_ms() + int(self._timeout_s * 1000))
            async with asyncio.timeout(self._timeout_s):
                allowed = await future
        except TimeoutError:
            return Decision(False, f"No decision for {tool_name} within {self._timeout_s:g}s; denied")
        finally:
            self._pending.pop(request_id, None)
        return Decision(allowed, "allowed by the caller" if allowed else "denied by the caller")

    def answer(self, request_id: str, decision: str, from_team: str) -> Decision:
        """Resolve a pending request.

        Raises:
            ValidationError: ``decision`` is not allow/deny.
            NotFoundError: no such pending request (unknown, answered, or expired), or it belongs to another
                caller's pair.

        """
        if decision not in ("allow", "deny"):
            raise ValidationError('decision must be "allow" or "deny"', details={"field": "decision"})
        pending = self._pending.get(request_id)
        if pending is None or pending.future.done() or pending.from_team != from_team:
            raise NotFoundError(f"No pending permission request {request_id}")
        pending.future.set_result(decision == "allow")
        if self.on_decided is not None:
            self.on_decided(request_id, from_team, decision)
        return Decision(decision == "allow", f"{decision} recorded for {request_id}")
