"""Routes come from the contract: every RPC is served at its google.api.http route with its verb."""

from __future__ import annotations

import pytest

from iris_client.generated.iris.v1 import iris_pb2
from rest_gateway import Route, compile_template, routes_of
from tests.gateway.conftest import Gateway

IRIS = iris_pb2.DESCRIPTOR.services_by_name["Iris"]
ROUTES = routes_of([IRIS])


def test_every_rpc_of_the_contract_has_a_route() -> None:
    assert {r.method.name for r in ROUTES} == {m.name for m in IRIS.methods}


def test_templates_compile_to_starlette_paths_named_by_json_name() -> None:
    tell = next(r for r in ROUTES if r.method.name == "Tell")
    assert (tell.verb, tell.path, tell.body) == ("POST", "/api/v1/teams/{toTeam}/stream", "*")
    assert [f.name for f in tell.path_fields] == ["to_team"] and tell.query_fields == ()
    assert compile_template("/v1/{name=**}") == ("/v1/{name:path}", ("name",))


def test_fields_not_in_path_or_body_come_from_the_query() -> None:
    report = next(r for r in ROUTES if r.method.name == "SessionReport")
    assert [f.json_name for f in report.query_fields] == ["fromTeam", "pageSize", "pageToken"]


@pytest.mark.parametrize("template", ["/v1/{shelf.name}", "/v1/{name=shelves/*}", "v1/{name}"])
def test_unsupported_templates_fail_at_start_up(template: str) -> None:
    with pytest.raises(ValueError):
        compile_template(template)


def test_literal_routes_come_before_templated_ones() -> None:
    counts = [len(r.path_fields) for r in ROUTES]
    assert counts == sorted(counts)


def _url(route: Route) -> str:
    path = route.path
    for field in route.path_fields:
        path = path.replace("{" + field.json_name + "}", "no-such-thing")
    return path


async def test_every_route_reaches_iris_with_its_verb(gateway: Gateway) -> None:
    """Every reply of Iris, refusals included, carries the rate-limit headers; a route that did not reach
    gRPC (unknown path, wrong verb) has none. Fields are left empty, so no RPC changes anything."""
    for route in ROUTES:
        # Read a stream's head only: WatchEvents, asked for nothing in particular, never ends.
        async with gateway.client.stream(
            route.verb, _url(route), json={} if route.body else None
        ) as response:
            assert "X-RateLimit-Limit" in response.headers, route.method.name
            assert response.status_code != 405
        wrong = "PATCH"
        assert (await gateway.client.request(wrong, _url(route))).status_code == 405
