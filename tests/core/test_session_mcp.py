"""Session keys, and the Iris MCP server a ``sessionMcpEnabled`` team's Claude is started with (no Claude)."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk.types import McpServerConfig

from iris_core.access import calling_team
from iris_core.config import DEFAULT_MCP_PERMISSIONS, TeamConfig
from iris_core.errors import ForbiddenError, NotFoundError, UnauthorizedError, ValidationError
from iris_core.keys import KeyStore
from iris_core.launch_spec import launch_spec
from iris_core.pairs import PairRuntime
from iris_core.permissions import PermissionBroker
from iris_core.session_mcp import KEY_VARIABLE, McpEndpoint, SessionMcp, session_key_name
from iris_core.turns import Pair

URL = "http://127.0.0.1:8080/mcp"
COMMAND = (sys.executable, "-m", "iris_app.cli", "mcp", "--target", "127.0.0.1:50051")


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[KeyStore]:
    async with KeyStore(tmp_path / "keys.db") as store:
        yield store


def team(tmp_path: Path, name: str = "backend", **kw: Any) -> TeamConfig:
    return TeamConfig(name=name, path=tmp_path, session_mcp_enabled=True, **kw)


# --- session keys ---------------------------------------------------------------------------------------


async def test_a_session_key_verifies_with_its_permissions_and_stays_out_of_the_db(keys: KeyStore) -> None:
    key = keys.issue_session_key("mcp.backend", ["team:tell", "status:read"], team="backend")

    assert key.startswith("iris_sk_session_")
    record = await keys.verify(key)
    assert (record.name, record.permissions, record.environment) == (
        "mcp.backend",
        ("team:tell", "status:read"),
        "session",
    )
    assert record.id.startswith("key_session_") and record.team == "backend"
    assert not record.revoked and not record.expired(2**62)
    assert await keys.list() == []
    assert await keys.count() == 0


async def test_issuing_again_for_a_name_replaces_the_old_key(keys: KeyStore) -> None:
    old = keys.issue_session_key("mcp.backend", ["team:tell"], team="backend")
    other = keys.issue_session_key("mcp.frontend", ["team:tell"], team="frontend")
    new = keys.issue_session_key("mcp.backend", ["status:read"], team="backend")

    assert new != old
    assert (await keys.verify(new)).permissions == ("status:read",)
    assert (await keys.verify(other)).name == "mcp.frontend"
    with pytest.raises(UnauthorizedError, match="Unknown API key"):
        await keys.verify(old)


async def test_a_session_key_is_revoked_by_name_and_then_refused(keys: KeyStore) -> None:
    key = keys.issue_session_key("mcp.backend", ["team:tell"], team="backend")

    revoked = await keys.revoke("mcp.backend")
    assert revoked.name == "mcp.backend" and revoked.revoked
    with pytest.raises(UnauthorizedError, match="Unknown API key"):
        await keys.verify(key)
    with pytest.raises(NotFoundError):
        await keys.revoke("mcp.backend")


@pytest.mark.parametrize(
    ("name", "permissions", "field"),
    [
        ("", ["team:tell"], "name"),
        ("-x", ["team:tell"], "name"),
        ("a" * 65, ["team:tell"], "name"),
        ("has space", ["team:tell"], "name"),
        ("ok", ["team:fly"], "permissions"),
        ("ok", [], "permissions"),
    ],
)
async def test_a_bad_session_key_name_or_permission_is_refused(
    keys: KeyStore, name: str, permissions: list[str], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        keys.issue_session_key(name, permissions, team="backend")
    assert info.value.details["field"] == field


# --- SessionMcp.servers_for -----------------------------------------------------------------------------


async def test_a_team_without_session_mcp_gets_no_servers(keys: KeyStore, tmp_path: Path) -> None:
    mcp = SessionMcp(keys)
    mcp.endpoint = McpEndpoint(url=URL)

    assert mcp.servers_for(TeamConfig(name="backend", path=tmp_path)) == {}
    assert mcp.env_for(TeamConfig(name="backend", path=tmp_path)) == {}


async def test_without_an_endpoint_no_servers_and_one_warning_per_team(
    keys: KeyStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mcp = SessionMcp(keys)
    with caplog.at_level(logging.WARNING, logger="iris_core.session_mcp"):
        assert mcp.servers_for(team(tmp_path)) == {}
        assert mcp.servers_for(team(tmp_path)) == {}
        assert mcp.servers_for(team(tmp_path, "frontend")) == {}

    assert [r.getMessage().split()[1] for r in caplog.records] == ["backend", "frontend"]


async def test_an_http_endpoint_names_the_key_in_headers_and_the_key_goes_in_the_env(
    keys: KeyStore, tmp_path: Path
) -> None:
    mcp = SessionMcp(keys)
    mcp.endpoint = McpEndpoint(url=URL, command=COMMAND)  # url wins

    servers = mcp.servers_for(team(tmp_path))

    assert servers == {
        "iris": {
            "type": "http",
            "url": URL,
            # Claude Code gets the config on its command line, so it holds only the variable's name.
            "headers": {"Authorization": "Bearer ${IRIS_SESSION_KEY}", "X-Iris-From-Team": "backend"},
        }
    }
    env = mcp.env_for(team(tmp_path))
    assert list(env) == [KEY_VARIABLE]
    record = await keys.verify(env[KEY_VARIABLE])
    assert (record.name, record.permissions, record.team) == (
        "mcp.backend",
        DEFAULT_MCP_PERMISSIONS,
        "backend",
    )


async def test_a_stdio_endpoint_runs_the_command_with_the_team_and_the_key(
    keys: KeyStore, tmp_path: Path
) -> None:
    mcp = SessionMcp(keys)
    mcp.endpoint = McpEndpoint(command=COMMAND)

    config = team(tmp_path, mcp_permissions=("team:tell", "admin"))

    assert mcp.servers_for(config)["iris"] == {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "iris_app.cli", "mcp", "--target", "127.0.0.1:50051", "--from-team", "backend"],
        "env": {"IRIS_API_KEY": "${IRIS_SESSION_KEY}"},
    }
    assert (await keys.verify(mcp.env_for(config)[KEY_VARIABLE])).permissions == ("team:tell", "admin")


async def test_a_team_keeps_one_key_per_run_and_teams_do_not_share_one(
    keys: KeyStore, tmp_path: Path
) -> None:
    mcp = SessionMcp(keys)
    mcp.endpoint = McpEndpoint(command=COMMAND)

    first = mcp.env_for(team(tmp_path))[KEY_VARIABLE]
    again = mcp.env_for(team(tmp_path))[KEY_VARIABLE]
    other = mcp.env_for(team(tmp_path, "frontend"))[KEY_VARIABLE]

    assert first == again != other
    assert (await keys.verify(first)).name == "mcp.backend"
    assert (await keys.verify(other)).name == "mcp.frontend"


async def test_long_team_names_get_distinct_valid_key_names(keys: KeyStore, tmp_path: Path) -> None:
    a, b = "t" * 90 + "a", "t" * 90 + "b"
    assert len(session_key_name(a)) == len(session_key_name(b)) == 64
    assert session_key_name(a) != session_key_name(b)
    mcp = SessionMcp(keys)
    mcp.endpoint = McpEndpoint(command=COMMAND)

    key_a = mcp.env_for(team(tmp_path, a))[KEY_VARIABLE]
    key_b = mcp.env_for(team(tmp_path, b))[KEY_VARIABLE]

    assert (await keys.verify(key_a)).name == session_key_name(a)
    assert (await keys.verify(key_b)).name == session_key_name(b)


# --- launch_spec ----------------------------------------------------------------------------------------


def spec_for(
    tmp_path: Path, config: TeamConfig, servers: dict[str, McpServerConfig] | None
) -> tuple[str, ...]:
    state = PairRuntime(pair=Pair("caller", config.name), team=config)
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    spec = launch_spec(state, "00000000-0000-4000-8000-000000000000", env, PermissionBroker(1.0), servers)
    assert dict(spec.mcp_servers) == (servers or {})
    return tuple(spec.allowed_tools)


async def test_launch_spec_allows_the_iris_tools_when_the_server_is_given(
    keys: KeyStore, tmp_path: Path
) -> None:
    mcp = SessionMcp(keys)
    mcp.endpoint = McpEndpoint(url=URL)
    config = team(tmp_path, allowed_tools=("Read", "Grep"))

    assert spec_for(tmp_path, config, mcp.servers_for(config)) == ("Read", "Grep", "mcp__iris")
    assert spec_for(tmp_path, config, {}) == ("Read", "Grep")
    assert spec_for(tmp_path, config, None) == ("Read", "Grep")
    already = team(tmp_path, allowed_tools=("mcp__iris",))
    assert spec_for(tmp_path, already, mcp.servers_for(already)) == ("mcp__iris",)


# --- calling_team -----------------------------------------------------------------------------------------


async def test_a_team_bound_key_calls_only_as_its_team(keys: KeyStore) -> None:
    bound = await keys.verify(keys.issue_session_key("mcp.backend", ["team:tell"], team="backend"))

    assert calling_team("", bound) == "backend"
    assert calling_team("backend", bound) == "backend"
    with pytest.raises(ForbiddenError, match="cannot call as 'frontend'"):
        calling_team("frontend", bound)


async def test_other_keys_call_as_themselves_unless_they_may_impersonate(keys: KeyStore) -> None:
    _, record = await keys.create("ci-bot", ["team:tell"])
    _, gateway = await keys.create("gateway", ["team:tell", "team:impersonate"])

    assert calling_team("", record) == "ci-bot"
    assert calling_team("ci-bot", record) == "ci-bot"
    with pytest.raises(ForbiddenError):
        calling_team("frontend", record)
    assert calling_team("frontend", gateway) == "frontend"
    assert calling_team("", None) == "api"
    assert calling_team("frontend", None) == "frontend"  # authentication off: every caller is trusted
