"""The shape of ``config.yaml``: which keys exist, what each may hold, and how it becomes an ``IrisConfig``.

Keys are the original iris-mcp's camelCase names, so its config files load unchanged as far as Iris
supports them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from iris_core.access import parse_permissions
from iris_core.errors import ConfigurationError, ValidationError
from iris_core.run_as import identity_of

from ._api import parse_api
from ._models import (
    DEFAULT_MCP_PERMISSIONS,
    MAX_RECORD_CAP_BYTES,
    MIN_RECORD_CAP_BYTES,
    ApiConfig,
    GrantPermission,
    IrisConfig,
    Settings,
    TeamConfig,
)
from ._placement import parse_placement, parse_remote
from ._reader import Reader, describe

__all__ = ["parse_config"]

_TOP_KEYS = ("settings", "teams", "api")
_SETTINGS_KEYS = (
    "maxProcesses",
    "idleTimeout",
    "spawnTimeout",
    "maxQueuedMessages",
    "permissionTimeout",
    "shutdownTimeout",
    "turnTimeout",
    "admissionTimeout",
    "maxTurnEventsBytes",
    "maxResponseBytes",
    "maxConcurrentJobs",
    "maxQueuedJobs",
    "eventRetention",
    "healthEventInterval",
    "logBufferSize",
    "host",
    "grpcPort",
    "httpPort",
    "maxTurnBudgetUsd",
    "metricsPort",
    "metricsEnabled",
    "warmSpares",
    "placement",
    "env",
)
_TEAM_KEYS = (
    "path",
    "description",
    "color",
    "idleTimeout",
    "sessionMcpEnabled",
    "sessionMcpPath",
    "mcpPermissions",
    "grantPermission",
    "model",
    "env",
    "allowedTools",
    "disallowedTools",
    "runAs",
    "budget",
    "maxTurnBudgetUsd",
    "warmSpares",
    "remote",
    "remoteOptions",
    "claudePath",
    "placement",
)
_BUDGET_KEYS = ("dailyUsd", "monthlyUsd")
_REFUSED_TEAM_KEYS = {
    "ssh2": "Iris reaches remote teams with the OpenSSH client only; remove ssh2",
}
_MAX_PORT = 65535
_MAX_TEAM_NAME = 100
_TEAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_COLOR = re.compile(r"#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})")
_PERMISSION_BOOLEANS = {True: GrantPermission.YES, False: GrantPermission.NO}


def parse_config(
    data: object, *, source: str, base_dir: Path, environ: Mapping[str, str] | None = None
) -> IrisConfig:
    """Validate already-parsed YAML and build the configuration.

    This is :func:`~iris_core.config.load_config` without the file, for tests and for callers that hold
    the document already.

    Args:
        data: The document as ``yaml.safe_load`` returns it.
        source: How to name the document in error messages, usually the path as the user wrote it; its
            file name, placed in ``base_dir``, becomes ``IrisConfig.source``.
        base_dir: Folder that relative team paths are resolved against: the config file's folder.
        environ: Variables for ``${...}`` substitution; ``os.environ`` if omitted.

    Raises:
        ConfigurationError: anything is wrong; the message lists every problem, one per line.

    """
    reader = Reader(os.environ if environ is None else environ)
    base_dir = base_dir.resolve()
    settings = Settings()
    api = ApiConfig()
    teams: dict[str, TeamConfig] = {}
    if data is None:
        reader.add("", "the file is empty; it needs a teams: section listing at least one team")
    elif not isinstance(data, Mapping):
        reader.add("", f"expected a mapping with settings: and teams:, got {describe(data)}")
    else:
        reader.check_keys("", data, _TOP_KEYS, refused={})
        settings = _settings(reader, data.get("settings"))
        api = parse_api(reader, data.get("api"), base_dir)
        teams = _teams(reader, data.get("teams"), base_dir, settings)
    reader.raise_if_any(source)
    return IrisConfig(
        settings=settings, api=api, teams=MappingProxyType(teams), source=base_dir / Path(source).name
    )


def _settings(reader: Reader, raw: object) -> Settings:
    data = reader.mapping("settings", raw)
    if data is None:
        return Settings()
    reader.check_keys("settings", data, _SETTINGS_KEYS, refused={})
    default = Settings()

    def integer(name: str, fallback: int, minimum: int, maximum: int | None = None) -> int:
        return reader.integer(f"settings.{name}", data.get(name), fallback, minimum=minimum, maximum=maximum)

    settings = Settings(
        max_processes=integer("maxProcesses", default.max_processes, 1),
        idle_timeout_ms=integer("idleTimeout", default.idle_timeout_ms, 0),
        spawn_timeout_ms=integer("spawnTimeout", default.spawn_timeout_ms, 1),
        max_queued_messages=integer("maxQueuedMessages", default.max_queued_messages, 1),
        permission_timeout_ms=integer("permissionTimeout", default.permission_timeout_ms, 1),
        shutdown_timeout_ms=integer("shutdownTimeout", default.shutdown_timeout_ms, 0),
        turn_timeout_ms=integer("turnTimeout", default.turn_timeout_ms, 0),
        admission_timeout_ms=integer("admissionTimeout", default.admission_timeout_ms, 1),
        max_turn_events_bytes=integer(
            "maxTurnEventsBytes", default.max_turn_events_bytes, MIN_RECORD_CAP_BYTES, MAX_RECORD_CAP_BYTES
        ),
        max_response_bytes=integer(
            "maxResponseBytes", default.max_response_bytes, MIN_RECORD_CAP_BYTES, MAX_RECORD_CAP_BYTES
        ),
        max_concurrent_jobs=integer("maxConcurrentJobs", default.max_concurrent_jobs, 1),
        max_queued_jobs=integer("maxQueuedJobs", default.max_queued_jobs, 1),
        event_retention_ms=integer("eventRetention", default.event_retention_ms, 1000),
        health_event_interval_ms=integer("healthEventInterval", default.health_event_interval_ms, 100),
        log_buffer_size=integer("logBufferSize", default.log_buffer_size, 1),
        host=reader.string("settings.host", data.get("host")) or default.host,
        grpc_port=integer("grpcPort", default.grpc_port, 0, _MAX_PORT),
        http_port=integer("httpPort", default.http_port, 0, _MAX_PORT),
        max_turn_budget_usd=reader.usd("settings.maxTurnBudgetUsd", data.get("maxTurnBudgetUsd"), 0.0),
        metrics_port=integer("metricsPort", default.metrics_port, 0, _MAX_PORT),
        metrics_enabled=reader.boolean("settings.metricsEnabled", data.get("metricsEnabled"), True),
        warm_spares=integer("warmSpares", default.warm_spares, 0),
        placement=parse_placement(reader, "settings.placement", data.get("placement"), None),
        env=MappingProxyType(reader.environment("settings.env", data.get("env"))),
    )
    if settings.warm_spares > settings.max_processes:
        reader.add(
            "settings.warmSpares",
            f"must be at most maxProcesses ({settings.max_processes}), got {settings.warm_spares}",
        )
    if settings.grpc_port == settings.http_port != 0:
        reader.add("settings.httpPort", f"must differ from grpcPort; both are {settings.http_port}")
    if settings.metrics_port != 0 and settings.metrics_port in (settings.grpc_port, settings.http_port):
        reader.add(
            "settings.metricsPort", f"must differ from grpcPort and httpPort, got {settings.metrics_port}"
        )
    return settings


def _teams(reader: Reader, raw: object, base_dir: Path, settings: Settings) -> dict[str, TeamConfig]:
    if raw is None:
        reader.add("teams", "is required: list at least one team, each with a path")
        return {}
    data = reader.mapping("teams", raw)
    if data is None:
        return {}
    if not data:
        reader.add("teams", "must list at least one team")
    teams: dict[str, TeamConfig] = {}
    for name, team_raw in data.items():
        if not isinstance(name, str):
            reader.add("teams", f"team names must be strings, got {describe(name)}; quote the name")
            continue
        name_problem = _team_name_problem(name)
        key = f"teams.{describe(name) if name_problem else name}"
        if name_problem:
            reader.add(key, name_problem)
        team = _team(reader, key, name, team_raw, base_dir, settings)
        if team is not None and not name_problem:
            teams[name] = team
    return teams


def _team_name_problem(name: str) -> str | None:
    """Say why ``name`` cannot be a team name, or return ``None``.

    Names end up in file names, URLs and log lines, so they are held to a portable alphabet.
    """
    if not name:
        return "team name must not be empty"
    if len(name) > _MAX_TEAM_NAME:
        return f"team name is {len(name)} characters long; the limit is {_MAX_TEAM_NAME}"
    for forbidden, label in (("\0", "a NUL character"), ("/", '"/"'), ("\\", '"\\"'), ("..", '".."')):
        if forbidden in name:
            return f"team name must not contain {label}"
    if not _TEAM_NAME.fullmatch(name):
        return (
            'team name must start with a letter or digit and contain only letters, digits, ".", "_" and "-"'
        )
    return None


def _team(
    reader: Reader, key: str, name: str, raw: object, base_dir: Path, settings: Settings
) -> TeamConfig | None:
    if raw is None:
        reader.add(key, "needs at least a path")
        return None
    data = reader.mapping(key, raw)
    if data is None:
        return None
    reader.check_keys(key, data, _TEAM_KEYS, refused=_REFUSED_TEAM_KEYS)
    remote = parse_remote(
        reader, key, data.get("remote"), data.get("remoteOptions"), data.get("claudePath"), base_dir
    )
    if remote is None and data.get("claudePath") is not None:
        reader.add(
            f"{key}.claudePath", "applies only to a team with remote (here Iris runs its own Claude Code)"
        )
    ray = parse_placement(reader, f"{key}.placement", data.get("placement"), settings.placement)
    if remote is not None and ray is not None:
        reader.add(key, "remote and a ray placement exclude each other: a team runs in one place")
    if remote is not None:
        path = _remote_path(reader, f"{key}.path", data.get("path"))
    else:
        path = _team_path(reader, f"{key}.path", data.get("path"), base_dir)
    budget = _budget(reader, f"{key}.budget", data.get("budget"))
    color = reader.string(f"{key}.color", data.get("color"))
    if color is not None and not _COLOR.fullmatch(color):
        reader.add(f"{key}.color", f'expected "#RRGGBB" or "#RGB", got {describe(color)}')
    team = TeamConfig(
        name=name,
        path=path or base_dir,
        idle_timeout_ms=reader.integer(
            f"{key}.idleTimeout", data.get("idleTimeout"), settings.idle_timeout_ms, minimum=0
        ),
        description=reader.string(f"{key}.description", data.get("description")),
        color=color,
        session_mcp_enabled=reader.boolean(f"{key}.sessionMcpEnabled", data.get("sessionMcpEnabled"), False),
        session_mcp_path=reader.string(f"{key}.sessionMcpPath", data.get("sessionMcpPath")),
        mcp_permissions=_mcp_permissions(reader, f"{key}.mcpPermissions", data.get("mcpPermissions")),
        grant_permission=reader.choice(
            f"{key}.grantPermission",
            data.get("grantPermission"),
            GrantPermission.ASK,
            booleans=_PERMISSION_BOOLEANS,
        ),
        model=reader.string(f"{key}.model", data.get("model")),
        env=MappingProxyType(reader.environment(f"{key}.env", data.get("env"))),
        allowed_tools=reader.strings(f"{key}.allowedTools", data.get("allowedTools")),
        disallowed_tools=reader.strings(f"{key}.disallowedTools", data.get("disallowedTools")),
        run_as=_run_as(reader, f"{key}.runAs", data.get("runAs")),
        daily_budget_usd=budget.get("dailyUsd", 0.0),
        monthly_budget_usd=budget.get("monthlyUsd", 0.0),
        max_turn_budget_usd=reader.usd(
            f"{key}.maxTurnBudgetUsd", data.get("maxTurnBudgetUsd"), settings.max_turn_budget_usd
        ),
        warm_spares=reader.integer(
            f"{key}.warmSpares",
            data.get("warmSpares"),
            settings.warm_spares,
            minimum=0,
            maximum=settings.max_processes,
        ),
        remote=remote,
        ray=ray,
    )
    return team if path is not None else None


def _remote_path(reader: Reader, key: str, raw: object) -> Path | None:
    """Read a remote team's folder: an absolute path on its host (it cannot be checked from here)."""
    text = reader.string(key, raw)
    if text is None:
        reader.add(key, "is required: the team's project folder on its remote host")
        return None
    if "\0" in text or "\n" in text:
        reader.add(key, "must not contain a NUL character or a line break")
        return None
    if not text.startswith("/"):
        reader.add(key, f"a remote team's path must be absolute on its host, got {describe(text, None)}")
        return None
    return Path(text)


def _budget(reader: Reader, key: str, raw: object) -> dict[str, float]:
    """Read a team's ``budget``: ``dailyUsd`` and ``monthlyUsd``, each an amount >= 0 (0: none)."""
    data = reader.mapping(key, raw)
    if data is None:
        return {}
    reader.check_keys(key, data, _BUDGET_KEYS, refused={})
    return {name: reader.usd(f"{key}.{name}", data.get(name), 0.0) for name in _BUDGET_KEYS}


def _run_as(reader: Reader, key: str, raw: object) -> str | None:
    """Read a team's ``runAs``: an existing user other than root (looked up now, so start-up fails early)."""
    name = reader.string(key, raw)
    if name is None:
        return None
    try:
        identity_of(name)
    except ConfigurationError as exc:
        reader.add(key, str(exc).removeprefix("runAs: "))
        return None
    return name


def _mcp_permissions(reader: Reader, key: str, raw: object) -> tuple[str, ...]:
    """Read a team's ``mcpPermissions``: API permission names, checked as a key's would be at creation."""
    if raw is None:
        return DEFAULT_MCP_PERMISSIONS
    reported = len(reader.problems)
    names = reader.strings(key, raw)
    if len(reader.problems) != reported:
        return DEFAULT_MCP_PERMISSIONS
    try:
        return parse_permissions(names, field="mcpPermissions")
    except ValidationError as exc:
        reader.add(key, exc.message)
        return DEFAULT_MCP_PERMISSIONS


def _team_path(reader: Reader, key: str, raw: object, base_dir: Path) -> Path | None:
    """Resolve a team's folder against ``base_dir`` and check that it is an existing directory."""
    reported = len(reader.problems)
    text = reader.string(key, raw)
    if text is None:
        if len(reader.problems) == reported:
            reader.add(key, "is required: the team's project folder")
        return None
    if "\0" in text:
        reader.add(key, "must not contain a NUL character")
        return None
    try:
        path = (base_dir / Path(text).expanduser()).resolve()
    except (OSError, RuntimeError) as exc:
        reader.add(key, f"cannot resolve {describe(text, None)}: {exc}")
        return None
    where = describe(text, None)
    if str(path) != text:
        where += f" (resolved to {path})"
    if not path.exists():
        reader.add(key, f"{where} does not exist")
        return None
    if not path.is_dir():
        reader.add(key, f"{where} is not a directory")
        return None
    return path
