"""The validated configuration: frozen values that the rest of Iris reads and never changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "DEFAULT_MCP_PERMISSIONS",
    "MAX_RECORD_CAP_BYTES",
    "MIN_RECORD_CAP_BYTES",
    "GrantPermission",
    "IrisConfig",
    "RayPlacement",
    "Settings",
    "SshRemote",
    "TeamConfig",
]

DEFAULT_MCP_PERMISSIONS = ("team:tell", "team:wake", "team:cancel", "status:read", "cache:read")
"""What a team's Claude may do through the Iris MCP tools unless its ``mcpPermissions`` says otherwise: talk
to, wake and cancel other teams and read status and reports, but not clear, fork, sleep or administer."""

MIN_RECORD_CAP_BYTES = 1_024
"""Smallest ``maxTurnEventsBytes`` / ``maxResponseBytes``."""
MAX_RECORD_CAP_BYTES = 1_048_576
"""Largest ``maxTurnEventsBytes`` / ``maxResponseBytes``: one report entry (request, response, events and
the complete event's response) then stays under the 4 MiB a gRPC client receives by default."""


def _empty_env() -> Mapping[str, str]:
    return MappingProxyType({})


def _freeze(instance: object, name: str) -> None:
    """Make a mapping field a read-only copy, so a value built by hand is as frozen as a loaded one."""
    value = getattr(instance, name)
    if not isinstance(value, MappingProxyType):
        object.__setattr__(instance, name, MappingProxyType(dict(value)))


@dataclass(frozen=True, slots=True)
class SshRemote:
    """Where a remote team's Claude Code runs: another host, reached with the OpenSSH client (``remote``).

    The fields are the original iris-mcp's ``remoteOptions``; Iris always runs ``ssh`` in batch mode (a
    password prompt would hang a start), so the key must need no passphrase or be held by an agent.
    """

    destination: str
    """``user@host`` or ``host`` (an alias of ``~/.ssh/config`` works too); ``remote: "ssh user@host"``."""
    claude_path: str = "claude"
    """The Claude Code CLI on that host (the team's ``claudePath``); found on the remote ``PATH`` if bare."""
    identity: Path | None = None
    """Private key file (``-i``)."""
    port: int | None = None
    """SSH port (``-p``); ``None`` for the host's configured one."""
    strict_host_key_checking: bool = True
    """False accepts a host key seen for the first time (``accept-new``); a changed key is always refused."""
    connect_timeout_ms: int | None = None
    """How long connecting may take (``ConnectTimeout``, rounded up to whole seconds)."""
    server_alive_interval_s: int | None = None
    """Seconds between keep-alives (``ServerAliveInterval``), so a dead link ends the process's turn."""
    server_alive_count_max: int | None = None
    """Keep-alives missed before the link counts as dead (``ServerAliveCountMax``)."""
    compression: bool = False
    """Compress the link (``-C``)."""
    forward_agent: bool = False
    """Forward the SSH agent (``-A``)."""
    extra_ssh_args: tuple[str, ...] = ()
    """More ``ssh`` arguments, placed before the destination."""


@dataclass(frozen=True, slots=True)
class RayPlacement:
    """Run a team's Claude Code processes as Ray actors on an existing cluster (``placement``, kind ray)."""

    address: str
    """The cluster to join as a client: ``host:port`` of its GCS, or ``ray://host:port``."""
    namespace: str = "iris"
    """The Ray namespace Iris's actors live in."""
    cpus: float = 1.0
    """CPUs declared per Claude Code process, so Ray places it where they are free."""
    memory_mb: int = 512
    """Memory declared per Claude Code process (MiB), so Ray places it where it fits."""


class GrantPermission(StrEnum):
    """What a team's Claude does when it wants to use a tool that needs permission."""

    YES = "yes"
    """Allow every tool use without asking."""
    NO = "no"
    """Deny every tool use that needs permission."""
    ASK = "ask"
    """Ask a person, and deny if no decision arrives within ``Settings.permission_timeout_ms``."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Limits and addresses shared by every team (the ``settings:`` section).

    Durations are integer milliseconds, as in the original iris-mcp's ``config.yaml``, so a value copied from
    there
    means the same thing here.
    """

    max_processes: int = 10
    """Claude processes alive at once across all pairs; a request beyond this waits for or evicts one."""
    idle_timeout_ms: int = 300_000
    """How long an idle process lives before it is stopped; 0 never stops one. A team may override it."""
    spawn_timeout_ms: int = 20_000
    """Deadline for a new Claude process to become ready before it is killed and reported broken."""
    max_queued_messages: int = 16
    """Turns that may wait behind a busy one, per pair; one more is refused rather than queued forever."""
    permission_timeout_ms: int = 60_000
    """How long an ``ask`` permission request waits for a decision before it is denied."""
    shutdown_timeout_ms: int = 10_000
    """Grace a process gets to exit on stop before it is sent SIGKILL; 0 kills it at once."""
    turn_timeout_ms: int = 3_600_000
    """Longest a turn may run before it ends as an error and its process is replaced; 0 = no limit."""
    admission_timeout_ms: int = 60_000
    """Longest an accepted turn waits for a process slot (in a fair queue of pairs) before it fails."""
    max_turn_events_bytes: int = 1_048_576
    """Bytes of streamed events (chunks, tool uses, permission requests) a turn keeps for its record, in
    memory and in SQLite; later events still reach live readers but are not kept, and the report entry says
    ``truncated``. The final ``complete`` event is always kept (its response cut as below). At most 1 MiB."""
    max_response_bytes: int = 1_048_576
    """Bytes of a turn's answer kept in its record (the report entry's ``response`` and its ``complete``
    event's); a longer answer is cut there (callers waiting for the turn still get all of it) and the entry
    says ``truncated``. At most 1 MiB."""
    max_concurrent_jobs: int = 5
    """Jobs (Execute, and messages sent with ``persist``) running at once; the others wait in the durable
    job queue, high priority before normal before low, first come first served within one."""
    max_queued_jobs: int = 1_000
    """Jobs that may wait in the queue; one more is refused (RESOURCE_EXHAUSTED) rather than queued."""
    event_retention_ms: int = 3_600_000
    """How long events are kept for WatchEvents to resume from (``afterId``, ``Last-Event-ID``)."""
    health_event_interval_ms: int = 5_000
    """How often a ``health`` event is emitted."""
    log_buffer_size: int = 5_000
    """Log records kept in memory for the debug APIs; older ones are dropped."""
    host: str = "127.0.0.1"
    """Address the gRPC server and the REST gateway listen on; loopback unless deliberately exposed."""
    grpc_port: int = 50051
    """gRPC port; 0 lets the operating system choose one."""
    http_port: int = 1615
    """REST gateway port; 0 lets the operating system choose one."""
    max_turn_budget_usd: float = 0.0
    """Default of a team's ``maxTurnBudgetUsd``: the most one turn may cost, passed to Claude Code, which
    stops the turn there (0: no cap)."""
    metrics_port: int = 0
    """A port of its own for Prometheus's ``GET /metrics`` (on ``host``), for a scraper that should not reach
    the REST port; 0 (the default) opens none. ``/metrics`` is on the REST port whenever REST is served."""
    metrics_enabled: bool = True
    """Whether Iris counts calls, turns, processes and costs (``GET /metrics``). Off removes the gRPC metrics
    interceptor and every metrics hook, and ``/metrics`` answers 404: for measuring what metrics cost."""
    warm_spares: int = 0
    """Default number of warm spares per team (``warmSpares``): processes started ahead of need."""
    placement: RayPlacement | None = None
    """Default placement of every team's processes: ``None`` runs them here (``placement``)."""
    env: Mapping[str, str] = field(default_factory=_empty_env)
    """Extra environment for every Claude process; a team's own ``env`` wins on a clash."""

    def __post_init__(self) -> None:
        _freeze(self, "env")


@dataclass(frozen=True, slots=True)
class TeamConfig:
    """One team: a project folder that a Claude Code process works in (an entry of ``teams:``)."""

    name: str
    """The team's name as written under ``teams:``; safe to use in file names and URLs."""
    path: Path
    """Absolute, resolved path of the team's project folder; it existed when the config was loaded."""
    idle_timeout_ms: int = 300_000
    """Effective idle timeout: the team's ``idleTimeout`` if set, else ``settings.idleTimeout``."""
    description: str | None = None
    """What the team does, shown to other teams choosing whom to ask."""
    color: str | None = None
    """Display colour as written, ``#RRGGBB`` or ``#RGB``."""
    session_mcp_enabled: bool = False
    """Whether this team's Claude gets the Iris MCP tools, so it can message other teams itself."""
    session_mcp_path: str | None = None
    """Where the original iris-mcp keeps per-session MCP config in the project; accepted and kept for it."""
    mcp_permissions: tuple[str, ...] = DEFAULT_MCP_PERMISSIONS
    """API permissions of the key Iris issues to this team's Iris MCP tools (with ``session_mcp_enabled``)."""
    grant_permission: GrantPermission = GrantPermission.ASK
    """Policy for tool uses that need permission."""
    model: str | None = None
    """Model name passed to Claude Code; ``None`` leaves Claude Code's own default."""
    env: Mapping[str, str] = field(default_factory=_empty_env)
    """Extra environment for this team's Claude processes, applied over ``Settings.env``."""
    allowed_tools: tuple[str, ...] = ()
    """Tools this team's Claude may use without asking, in Claude Code's ``allowedTools`` syntax."""
    disallowed_tools: tuple[str, ...] = ()
    """Tools this team's Claude may never use, in Claude Code's ``disallowedTools`` syntax."""
    run_as: str | None = None
    """The unprivileged user this team's Claude Code runs as (``runAs``), which contains it; ``None`` runs it
    as Iris's own user, uncontained."""
    daily_budget_usd: float = 0.0
    """USD the team's turns may cost per UTC day (``budget.dailyUsd``); past it new turns are refused."""
    monthly_budget_usd: float = 0.0
    """USD the team's turns may cost per UTC month (``budget.monthlyUsd``); 0: no budget."""
    max_turn_budget_usd: float = 0.0
    """The most one turn may cost (``maxTurnBudgetUsd``), passed to Claude Code as ``max_budget_usd``."""
    warm_spares: int = 0
    """Claude Code processes kept started ahead of need, each with a fresh session, so that a new pair's
    first message (or a reboot's) costs a warm turn instead of a start (``warmSpares``)."""
    remote: SshRemote | None = None
    """The host this team's Claude Code runs on over SSH; ``path`` is then a folder on that host."""
    ray: RayPlacement | None = None
    """The Ray cluster this team's Claude Code runs on (``placement: {kind: ray}``)."""

    def __post_init__(self) -> None:
        _freeze(self, "env")


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Per-key request limits (a token bucket per key)."""

    enabled: bool = True
    """Limit requests per key at all."""
    window_ms: int = 900_000
    """The window over which ``max_requests`` refill (the original iris-mcp's 15 minutes)."""
    max_requests: int = 100
    """Requests per window for a key without its own limit (the original iris-mcp's 100)."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for the gRPC port."""

    cert_file: Path
    """PEM certificate chain."""
    key_file: Path
    """PEM private key."""


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """How job results are delivered to callback URLs (``api.webhooks``)."""

    secret: str = ""
    """The Standard Webhooks signing secret (``whsec_...``); empty: Iris makes one at first start and keeps it
    in ``$IRIS_HOME/webhook.secret``."""
    allow_private_networks: bool = False
    """Allow callback URLs that resolve to loopback, private, link-local or cloud-metadata addresses."""
    max_attempts: int = 5
    """Deliveries tried per job before it is recorded as failed (network errors, 5xx, 408 and 429 retry)."""
    retry_base_ms: int = 1_000
    """The first retry's delay; each next one doubles, with jitter, up to ``retry_max_ms``."""
    retry_max_ms: int = 300_000
    """The longest delay between two attempts."""
    timeout_ms: int = 10_000
    """How long one attempt may take."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The ``api:`` section: who may call, how often, over what."""

    require_auth: bool = True
    """Every call needs an API key; turning this off is allowed only with a loud warning at start."""
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    """Per-key limits."""
    tls: TlsConfig | None = None
    """Serve gRPC over TLS with this certificate; None for plaintext (loopback by default)."""
    cors_origins: tuple[str, ...] = ()
    """Origins a browser page may call the REST gateway from; none by default."""
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    """Delivery of job results to callback URLs."""


@dataclass(frozen=True, slots=True)
class IrisConfig:
    """The whole validated configuration file."""

    settings: Settings
    """Limits and addresses shared by every team."""
    teams: Mapping[str, TeamConfig]
    """Teams by name, in the order the file lists them; read-only. A missing name raises ``KeyError``."""
    source: Path
    """Absolute path of the file this was loaded from; team paths were resolved against its folder."""
    api: ApiConfig = field(default_factory=ApiConfig)
    """Authentication, rate limits and TLS for every transport."""

    def __post_init__(self) -> None:
        _freeze(self, "teams")
