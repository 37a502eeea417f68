"""Authentication, authorization, rate limits and the audit log, enforced at the gRPC boundary."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from dataclasses import astuple
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import Message

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_core.access import PERMISSIONS
from iris_grpc.method_permissions import method_permissions
from tests.harness import (
    Iris,
    audit_entries,
    error_details,
    error_reason,
    self_signed,
    start_iris,
    with_key,
    write_config,
)

SERVICE = pb.DESCRIPTOR.services_by_name["Iris"]
NEEDED = method_permissions()


async def call(
    channel: grpc.aio.Channel,
    method: str,
    metadata: tuple[tuple[str, str], ...] = (),
    request: Message | None = None,
) -> Any:
    """Call an Iris method by name (with an empty request unless given); return its reply (a stream's first
    event)."""
    descriptor = SERVICE.methods_by_name[method]
    request_class = getattr(pb, descriptor.input_type.name)
    response_class = getattr(pb, descriptor.output_type.name)
    path = f"/{SERVICE.full_name}/{method}"
    sent = request_class() if request is None else request
    async with asyncio.timeout(30):
        if descriptor.server_streaming:
            stream = channel.unary_stream(path, request_class.SerializeToString, response_class.FromString)
            async for event in stream(sent, metadata=metadata):
                return event
            return None
        unary = channel.unary_unary(path, request_class.SerializeToString, response_class.FromString)
        return await unary(sent, metadata=metadata)


ANSWERED: dict[str, Message] = {
    "SendMessage": pb.SendMessageRequest(to_team="alpha", message="say hi"),
    "AskMessage": pb.AskMessageRequest(to_team="alpha", message="say hi"),
    "QuickMessage": pb.QuickMessageRequest(to_team="alpha", message="say hi"),
    "Tell": pb.TellRequest(to_team="alpha", message="say hi"),
    "SessionCancel": pb.SessionCancelRequest(team="alpha"),
    "SessionReboot": pb.SessionRebootRequest(to_team="alpha"),
    "SessionDelete": pb.SessionDeleteRequest(to_team="alpha"),
    "SessionReport": pb.SessionReportRequest(team="alpha"),
    "TeamWake": pb.TeamWakeRequest(team="alpha"),
    "TeamLaunch": pb.TeamLaunchRequest(team="alpha"),
    "TeamSleep": pb.TeamSleepRequest(team="alpha"),
    "TeamWakeAll": pb.TeamWakeAllRequest(),
    "TeamStatus": pb.TeamStatusRequest(),
    "ListTeams": pb.ListTeamsRequest(),
    "GetLogs": pb.GetLogsRequest(),
    "GetDate": pb.GetDateRequest(),
    "GetStatus": pb.GetStatusRequest(),
    "GetHealth": pb.GetHealthRequest(),
    "CreateApiKey": pb.CreateApiKeyRequest(name="made-by-an-allowed-key", permissions=["status:read"]),
    "ListApiKeys": pb.ListApiKeysRequest(),
    "RevokeApiKey": pb.RevokeApiKeyRequest(key="lacks-RevokeApiKey"),  # the key refused above
    "PermissionsApprove": pb.PermissionsApproveRequest(tool_name="Read"),
    "Ask": pb.AskRequest(team="alpha", question="say hi"),
    "ListMessages": pb.ListMessagesRequest(),
    "GetUsage": pb.GetUsageRequest(),
    "Execute": pb.ExecuteRequest(team="alpha", task="say hi"),
}
"""A request each RPC answers with success, sent without fromTeam (the caller is its key's name)."""

NO_SESSION = (grpc.StatusCode.NOT_FOUND, "SessionNotFoundError")

REFUSED: dict[str, tuple[Message, tuple[grpc.StatusCode, str]]] = {
    "SessionFork": (pb.SessionForkRequest(to_team="alpha"), NO_SESSION),
    "GetCache": (pb.GetCacheRequest(session_id="no-such-session"), NO_SESSION),
    "ClearCache": (pb.ClearCacheRequest(session_id="no-such-session"), NO_SESSION),
    "GetMessage": (
        pb.GetMessageRequest(message_id="msg_none"),
        (grpc.StatusCode.NOT_FOUND, "MessageNotFoundError"),
    ),
    "WatchEvents": (
        pb.WatchEventsRequest(after_id=-1),
        (grpc.StatusCode.INVALID_ARGUMENT, "ValidationError"),
    ),
    "CancelMessage": (
        pb.CancelMessageRequest(message_id="msg_none"),
        (grpc.StatusCode.NOT_FOUND, "MessageNotFoundError"),
    ),
}
"""RPCs whose well-formed request needs state a fresh server lacks (a session, a message): the domain's own
refusal."""


async def new_key(iris: Iris, name: str, *permissions: str, **kw: Any) -> str:
    reply = await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name=name, permissions=permissions, **kw))
    assert reply.key.startswith("iris_sk_live_") and len(reply.key) >= 45
    return str(reply.key)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def bare_channel(iris: Iris) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(iris.target)


def audit_rows(iris: Iris) -> list[tuple[str, ...]]:
    return [astuple(entry) for entry in audit_entries(iris.home)]


def test_every_rpc_of_the_contract_declares_a_known_permission() -> None:
    assert set(NEEDED) == {f"/iris.v1.Iris/{m.name}" for m in SERVICE.methods}
    assert set(NEEDED.values()) <= set(PERMISSIONS)


def test_an_rpc_without_a_permission_stops_the_server_from_starting() -> None:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="open.proto",
            package="t",
            message_type=[descriptor_pb2.DescriptorProto(name="M")],
            service=[
                descriptor_pb2.ServiceDescriptorProto(
                    name="S",
                    method=[
                        descriptor_pb2.MethodDescriptorProto(
                            name="Open", input_type=".t.M", output_type=".t.M"
                        )
                    ],
                )
            ],
        )
    )
    with pytest.raises(RuntimeError, match="t.S.Open declares no permission"):
        method_permissions(pool.FindServiceByName("t.S"))


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
async def test_each_rpc_needs_a_key_with_its_permission(iris: Iris, method: str) -> None:
    needed = NEEDED[f"/iris.v1.Iris/{method}"]
    other = next(p for p in PERMISSIONS if p not in (needed, "admin"))
    allowed = await new_key(iris, f"has-{method}", needed)
    lacking = await new_key(iris, f"lacks-{method}", other)
    async with grpc.aio.insecure_channel(iris.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call(channel, method)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(missing.value) == "UnauthorizedError"
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await call(channel, method, bearer(lacking))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(denied.value) == "ForbiddenError"
        assert needed in (denied.value.details() or "")
        if method in ANSWERED:
            assert await call(channel, method, bearer(allowed), ANSWERED[method]) is not None
        else:
            request, expected = REFUSED[method]
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(channel, method, bearer(allowed), request)
            assert (refused.value.code(), error_reason(refused.value)) == expected


def test_every_rpc_has_a_request_for_the_allowed_call() -> None:
    assert sorted([*ANSWERED, *REFUSED]) == sorted(m.name for m in SERVICE.methods)


async def test_health_and_reflection_need_no_key(iris: Iris) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(iris.target) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="iris.v1.Iris"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("header", "value", "cause"),
    [
        ("authorization", "Bearer not-a-key", "malformed"),
        ("authorization", "Bearer sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789", "malformed"),
        ("authorization", "Bearer iris_sk_live_" + "A" * 40, "unknown"),
        ("x-api-key", "iris_sk_live_" + "B" * 40, "unknown"),
        ("authorization", "Bearer " + "x" * 16_000, "malformed"),
        ("authorization", "Basic dXNlcjpwYXNz", "missing"),
    ],
)
async def test_bad_credentials_are_unauthenticated_and_audited(
    iris: Iris, header: str, value: str, cause: str
) -> None:
    async with grpc.aio.insecure_channel(iris.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(channel, "ListTeams", ((header, value),))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert value[-20:] not in (refused.value.details() or "")
    assert ("auth_failure", "", "ListTeams", "", "UNAUTHENTICATED", cause) in audit_rows(iris)


async def test_revoked_and_expired_keys_are_refused(iris: Iris) -> None:
    revoked = await new_key(iris, "soon-revoked", "status:read")
    expired = await new_key(iris, "soon-expired", "status:read", expires_in="30d")
    async with grpc.aio.insecure_channel(iris.target) as channel:
        await call(channel, "ListTeams", bearer(revoked))
        await iris.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key="soon-revoked"))
        with sqlite3.connect(iris.home / "keys.db") as db:  # the clock moves past the expiry
            db.execute("UPDATE keys SET expires_at = 1 WHERE name = 'soon-expired'")
        for key, cause in ((revoked, "revoked"), (expired, "expired")):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(channel, "ListTeams", bearer(key))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert cause in (refused.value.details() or "")
    rows = audit_rows(iris)
    assert ("auth_failure", "", "ListTeams", "", "UNAUTHENTICATED", "revoked") in rows
    assert ("auth_failure", "", "ListTeams", "", "UNAUTHENTICATED", "expired") in rows


async def test_a_key_made_with_the_cli_works_at_once_on_the_running_server(iris: Iris) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "iris_app.cli",
        "key",
        "generate",
        "--home",
        str(iris.home),
        "--name",
        "from-cli",
        "--permissions",
        "status:read",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, _ = await child.communicate()
    assert child.returncode == 0
    key = out.decode().strip()
    async with grpc.aio.insecure_channel(iris.target) as channel:
        teams = await call(channel, "ListTeams", bearer(key))
    assert teams.total_teams == 3


async def test_the_key_store_holds_no_plain_key(iris: Iris) -> None:
    key = await new_key(iris, "secret-one", "status:read")
    stored = b"".join(p.read_bytes() for p in iris.home.glob("keys.db*"))
    assert key.encode() not in stored and key[13:].encode() not in stored
    assert iris.admin_key.encode() not in stored
    assert (iris.home / "keys.db").stat().st_mode & 0o077 == 0
    assert (iris.home / "admin.key").stat().st_mode & 0o777 == 0o600


async def test_state_changes_are_audited_without_keys_or_bodies(iris: Iris) -> None:
    body = "say a-secret-message-body"
    await iris.stub.SendMessage(pb.SendMessageRequest(from_team="c", to_team="alpha", message=body))
    await iris.stub.TeamSleep(pb.TeamSleepRequest(team="alpha", from_team="c"))
    await iris.stub.ListTeams(pb.ListTeamsRequest())  # read-only: not audited
    async with asyncio.timeout(5):  # rows of answered calls are written just after the reply
        while len(rows := audit_rows(iris)) < 3:
            await asyncio.sleep(0.01)
    assert ("call", "admin", "SendMessage", "alpha", "OK", "") in rows
    assert ("call", "admin", "TeamSleep", "alpha", "OK", "") in rows
    assert not any(r[2] == "ListTeams" for r in rows)
    written = b"".join(p.read_bytes() for p in iris.home.glob("audit.db*"))
    assert b"a-secret-message-body" not in written
    assert iris.admin_key.encode() not in written


async def test_admin_rpcs_create_list_and_revoke_keys_and_need_admin(iris: Iris) -> None:
    key = await new_key(iris, "worker", "team:tell", rate_limit=5)
    listed = await iris.stub.ListApiKeys(pb.ListApiKeysRequest())
    worker = next(k for k in listed.keys if k.name == "worker")
    assert list(worker.permissions) == ["team:tell"] and worker.rate_limit == 5 and not worker.revoked
    assert all(key not in str(k) for k in listed.keys)
    async with grpc.aio.insecure_channel(iris.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await call(channel, "ListApiKeys", bearer(key))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await iris.stub.CreateApiKey(pb.CreateApiKeyRequest(name="x", permissions=["root"]))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    revoked = await iris.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key=worker.id))
    assert revoked.info.revoked
    events = [(r[0], r[1]) for r in audit_rows(iris)]
    assert ("key_created", "worker") in events and ("key_revoked", "worker") in events


async def test_the_rate_limit_trips_at_its_count_after_counting_down(tmp_path: Path) -> None:
    # A window far longer than the test: the bucket cannot refill meanwhile (the refill is unit-tested).
    config = write_config(tmp_path, api={"rateLimit": {"windowMs": 3_600_000, "maxRequests": 3}})
    async with start_iris(tmp_path, config) as iris:
        remaining = []
        for _ in range(3):
            answered = iris.stub.GetDate(pb.GetDateRequest())
            await answered
            metadata = dict(await answered.trailing_metadata())
            assert metadata["x-ratelimit-limit"] == "3"
            remaining.append(metadata["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await iris.stub.GetDate(pb.GetDateRequest())
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(limited.value) == "TooManyRequestsError"
    assert 0 < int(error_details(limited.value)["retryAfterMs"]) <= 3_600_000
    assert dict(limited.value.trailing_metadata() or ())["x-ratelimit-remaining"] == "0"


async def test_interceptors_run_audit_first_and_refuse_before_rate_limiting(tmp_path: Path) -> None:
    config = write_config(tmp_path, api={"rateLimit": {"windowMs": 60_000, "maxRequests": 2}})
    async with start_iris(tmp_path, config) as iris:
        async with grpc.aio.insecure_channel(iris.target) as channel:
            for _ in range(3):  # refused calls must not spend the admin key's bucket, nor any other
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call(channel, "GetDate")
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert len([r for r in audit_rows(iris) if r[0] == "auth_failure"]) == 3
        answered = iris.stub.GetDate(pb.GetDateRequest())
        await answered
        assert dict(await answered.trailing_metadata())["x-ratelimit-remaining"] == "1"


async def test_without_require_auth_calls_need_no_key_and_a_warning_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, api={"requireAuth": False})
    async with start_iris(tmp_path, config) as iris:
        assert iris.admin_key == ""
        teams = await iris.stub.ListTeams(pb.ListTeamsRequest())
    assert teams.total_teams == 3
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)


async def test_tls_serves_a_client_trusting_the_test_ca_and_refuses_plaintext(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    config = write_config(tmp_path, api={"tls": {"certFile": str(cert_file), "keyFile": str(key_file)}})
    from iris_app.app import running_iris
    from iris_core.config import load_config

    async with running_iris(load_config(config), tmp_path / "home", host="127.0.0.1", grpc_port=0) as run:
        key = (tmp_path / "home" / "admin.key").read_text().strip()
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_file.read_bytes())
        target = f"localhost:{run.grpc.port}"
        async with grpc.aio.secure_channel(target, credentials, interceptors=with_key(key)) as secure:
            teams = await iris_pb2_grpc.IrisStub(secure).ListTeams(pb.ListTeamsRequest(), timeout=10)
        assert teams.total_teams == 3
        async with grpc.aio.insecure_channel(target, interceptors=with_key(key)) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await iris_pb2_grpc.IrisStub(plain).ListTeams(pb.ListTeamsRequest(), timeout=5)
        assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_a_stream_reports_its_rate_limit_before_its_first_event(iris: Iris) -> None:
    stream = iris.stub.Tell(pb.TellRequest(from_team="c", to_team="alpha", message="say hi"))
    metadata = dict(await stream.initial_metadata())
    assert int(metadata["x-ratelimit-remaining"]) < int(metadata["x-ratelimit-limit"])
    async with asyncio.timeout(60):
        events = [e.WhichOneof("event") async for e in stream]
    assert events[0] == "start" and events[-1] == "complete"
