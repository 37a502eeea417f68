"""Warm spares: Claude Code processes started ahead of need, so a new pair's first message costs a warm turn.

Starting Claude Code (spawn, load, handshake) costs far more than a warm turn, and the first message of every
new (caller → team) pair, or of a rebooted session, pays it. A team with ``warmSpares: N`` keeps up to N
processes started, each under a fresh session id of its own and with no pair yet.

A spare is handed over through its session id. When Iris creates a session for a new pair (its first message,
a wake, a reboot), it asks ``mint`` for the id: if the team has a spare that is not promised yet, the session
takes that spare's id and the spare is promised to the pair; when the pair then needs a process, ``take``
gives it the spare instead of a start. So the session a spare started under is exactly the pair's session,
and no conversation is ever shared: an id is promised once, and a promise that lost a race to create the
session is withdrawn (``withdraw``) before anyone else can see the id.

A spare is started and handshaken, nothing more: no prompt is sent ahead of the pair's own. (Claude Code does
part of its start lazily, on its first prompt, so that first turn still costs a few warm turns; the ways to
do it ahead found so far, a local command such as ``/context``, leave their output in the conversation, which
Claude Code then sends to the model with the pair's first prompt.)

Spares count toward ``maxProcesses`` and are the first processes evicted for a pair that needs room (before
any idle pair's). They are refilled in the background, only into free room and only while no pair waits
for a slot, so a refill never delays a turn. A spare nobody took within its team's ``idleTimeout`` is stopped
like any idle process, and the team is refilled again only once a spare is used (demand is back); a spare
that died is reaped and replaced. A failed start, or a spare that died within ``RETRY_AFTER_FAILURE_MS`` of
its start, waits that long before the next try, so a broken team does not spin.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import PermissionResultDeny, ToolPermissionContext
from claude_agent_sdk.types import CanUseTool, PermissionResult

from .clock import monotonic_ms
from .config import TeamConfig
from .placement import TeamProcess
from .task_owner import TaskOwner
from .turns import Pair

__all__ = [
    "RETRY_AFTER_FAILURE_MS",
    "SPARE_CALLER",
    "DeferredPermission",
    "WarmSpares",
]

logger = logging.getLogger(__name__)

SPARE_CALLER = "(spare)"
"""The caller named in a spare's record of started processes (``spare->team``) until a pair takes it."""

RETRY_AFTER_FAILURE_MS = 10_000
"""How long a team whose spare failed to start waits before the next try."""


class DeferredPermission:
    """A spare's ``can_use_tool``: it answers for the pair the spare is handed to, and denies before that.

    A process gets its permission callback when it starts, but a spare has no pair yet; the callback of
    the pair that takes it (its grantPermission, its caller, the turn to announce on) is set on hand-over.
    """

    def __init__(self) -> None:
        self.target: CanUseTool | None = None

    async def __call__(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """Ask the pair's own callback; deny while the spare serves no pair (it runs no turn then)."""
        if self.target is None:
            return PermissionResultDeny(message="this Claude Code process serves no pair yet")
        return await self.target(tool_name, tool_input, context)


@dataclass(eq=False)
class _Spare:
    team: str
    session_id: str
    permission: DeferredPermission
    start: asyncio.Task[TeamProcess | None] | None = None
    """The start in flight, until the process is up (or the start failed)."""
    process: TeamProcess | None = None
    ready_mono: float = 0.0
    """When it became ready: its idle time counts from here, or from its promise."""
    promised_to: Pair | None = None
    stop: asyncio.Task[None | None] | None = None
    handed_over: bool = False
    """Evicted: its slot already belongs to the pair that evicted it, while it is being reaped."""

    @property
    def holds_slot(self) -> bool:
        return not self.handed_over

    @property
    def usable(self) -> bool:
        """Starting or up, and not being stopped: it can still be promised and taken."""
        alive = self.process is None or not self.process.exited
        return self.stop is None and alive and (self.start is not None or self.process is not None)


Launch = Callable[[TeamConfig, str, DeferredPermission], Awaitable[TeamProcess]]
"""Starts a spare of a team under a session id, with the permission callback it will hand over."""


@dataclass
class WarmSpares:
    """Every team's spares: minting session ids from them, handing them over, refilling and stopping them."""

    teams: Mapping[str, TeamConfig]
    owner: TaskOwner
    launch: Launch
    has_room: Callable[[], bool]
    """True while a slot is free and no pair waits for one (the only time a spare may start)."""
    room_changed: Callable[[], Awaitable[None]]
    """Wakes the pairs waiting for a slot (a spare's slot freed)."""
    grace_s: float = 10.0
    """How long a spare's graceful stop may take before it is killed."""
    _spares: list[_Spare] = field(default_factory=list)
    _wanted: dict[str, bool] = field(default_factory=dict)
    _retry_at: dict[str, float] = field(default_factory=dict)

    # --- counting --------------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Slots the spares hold: starting, up, or not yet reaped (unless handed over by an eviction)."""
        return sum(1 for s in self._spares if s.holds_slot)

    @property
    def evictable(self) -> bool:
        """True if a spare could give its slot to a pair that needs one."""
        return any(s.usable for s in self._spares)

    def ready(self, team: str) -> int:
        """How many of the team's spares are up and unpromised."""
        return sum(
            1 for s in self._spares if s.team == team and s.usable and s.process and s.promised_to is None
        )

    # --- hand-over -------------------------------------------------------------------------------------

    def mint(self, from_team: str, to_team: str) -> str:
        """Return the session id for a new session of the pair: a spare's, promising it, or a new one."""
        team = self.teams.get(to_team)
        if team is None or team.warm_spares <= 0:
            return str(uuid.uuid4())
        free = [s for s in self._spares if s.team == to_team and s.usable and s.promised_to is None]
        self._wanted[to_team] = True
        if not free:
            self.refill(to_team)
            return str(uuid.uuid4())
        spare = min(free, key=lambda s: s.process is None)  # an up one before one still starting
        spare.promised_to = Pair(from_team, to_team)
        spare.ready_mono = monotonic_ms()
        self.refill(to_team)
        return spare.session_id

    def withdraw(self, session_id: str) -> None:
        """Withdraw the promise of a minted id no session took (a concurrent creation won the race)."""
        for spare in self._spares:
            if spare.session_id == session_id:
                spare.promised_to = None

    def promised(self, pair: Pair) -> bool:
        """Tell whether a usable spare is promised to ``pair``."""
        return any(s.promised_to == pair and s.usable for s in self._spares)

    async def take(self, pair: Pair, session_id: str, timeout_s: float) -> TeamProcess | None:
        """Hand over the spare promised to ``pair`` under ``session_id``: its process, now the pair's.

        A spare still starting is waited for (at most ``timeout_s``; it is the quickest process the pair can
        get). The spare leaves the spares in the same step that returns its process, so its slot passes to the
        pair with no moment where it is counted twice or not at all. None if no usable spare is promised; a
        spare promised to the pair under another id (a session since deleted or replaced), or one too slow to
        start, is stopped: the pair starts a process of its own under that id, and a spare started under a
        session id of the pair must never be handed to it later (its conversation would be empty) nor to
        anyone else.
        """
        spare: _Spare | None = None
        for candidate in list(self._spares):
            if candidate.promised_to != pair or not candidate.usable:
                continue
            if spare is None and candidate.session_id == session_id:
                spare = candidate
            else:  # never hand a pair a process of another session
                self._stop(candidate)
        if spare is None:
            return None
        start = spare.start
        if spare.process is None and start is not None:
            # Not ``await start``: a spare evicted while it starts ends its start cancelled, which must not
            # read as the cancellation of the pair's driver waiting here.
            await asyncio.wait({start}, timeout=timeout_s)
            if not start.done():
                self._stop(spare)
                return None
        process = spare.process
        if process is None or not spare.usable or spare not in self._spares:
            return None
        self._spares.remove(spare)
        logger.info("%s takes a warm spare of %s (process %s)", pair, spare.team, process.pid)
        return process

    def forsake(self, pair: Pair, session_id: str | None = None) -> list[asyncio.Task[None | None]]:
        """Stop each spare promised to ``pair`` or started under ``session_id``; return the stops to wait for.

        With ``session_id`` the pair is starting a process of its own under it: no second process may run
        under it, and a spare promised to the pair is never to be handed to it later (its conversation is
        empty). Without it (a reboot or delete removed the pair's session) only the pair's promise goes.
        """
        stops = []
        for spare in list(self._spares):
            if spare.promised_to == pair or (session_id is not None and spare.session_id == session_id):
                if spare.stop is None:
                    logger.info("stopping a warm spare promised to %s, which no longer needs it", pair)
                stops.append(self._stop(spare))
        return stops

    def evict_one(self) -> asyncio.Task[None | None] | None:
        """Begin stopping one spare whose slot a pair needs; return the stop to wait for, or None.

        Unpromised spares go first, then promised ones (their pair will start a process of its own); a
        spare still starting before one that is up, as it cost less so far.
        """
        usable = [s for s in self._spares if s.usable]
        if not usable:
            return None
        spare = min(usable, key=lambda s: (s.promised_to is not None, s.process is not None))
        logger.info("evicting a warm spare of %s to make room", spare.team)
        stop = self._stop(spare)
        spare.handed_over = True
        return stop

    # --- refilling -------------------------------------------------------------------------------------

    def refill(self, team: str | None = None) -> None:
        """Start spares for ``team`` (or every team that wants them) while there is room; never waits."""
        if self.owner.closing or not self.owner.accepting_tasks:
            return
        now = monotonic_ms()
        names = [team] if team is not None else list(self.teams)
        for name in names:
            config = self.teams.get(name)
            if config is None or config.warm_spares <= 0 or not self._wanted.get(name, True):
                continue
            if now < self._retry_at.get(name, 0.0):
                continue
            while self._unpromised(name) < config.warm_spares and self.has_room():
                self._start(config)

    def _unpromised(self, team: str) -> int:
        return sum(1 for s in self._spares if s.team == team and s.usable and s.promised_to is None)

    def _start(self, team: TeamConfig) -> None:
        spare = _Spare(team.name, str(uuid.uuid4()), DeferredPermission())
        self._spares.append(spare)  # counted from now: the start takes its slot at once
        spare.start = self.owner.spawn(self._run_start(team, spare), f"spare-{team.name}")

    async def _run_start(self, team: TeamConfig, spare: _Spare) -> TeamProcess | None:
        try:
            process = await self.launch(team, spare.session_id, spare.permission)
        except asyncio.CancelledError:  # evicted or shut down while starting: the launcher reaped it
            self._forget(spare)
            await self.room_changed()
            raise
        except Exception as exc:  # noqa: BLE001 - top of a task: a failed spare is logged, retried later
            logger.warning("a warm spare of %s failed to start: %s", team.name, exc)
            self._retry_at[team.name] = monotonic_ms() + RETRY_AFTER_FAILURE_MS
            self._forget(spare)
            await self.room_changed()
            return None
        spare.process, spare.ready_mono = process, monotonic_ms()
        spare.start = None
        if spare.stop is not None or self.owner.closing:  # stopped while it started
            await self._stop_process(spare, process)
            return None
        logger.info("warm spare of %s ready (process %s)", team.name, process.pid)
        return process

    # --- stopping --------------------------------------------------------------------------------------

    def reap_once(self) -> None:
        """Stop spares idle past their team's ``idleTimeout``, and reap (then replace) spares that died."""
        now = monotonic_ms()
        died = set()
        for spare in list(self._spares):
            if spare.stop is not None or spare.process is None:
                continue
            if spare.process.exited:
                if now - spare.ready_mono < RETRY_AFTER_FAILURE_MS:  # died as it started: a failed start
                    logger.warning("a warm spare of %s exited soon after its start", spare.team)
                    self._retry_at[spare.team] = now + RETRY_AFTER_FAILURE_MS
                else:
                    logger.info("a warm spare of %s exited; replacing it", spare.team)
                died.add(spare.team)
                self._stop(spare)
                continue
            timeout = self.teams[spare.team].idle_timeout_ms
            if 0 < timeout <= now - spare.ready_mono:
                logger.info("stopping an idle warm spare of %s", spare.team)
                if spare.promised_to is None:
                    self._wanted[spare.team] = False  # refilled once a spare is used again
                self._stop(spare)
        for team in died:
            self.refill(team)

    def _stop(self, spare: _Spare) -> asyncio.Task[None | None]:
        """Start stopping a spare (cancelling its start, or stopping its process); return the stop."""
        if spare.stop is not None:
            return spare.stop
        spare.promised_to = None
        spare.stop = self.owner.spawn(self._run_stop(spare), f"stop-spare-{spare.team}")
        return spare.stop

    async def _run_stop(self, spare: _Spare) -> None:
        try:
            start = spare.start
            if start is not None and not start.done():
                start.cancel()
                await asyncio.wait({start})
            elif spare.process is not None:
                await self._stop_process(spare, spare.process)
        finally:
            self._forget(spare)
            await self.room_changed()

    async def _stop_process(self, spare: _Spare, process: TeamProcess) -> None:
        try:
            await process.stop(grace_s=self.grace_s)
        except Exception as exc:  # noqa: BLE001 - a failed stop is logged; the slot still frees
            logger.error("stopping a warm spare of %s failed: %r", spare.team, exc)

    def _forget(self, spare: _Spare) -> None:
        if spare in self._spares:
            self._spares.remove(spare)

    async def stop_all(self) -> None:
        """Stop every spare and wait until each is reaped (shutdown); inline once the pool's group closed."""
        if self.owner.accepting_tasks:
            stops = [self._stop(s) for s in list(self._spares)]
            if stops:
                await asyncio.wait(stops)
        for spare in list(self._spares):
            if spare.start is not None and not spare.start.done():
                spare.start.cancel()
                await asyncio.wait({spare.start})
            if spare.process is not None:
                await self._stop_process(spare, spare.process)
            self._forget(spare)
