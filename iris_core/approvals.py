"""PermissionsApprove: answer a team's pending "ask" prompt, or apply the default tool policy."""

from __future__ import annotations

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .errors import ValidationError
from .permissions import PermissionBroker, policy_decision
from .validation import validate_team_name

__all__ = ["Approvals"]


class Approvals:
    """Decides tool permissions for callers: the broker's pending requests, or the policy."""

    def __init__(self, broker: PermissionBroker) -> None:
        self._broker = broker

    async def permissions_approve(
        self, request: pb.PermissionsApproveRequest, caller: Caller
    ) -> pb.PermissionsApproveResponse:
        """Answer a pending request (``request_id``), or apply the policy to ``tool_name``.

        The policy is the original iris-mcp's: Iris's own ``mcp__iris__*`` tools are allowed, everything
        else is denied. ``reason`` is for the caller's own logs; the decision does not depend on it.

        Raises:
            ValidationError: neither a request id nor a tool name, or a bad decision.
            NotFoundError: no such pending request for this caller.

        """
        from_team = caller.team(request.from_team)
        if request.request_id:
            validate_team_name(from_team, field="fromTeam")  # only the pair's caller may answer for it
            answer = self._broker.answer(request.request_id, request.decision, from_team)
            return pb.PermissionsApproveResponse(
                behavior="allow" if answer.allow else "deny", message=answer.message
            )
        if not request.tool_name:
            raise ValidationError(
                "toolName is required (or a requestId to answer)", details={"field": "toolName"}
            )
        verdict = policy_decision(request.tool_name)
        reply = pb.PermissionsApproveResponse(
            behavior="allow" if verdict.allow else "deny", message=verdict.message
        )
        if verdict.allow:
            reply.updated_input.CopyFrom(request.input)
        return reply
