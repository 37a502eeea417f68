"""The composition of the domain: the parts that each do one job, opened and closed together.

``IrisService.open`` opens the stores, starts the pool and builds the parts; each part serves a group of the
contract's RPCs as ``async def rpc_name(request, caller) -> reply`` with the contract's own messages::

    messages   SendMessage, AskMessage, QuickMessage, Tell                    (messages.Messages)
    sessions   SessionCancel/Reboot/Delete/Fork/Report, GetCache, ClearCache  (sessions.Sessions)
    teams      TeamWake/Launch/Sleep/WakeAll/Status, ListTeams                (teams.Teams)
    system     GetLogs, GetDate, GetStatus, GetHealth                         (system.System)
    key_admin  CreateApiKey, ListApiKeys, RevokeApiKey                        (key_admin.KeyAdmin)
    approvals  PermissionsApprove                                             (approvals.Approvals)
    records    GetMessage, ListMessages, CancelMessage                        (message_records.MessageRecords)
    ledger     GetUsage                                                       (usage.CostLedger)

A transport finds the handler of an RPC by name (``handler``), so it needs no per-RPC code. Keys, the audit
log and the session MCP tools are parts too, for the transport's interceptors and its endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Self

from google.protobuf.message import Message

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .approvals import Approvals
from .audit import AuditLog
from .children import ChildRegistry
from .claude_process import check_sdk_seam
from .clock import monotonic_ms
from .config import IrisConfig
from .deathsig import supported, write_launcher
from .errors import ConfigurationError
from .events import EVENTS_FILE, EventLog
from .jobs import JobQueue
from .key_admin import KeyAdmin
from .keys import KeyStore
from .logs import LogRing
from .message_records import MessageRecords
from .messages import Messages
from .metrics import IrisMetrics, PoolReadings
from .permissions import PermissionBroker
from .placement import Launcher, Placements
from .pool import ProcessPool
from .run_as import can_switch_users, end_processes_of, identity_of, secure_home
from .session_locks import SessionLocks
from .session_mcp import SessionMcp
from .sessions import Sessions
from .store import Store
from .system import System
from .teams import Teams
from .usage import CostLedger
from .webhooks import WebhookSender, signing_secret

__all__ = ["Handler", "IrisService"]

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Caller], Awaitable[Message] | Awaitable[AsyncIterator[Message]]]
"""An RPC's implementation: the request message and the caller in, the reply (or the stream of replies)."""


USAGE_FILE = "usage.db"
"""The cost ledger, in the home."""

CHILDREN_FILE = "children.db"
"""The record of started Claude Code processes, in the home."""


def _check_containment(config: IrisConfig) -> None:
    """Refuse to start with ``runAs`` teams Iris cannot switch to; say which teams run uncontained.

    Raises:
        ConfigurationError: a team has ``runAs`` but Iris is not root, or the platform has no launcher.

    """
    contained = [t.name for t in config.teams.values() if t.run_as]
    if contained and not (can_switch_users() and supported()):
        raise ConfigurationError(
            f"teams {', '.join(contained)} have runAs, which needs Iris to run as root on Linux "
            "(it starts each of their Claude Code processes as the team's own user)"
        )
    owners: dict[str, str] = {}
    for team in config.teams.values():
        if team.run_as and owners.setdefault(team.run_as, team.name) != team.name:
            raise ConfigurationError(
                f"teams {owners[team.run_as]} and {team.name} both have runAs {team.run_as}: "
                "a team's user must be its own, or each could read the other's key"
            )
    uncontained = [t.name for t in config.teams.values() if not t.run_as]
    if uncontained and can_switch_users():
        logger.warning(
            "teams %s have no runAs: their Claude Code runs as root and can read whatever Iris can "
            "(set runAs to an unprivileged user per team to contain them)",
            ", ".join(uncontained),
        )


async def _end_team_processes(uids: list[int]) -> None:
    if uids and (killed := await asyncio.to_thread(end_processes_of, uids)):
        logger.info("killed %d leftover process(es) of the teams' runAs users", killed)


def _decided_to(events: EventLog) -> Callable[[str, str, str], None]:
    def decided(request_id: str, from_team: str, decision: str) -> None:
        events.emit(
            pb.WatchEventsResponse(
                kind="permission.decided", from_team=from_team, request_id=request_id, decision=decision
            )
        )

    return decided


def _health_of(config: IrisConfig, pool: ProcessPool, jobs: JobQueue) -> Callable[[], pb.HealthSnapshot]:
    started = monotonic_ms()

    def health() -> pb.HealthSnapshot:
        in_use, _busy, _live = pool.census()
        return pb.HealthSnapshot(
            processes=in_use,
            max_processes=config.settings.max_processes,
            queue_depth=pool.queued_turns() + len(jobs),
            uptime=int(monotonic_ms() - started),
        )

    return health


def _snake(rpc: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", rpc).lower()


class IrisService:
    """What Iris does, independent of how it is reached. Create with ``IrisService.open``."""

    def __init__(
        self,
        config: IrisConfig,
        home: Path,
        *,
        store: Store,
        pool: ProcessPool,
        jobs: JobQueue,
        events: EventLog,
        broker: PermissionBroker,
        logs: LogRing,
        keys: KeyStore,
        audit: AuditLog,
        session_mcp: SessionMcp,
        ledger: CostLedger,
        metrics: IrisMetrics | None = None,
    ) -> None:
        locks = SessionLocks()
        self.config = config
        """The validated configuration."""
        self.keys = keys
        """API keys (keys.db); the transport's authentication reads it."""
        self.audit = audit
        """The audit log (audit.db); the transport writes calls and refusals to it."""
        self.session_mcp = session_mcp
        """The Iris MCP tools of ``sessionMcpEnabled`` teams; the transport sets ``session_mcp.endpoint``
        once it knows where the MCP adapter is served."""
        self.ledger = ledger
        """The cost ledger (usage.db): every turn's cost per model; GetUsage and the budgets read it."""
        self.metrics = metrics
        """This Iris's metrics (its own registry), which the transports expose and count calls into; None
        when ``settings.metricsEnabled`` is false."""
        refused = metrics.budget_refused if metrics is not None else None
        self.messages = Messages(config, store, pool, jobs, locks, ledger, refused)
        self.sessions = Sessions(config, home, store, pool, jobs, locks)
        self.teams = Teams(config, store, pool, jobs, locks)
        self.system = System(config, store, pool, logs, events)
        self.key_admin = KeyAdmin(keys, audit)
        self.approvals = Approvals(broker)
        self.records = MessageRecords(store, pool, jobs, config.settings.max_response_bytes)
        self._exit = AsyncExitStack()

    @classmethod
    async def open(
        cls,
        config: IrisConfig,
        home: Path,
        *,
        logs: LogRing | None = None,
        extra_env: Mapping[str, str] | None = None,
        launcher: Launcher | None = None,
        store: Store | None = None,
    ) -> Self:
        """Open the record, start the pool, and re-queue persisted turns a previous run left unfinished.

        Args:
            config: the validated configuration.
            home: ``$IRIS_HOME``; the database lives at ``home/iris.db``.
            logs: the ring GetLogs reads (a private one if None).
            extra_env: environment added to every Claude process (e.g. the offline model's).
            launcher: how processes start (default: a local Claude Code child).
            store: the record (default: ``home/iris.db``); a test passes a ``Store`` whose writes fail to
                show that a failing disk fails neither a turn nor the pool (the one fault-injection seam).

        Before anything starts, the Claude Code processes a crashed run left (``home/children.db``), and what
        they started, are killed and reaped (``ChildRegistry.reap_leftovers``). Each process started from
        here is recorded there and dies with Iris (``deathsig``).

        Raises:
            ConfigurationError: the installed claude-agent-sdk no longer offers what the launch seam needs.

        """
        if launcher is None:
            check_sdk_seam()
        _check_containment(config)
        secure_home(home)
        async with AsyncExitStack() as stack:
            children = ChildRegistry(home / CHILDREN_FILE)
            stack.callback(children.close)
            await children.reap_leftovers()
            # Whatever runs as a team's own user is a leftover at start, and again once the pool has stopped.
            team_uids = [identity_of(t.run_as).uid for t in config.teams.values() if t.run_as]
            await _end_team_processes(team_uids)
            stack.push_async_callback(_end_team_processes, team_uids)
            if launcher is None:
                placements = Placements(home, children, write_launcher(home))
                stack.push_async_callback(placements.aclose)
                launcher = placements
            store = store or Store(home / "iris.db")
            broker = PermissionBroker(config.settings.permission_timeout_ms / 1000)
            events = EventLog(
                home / EVENTS_FILE,
                retention_ms=config.settings.event_retention_ms,
                health_every_s=config.settings.health_event_interval_ms / 1000,
            )
            broker.on_decided = _decided_to(events)
            keys, audit = KeyStore(home / "keys.db"), AuditLog(home / "audit.db")
            ledger = CostLedger(home / USAGE_FILE)
            session_mcp = SessionMcp(keys)
            metrics = IrisMetrics(config.teams) if config.settings.metrics_enabled else None
            pool = ProcessPool(
                config,
                store,
                broker,
                launcher,
                extra_env=extra_env,
                session_mcp=session_mcp,
                events=events,
                ledger=ledger,
                metrics=metrics,
                on_budget_refused=metrics.budget_refused if metrics is not None else None,
            )
            jobs = JobQueue(config.settings, pool, events, metrics)
            if metrics is not None:
                metrics.watch_pool(
                    PoolReadings(pool.census, pool.queued_turns, jobs.__len__, config.settings.max_processes)
                )
            secret = signing_secret(config.api.webhooks, home)
            sender = WebhookSender(
                config.api.webhooks, store, secret, config.settings.max_response_bytes, events, metrics
            )
            jobs.on_finished = sender.job_ended
            service = cls(
                config,
                home,
                store=store,
                pool=pool,
                jobs=jobs,
                events=events,
                broker=broker,
                logs=logs or LogRing(),
                keys=keys,
                audit=audit,
                session_mcp=session_mcp,
                ledger=ledger,
                metrics=metrics,
            )
            await stack.enter_async_context(keys)
            await stack.enter_async_context(ledger)  # closes after the pool, whose last turns it records
            await stack.enter_async_context(audit)
            await stack.enter_async_context(store)
            await stack.enter_async_context(events)  # closes last of the running parts: it hears their ends
            events.health = _health_of(config, pool, jobs)
            await stack.enter_async_context(sender)  # before the jobs, whose last ends it still records
            await stack.enter_async_context(jobs)  # before the pool, so it closes after the pool ends turns
            await stack.enter_async_context(pool)
            await service.messages.recover()
            service._exit = stack.pop_all()
        return service

    def handler(self, rpc: str) -> Handler:
        """Return the implementation of the RPC named ``rpc`` (``SendMessage`` -> ``messages.send_message``).

        Raises:
            LookupError: no part, or more than one, implements it.

        """
        name = _snake(rpc)
        parts = (
            self.messages,
            self.sessions,
            self.teams,
            self.system,
            self.key_admin,
            self.approvals,
            self.records,
            self.ledger,
        )
        found: list[Handler] = [getattr(part, name) for part in parts if callable(getattr(part, name, None))]
        if len(found) != 1:
            raise LookupError(f"{len(found)} parts of the domain implement {rpc} (as {name})")
        return found[0]

    async def aclose(self) -> None:
        """Stop every process (reaped) and close the record. Idempotent."""
        await self._exit.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
