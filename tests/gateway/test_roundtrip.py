"""A REST round trip returns what a direct gRPC call returns, in the contract's JSON."""

from __future__ import annotations

import asyncio

from google.protobuf import json_format

from iris_client.generated.iris.v1 import iris_pb2 as pb
from rest_gateway.transcode import message_to_json
from tests.gateway.conftest import Gateway


async def test_list_teams_equals_the_grpc_reply_except_its_clock(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        response = await gateway.client.get("/api/teams")
        direct = message_to_json(await gateway.iris.stub.ListTeams(pb.ListTeamsRequest()))
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["timestamp"], int)
    assert {**body, "timestamp": 0} == {**direct, "timestamp": 0}
    assert [t["name"] for t in body["teams"]] == ["alpha", "beta", "gamma"]
    assert body["teams"][0]["grantPermission"] == "yes"


async def test_get_date_has_the_fields_of_the_grpc_reply_as_json_numbers(gateway: Gateway) -> None:
    async with asyncio.timeout(10):
        body = (await gateway.client.get("/api/date")).json()
        direct = json_format.MessageToDict(
            await gateway.iris.stub.GetDate(pb.GetDateRequest()), always_print_fields_with_no_presence=True
        )
    assert body.keys() == direct.keys()
    assert isinstance(body["timestamp"], int) and isinstance(body["unix"], int)
    assert abs(body["timestamp"] - int(direct["timestamp"])) < 60_000


async def test_send_message_through_rest_then_report_matches_grpc(gateway: Gateway) -> None:
    async with asyncio.timeout(60):
        sent = await gateway.client.post(
            "/api/teams/tell", json={"toTeam": "alpha", "fromTeam": "caller", "message": "say hi there"}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "completed" and sent.json()["response"] == "hi there"
        report = await gateway.client.get("/api/teams/alpha/report", params={"fromTeam": "caller"})
        direct = await gateway.iris.stub.SessionReport(
            pb.SessionReportRequest(team="alpha", from_team="caller")
        )
    assert report.status_code == 200
    assert {**report.json(), "timestamp": 0} == {**message_to_json(direct), "timestamp": 0}
    assert report.json()["entries"][0]["messageId"] == sent.json()["messageId"]


async def test_query_parameters_bind_repeated_and_boolean_fields(gateway: Gateway) -> None:
    async with asyncio.timeout(30):
        stores = await gateway.client.get("/api/logs", params={"getAllStores": "true"})
        direct = await gateway.iris.stub.GetLogs(pb.GetLogsRequest(get_all_stores=True))
        levels = await gateway.client.get("/api/logs", params=[("level", "error"), ("level", "fatal")])
    assert stores.status_code == 200
    assert stores.json()["stores"] == list(direct.stores) and stores.json()["logs"] == []
    assert levels.status_code == 200
    assert {r["level"] for r in levels.json()["logs"]} <= {"error", "fatal"}


async def test_a_post_without_a_body_and_unknown_query_parameters_are_accepted(gateway: Gateway) -> None:
    """The original curl examples send no body to wake and ?includeProcessDetails to GET /api/teams."""
    async with asyncio.timeout(30):
        teams = await gateway.client.get("/api/teams", params={"includeProcessDetails": "true"})
        status = await gateway.client.get("/api/teams/status", params={"fromTeam": "caller", "team": "beta"})
    assert teams.status_code == 200
    assert status.status_code == 200 and status.json()["teams"][0]["name"] == "beta"
