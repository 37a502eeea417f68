"""The iris.v1.Iris servicer: each RPC unpacks its request, calls ``IrisService`` and packs the result.

The service returns dicts shaped like the contract's JSON, so packing is ``json_format.ParseDict`` into the
response type: the contract stays the only schema. Errors are mapped once, by ``status.abort_with``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc as pb_grpc
from iris_core.access import calling_team
from iris_core.service import IrisService

from .interceptors import CALL
from .status import abort_with

__all__ = ["IrisServicer"]

Context = grpc.aio.ServicerContext[Any, Any]
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def _unary(
    method: Callable[[Any, Req, Context], Awaitable[Resp]],
) -> Callable[[Any, Req, Context], Awaitable[Resp]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: Context) -> Resp:
        try:
            return await method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - the request's top: every error becomes a status
            await abort_with(context, exc)
            raise AssertionError("abort returned") from exc

    return wrapper


def _caller(from_team: str) -> str:
    """Return the team the current call is made as (see ``iris_core.access.calling_team``)."""
    info = CALL.get()
    return calling_team(from_team, info.key if info is not None else None)


def _caller_name() -> str:
    """Name the key behind the current call (for the audit trail of key changes)."""
    info = CALL.get()
    return (
        f"key {info.key.name}" if info is not None and info.key is not None else "an unauthenticated caller"
    )


def _pack(result: dict[str, Any], message: Resp) -> Resp:
    return json_format.ParseDict(result, message)


class IrisServicer(pb_grpc.IrisServicer):
    """Implements the contract on an ``IrisService``."""

    def __init__(self, service: IrisService) -> None:
        self._service = service

    async def _send(self, request: pb.SendMessageRequest | pb.AskMessageRequest) -> dict[str, Any]:
        return await self._service.send_message(
            from_team=_caller(request.from_team),
            to_team=request.to_team,
            message=request.message,
            timeout_ms=request.timeout if request.HasField("timeout") else None,
            persist=request.persist,
            ttl_days=request.ttl_days if request.HasField("ttl_days") else None,
        )

    @_unary
    async def SendMessage(self, request: pb.SendMessageRequest, context: Context) -> pb.SendMessageResponse:
        """See the contract."""
        return _pack(await self._send(request), pb.SendMessageResponse())

    @_unary
    async def AskMessage(self, request: pb.AskMessageRequest, context: Context) -> pb.AskMessageResponse:
        """See the contract (the same as SendMessage, named for intent)."""
        return _pack(await self._send(request), pb.AskMessageResponse())

    @_unary
    async def QuickMessage(
        self, request: pb.QuickMessageRequest, context: Context
    ) -> pb.QuickMessageResponse:
        """See the contract."""
        result = await self._service.quick_message(
            from_team=_caller(request.from_team), to_team=request.to_team, message=request.message
        )
        return _pack(result, pb.QuickMessageResponse())

    async def Tell(self, request: pb.TellRequest, context: Context) -> AsyncIterator[pb.TellResponse]:
        """See the contract. A client that goes away stops the stream, not the team's turn."""
        try:
            events = await self._service.tell(
                from_team=_caller(request.from_team),
                to_team=request.to_team,
                message=request.message,
                timeout_ms=request.timeout if request.HasField("timeout") else None,
                persist=request.persist,
                ttl_days=request.ttl_days if request.HasField("ttl_days") else None,
            )
            async for event in events:
                yield _pack(event, pb.TellResponse())
        except Exception as exc:  # noqa: BLE001 - the request's top: every error becomes a status
            await abort_with(context, exc)

    @_unary
    async def SessionCancel(
        self, request: pb.SessionCancelRequest, context: Context
    ) -> pb.SessionCancelResponse:
        """See the contract."""
        result = await self._service.session_cancel(team=request.team, from_team=_caller(request.from_team))
        return _pack(result, pb.SessionCancelResponse())

    @_unary
    async def SessionReboot(
        self, request: pb.SessionRebootRequest, context: Context
    ) -> pb.SessionRebootResponse:
        """See the contract."""
        result = await self._service.session_reboot(
            to_team=request.to_team, from_team=_caller(request.from_team)
        )
        return _pack(result, pb.SessionRebootResponse())

    @_unary
    async def SessionDelete(
        self, request: pb.SessionDeleteRequest, context: Context
    ) -> pb.SessionDeleteResponse:
        """See the contract."""
        result = await self._service.session_delete(
            to_team=request.to_team, from_team=_caller(request.from_team)
        )
        return _pack(result, pb.SessionDeleteResponse())

    @_unary
    async def SessionFork(self, request: pb.SessionForkRequest, context: Context) -> pb.SessionForkResponse:
        """See the contract."""
        result = await self._service.session_fork(
            to_team=request.to_team, from_team=_caller(request.from_team)
        )
        return _pack(result, pb.SessionForkResponse())

    @_unary
    async def SessionReport(
        self, request: pb.SessionReportRequest, context: Context
    ) -> pb.SessionReportResponse:
        """See the contract."""
        result = await self._service.session_report(team=request.team, from_team=_caller(request.from_team))
        return _pack(result, pb.SessionReportResponse())

    @_unary
    async def TeamWake(self, request: pb.TeamWakeRequest, context: Context) -> pb.TeamWakeResponse:
        """See the contract."""
        result = await self._service.team_wake(team=request.team, from_team=_caller(request.from_team))
        return _pack(result, pb.TeamWakeResponse())

    @_unary
    async def TeamLaunch(self, request: pb.TeamLaunchRequest, context: Context) -> pb.TeamLaunchResponse:
        """See the contract."""
        result = await self._service.team_wake(team=request.team, from_team=_caller(request.from_team))
        return _pack(result, pb.TeamLaunchResponse())

    @_unary
    async def TeamSleep(self, request: pb.TeamSleepRequest, context: Context) -> pb.TeamSleepResponse:
        """See the contract."""
        result = await self._service.team_sleep(
            team=request.team, from_team=_caller(request.from_team), force=request.force
        )
        return _pack(result, pb.TeamSleepResponse())

    @_unary
    async def TeamWakeAll(self, request: pb.TeamWakeAllRequest, context: Context) -> pb.TeamWakeAllResponse:
        """See the contract."""
        result = await self._service.team_wake_all(
            from_team=_caller(request.from_team), parallel=request.parallel
        )
        return _pack(result, pb.TeamWakeAllResponse())

    @_unary
    async def TeamStatus(self, request: pb.TeamStatusRequest, context: Context) -> pb.TeamStatusResponse:
        """See the contract."""
        result = await self._service.team_status(
            from_team=_caller(request.from_team),
            team=request.team if request.HasField("team") else None,
            include_notifications=(
                request.include_notifications if request.HasField("include_notifications") else True
            ),
        )
        return _pack(result, pb.TeamStatusResponse())

    @_unary
    async def ListTeams(self, request: pb.ListTeamsRequest, context: Context) -> pb.ListTeamsResponse:
        """See the contract."""
        return _pack(await self._service.list_teams(), pb.ListTeamsResponse())

    @_unary
    async def GetLogs(self, request: pb.GetLogsRequest, context: Context) -> pb.GetLogsResponse:
        """See the contract."""
        result = await self._service.get_logs(
            logs_since=request.logs_since if request.HasField("logs_since") else None,
            store_name=request.store_name,
            format=request.format,
            level=list(request.level),
            get_all_stores=request.get_all_stores,
        )
        return _pack(result, pb.GetLogsResponse())

    @_unary
    async def GetDate(self, request: pb.GetDateRequest, context: Context) -> pb.GetDateResponse:
        """See the contract."""
        return _pack(await self._service.get_date(), pb.GetDateResponse())

    @_unary
    async def GetStatus(self, request: pb.GetStatusRequest, context: Context) -> pb.GetStatusResponse:
        """See the contract."""
        return _pack(await self._service.get_status(), pb.GetStatusResponse())

    @_unary
    async def GetHealth(self, request: pb.GetHealthRequest, context: Context) -> pb.GetHealthResponse:
        """See the contract."""
        return _pack(await self._service.get_health(), pb.GetHealthResponse())

    @_unary
    async def GetCache(self, request: pb.GetCacheRequest, context: Context) -> pb.GetCacheResponse:
        """See the contract."""
        return _pack(await self._service.get_cache(session_id=request.session_id), pb.GetCacheResponse())

    @_unary
    async def ClearCache(self, request: pb.ClearCacheRequest, context: Context) -> pb.ClearCacheResponse:
        """See the contract."""
        return _pack(await self._service.clear_cache(session_id=request.session_id), pb.ClearCacheResponse())

    @_unary
    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context
    ) -> pb.CreateApiKeyResponse:
        """See the contract."""
        result = await self._service.key_admin.create(
            name=request.name,
            permissions=list(request.permissions),
            expires_in=request.expires_in,
            environment=request.environment,
            rate_limit=request.rate_limit,
            by=_caller_name(),
        )
        return _pack(result, pb.CreateApiKeyResponse())

    @_unary
    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context: Context) -> pb.ListApiKeysResponse:
        """See the contract."""
        return _pack(await self._service.key_admin.list(), pb.ListApiKeysResponse())

    @_unary
    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context
    ) -> pb.RevokeApiKeyResponse:
        """See the contract."""
        result = await self._service.key_admin.revoke(key=request.key, by=_caller_name())
        return _pack(result, pb.RevokeApiKeyResponse())

    @_unary
    async def PermissionsApprove(
        self, request: pb.PermissionsApproveRequest, context: Context
    ) -> pb.PermissionsApproveResponse:
        """See the contract."""
        result = await self._service.permissions_approve(
            tool_name=request.tool_name,
            tool_input=json_format.MessageToDict(request.input),
            reason=request.reason,
            request_id=request.request_id,
            decision=request.decision,
            from_team=_caller(request.from_team),
        )
        return _pack(result, pb.PermissionsApproveResponse())
