"""A key acts only as itself: naming another caller's team in fromTeam is refused (and audited) unless the key
holds team:impersonate; reports, caches, cancels and approvals are scoped the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import Iris, audit_entries, error_details, error_reason, with_key


@asynccontextmanager
async def as_key(iris: Iris, name: str, *permissions: str) -> AsyncIterator[iris_pb2_grpc.IrisAsyncStub]:
    created = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name=name, permissions=list(permissions)))
    async with grpc.aio.insecure_channel(iris.target, interceptors=with_key(created.key)) as channel:
        yield iris_pb2_grpc.IrisStub(channel)


def refusals(iris: Iris, key_name: str) -> list[tuple[str, str]]:
    entries = audit_entries(iris.home)
    return [(e.method, e.outcome) for e in entries if e.key_name == key_name and e.event == "auth_failure"]


async def assert_refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(refused.value) == "ForbiddenError"
    return refused.value


async def test_a_key_cannot_read_or_continue_another_callers_conversation(iris: Iris) -> None:
    async with (
        as_key(iris, "keyB", "team:tell", "cache:read") as b,
        as_key(iris, "keyA", "team:tell", "cache:read") as a,
    ):
        told = await b.SendMessage(pb.SendMessageRequest(to_team="alpha", message="remember secret"))
        assert told.from_team == "keyB"
        denied = await assert_refused(
            a.SendMessage(pb.SendMessageRequest(to_team="alpha", from_team="keyB", message="recall"))
        )
        assert error_details(denied)["permission"] == "team:impersonate"
        await assert_refused(a.SessionReport(pb.SessionReportRequest(team="alpha", from_team="keyB")))
        await assert_refused(a.GetCache(pb.GetCacheRequest(session_id=told.session_id)))
        await assert_refused(a.ClearCache(pb.ClearCacheRequest(session_id=told.session_id)))
        await assert_refused(a.SessionCancel(pb.SessionCancelRequest(team="alpha", from_team="keyB")))
        await assert_refused(
            a.PermissionsApprove(
                pb.PermissionsApproveRequest(request_id="perm_x", decision="allow", from_team="keyB")
            )
        )
        mine = await a.SendMessage(pb.SendMessageRequest(to_team="alpha", message="recall"))
        assert (mine.from_team, mine.response) == ("keyA", "you told me: nothing")
        own = await b.GetCache(pb.GetCacheRequest(session_id=told.session_id))
        assert [e.request for e in own.report.entries] == ["remember secret"]
    async with asyncio.timeout(10):
        while len(refusals(iris, "keyA")) < 6:
            await asyncio.sleep(0.05)
    assert [m for m, _ in refusals(iris, "keyA")] == [
        "SendMessage",
        "SessionReport",
        "GetCache",
        "ClearCache",
        "SessionCancel",
        "PermissionsApprove",
    ]
    assert {o for _, o in refusals(iris, "keyA")} == {"PERMISSION_DENIED"}


async def test_a_key_with_team_impersonate_may_act_for_a_named_caller(iris: Iris) -> None:
    async with (
        as_key(iris, "keyB", "team:tell") as b,
        as_key(iris, "gateway", "team:tell", "team:impersonate", "cache:read") as g,
    ):
        told = await b.SendMessage(pb.SendMessageRequest(to_team="alpha", message="remember plum"))
        recalled = await g.SendMessage(
            pb.SendMessageRequest(to_team="alpha", from_team="keyB", message="recall")
        )
        assert (recalled.from_team, recalled.response) == ("keyB", "you told me: plum")
        cached = await g.GetCache(pb.GetCacheRequest(session_id=told.session_id))
        assert len(cached.report.entries) == 2


async def test_naming_the_keys_own_name_is_the_same_as_leaving_it_out(iris: Iris) -> None:
    async with as_key(iris, "keyC", "team:tell") as c:
        named = await c.SendMessage(pb.SendMessageRequest(to_team="beta", from_team="keyC", message="say hi"))
        left_out = await c.SendMessage(pb.SendMessageRequest(to_team="beta", message="say again"))
    assert named.session_id == left_out.session_id and named.from_team == "keyC"
