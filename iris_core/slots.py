"""The process side of the pool: at most ``maxProcesses`` Claude Code processes, started, evicted, reaped.

A pair that needs a process takes a free slot, else the least recently used idle process is stopped, and
reaped, to make room; a busy one never is. When no slot can be had, pairs wait in one fair line (first
come, first served), each for at most ``settings.admissionTimeout``; and a pair that has a process gives it
up at the end of a turn while another pair is waiting and nothing else is free, then queues again at the back
of the line, so no team or caller starves however busy the others are.

A slot counts from the start of a launch to the reaping of the process (an evicted process's slot passes to
the evicting pair at once, but that pair launches only once the child is reaped), so ``maxProcesses`` bounds
live children, not just bookkeeping. Starting, stopping and
discarding a pair's process hold the pair's lifecycle lock, so they never interleave.

The tasks these need (stops) belong to the pool, through the ``TaskOwner`` it gives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Mapping

from claude_agent_sdk.types import McpServerConfig

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .claude_process import LaunchSpec
from .clock import monotonic_ms
from .config import IrisConfig, TeamConfig
from .errors import ConfigurationError, IrisError, ProcessError, ProcessPoolLimitError, RewindRefusedError
from .events import EventLog
from .launch_spec import launch_spec
from .metrics import IrisMetrics
from .pairs import ASLEEP, PairRuntime, Running, Starting, Stopping
from .permissions import PermissionBroker
from .placement import Launcher, TeamProcess
from .rewind import Rewind, plan_rewind, prompt_uuid
from .run_as import identity_of
from .session_mcp import SessionMcp
from .spares import SPARE_CALLER, DeferredPermission, WarmSpares
from .store import Store
from .task_owner import TaskOwner
from .turns import Pair

__all__ = ["ProcessSlots", "TaskOwner"]

logger = logging.getLogger(__name__)

RETRY_AFTER_MS = 1_000
"""The retry hint of a turn refused for want of a slot: slots free as other turns end, often within one."""


class ProcessSlots:
    """Every pair's process: how many there are, starting one when a pair needs it, stopping and reaping."""

    def __init__(
        self,
        config: IrisConfig,
        store: Store,
        broker: PermissionBroker,
        launcher: Launcher,
        pairs: Mapping[Pair, PairRuntime],
        owner: TaskOwner,
        *,
        extra_env: Mapping[str, str] | None = None,
        session_mcp: SessionMcp | None = None,
        events: EventLog | None = None,
        metrics: IrisMetrics | None = None,
    ) -> None:
        self._settings = config.settings
        self._events = events
        self._metrics = metrics
        self._store = store
        self._broker = broker
        self._launcher = launcher
        self._pairs = pairs
        self._owner = owner
        self._extra_env = dict(extra_env or {})
        self._session_mcp = session_mcp
        self._room_changed = asyncio.Condition()
        self._line: list[PairRuntime] = []
        """Pairs waiting for a slot, first come first served."""
        self.spares = WarmSpares(
            config.teams,
            owner,
            self._launch_spare,
            has_room=self._room_for_spare,
            room_changed=self.notify_room_changed,
            grace_s=self._settings.shutdown_timeout_ms / 1000,
        )
        """The teams' warm spares (``warmSpares``), which count toward ``maxProcesses`` like any process."""

    async def ensure(
        self, state: PairRuntime, *, wait_for_slot: bool, only_if_queued: bool = False
    ) -> TeamProcess | None:
        """Return the pair's live process, starting one (and making room for it) if needed.

        Room is waited for without the pair's lifecycle lock, so a reboot, delete or sleep of the pair is
        never stuck behind other pairs' turns, and in the fair line: a pair claims a slot only when no pair
        waits ahead of it. With ``wait_for_slot`` (a pair's next turn) a pair that has a process gives it up
        when another pair waits and no other room exists. With ``only_if_queued`` nothing starts (None is
        returned) once the pair's queue is empty, e.g. after a discard emptied it.

        Raises:
            ProcessPoolLimitError: no slot within ``settings.admissionTimeout`` (or at once without
                ``wait_for_slot``), with a ``retryAfterMs`` hint.

        """
        deadline = asyncio.get_running_loop().time() + self._settings.admission_timeout_ms / 1000
        try:
            while True:
                async with state.lifecycle:
                    if state.stopping is not None:
                        await asyncio.shield(state.stopping)
                    if state.process is not None and state.process.gone:  # died while idle: reap it first
                        await self.stop_now(state, force=True)
                    if state.process is not None and wait_for_slot and self._owes_its_slot(state):
                        logger.info(
                            "%s gives its process up to %s, waiting longer", state.pair, self._line[0].pair
                        )
                        await self.stop_now(state, force=False)
                    if state.process is not None:
                        return state.process
                    if only_if_queued and not state.queue:
                        return None
                    self._owner.check_open()
                    # A new pair's session is created (its id minted, perhaps a spare's) before looking for
                    # a spare promised to it, so a wake takes the spare too, rather than starting a process
                    # under the id the spare was promised with.
                    await self._store.session_id_for(state.pair.from_team, state.pair.to_team)
                    if self.spares.promised(state.pair):
                        adopted = await self._adopt_spare(state)
                        if adopted is not None:
                            self._leave_line(state)
                            return adopted
                    if not self._line or self._line[0] is state:
                        victim = self._claim(state)
                        if state.starting:
                            self._leave_line(state)
                            return await self._launch(state, victim)
                if not wait_for_slot:
                    n = self._settings.max_processes
                    raise self._no_slot(f"All {n} Claude Code processes are busy; try again later")
                if state not in self._line:
                    self._line.append(state)
                await self._wait_for_room(deadline)
        finally:
            self._leave_line(state)

    def _owes_its_slot(self, state: PairRuntime) -> bool:
        """Tell whether another pair waits for a slot that only this pair's process can give it now."""
        waiting = [s for s in self._line if s is not state]
        if not waiting:
            return False
        free = self.process_count < self._settings.max_processes or self.spares.evictable
        return not free and not any(s.idle and s is not state for s in self._pairs.values())

    def _leave_line(self, state: PairRuntime) -> None:
        if state in self._line:
            self._line.remove(state)
            self._room_changed_soon()

    def _room_changed_soon(self) -> None:
        """Wake the waiters without waiting (a pair left the line: the next one may now claim)."""

        async def notify() -> None:
            await self.notify_room_changed()

        if self._owner.accepting_tasks:
            self._owner.spawn(notify(), "notify-room")

    def _no_slot(self, message: str) -> ProcessPoolLimitError:
        limit = self._settings.max_processes
        return ProcessPoolLimitError(message, details={"maxProcesses": limit, "retryAfterMs": RETRY_AFTER_MS})

    def _claim(self, state: PairRuntime) -> asyncio.Task[None | None] | None:
        """Mark the pair starting if a slot is free or a process can give it one; return that process's stop.

        Synchronous, so two claimers never count the same free slot or pick the same victim. A warm spare
        gives its slot first, then the least recently used idle pair. The victim's slot is handed over at
        once (its stop starts now); the claimer launches only after the victim's child is reaped, so live
        children never exceed maxProcesses.
        """
        if self.process_count < self._settings.max_processes:
            state.phase = Starting()
            return None
        spare_stop = self.spares.evict_one()
        if spare_stop is not None:
            state.phase = Starting()
            return spare_stop
        victims = [s for s in self._pairs.values() if s.idle and s is not state]
        if not victims:
            return None
        victim = min(victims, key=lambda s: s.last_used_mono)
        logger.info("evicting idle %s to make room for %s", victim.pair, state.pair)
        stop = self.stop_task(victim, force=False, handed_over=True)
        state.phase = Starting()
        return stop

    async def _adopt_spare(self, state: PairRuntime) -> TeamProcess | None:
        """Give the pair the warm spare promised to it (started under its session id), if it is usable.

        The spare's permission callback is pointed at the pair's own (its grantPermission, its caller, its
        turns), and the process's spec becomes the pair's, so the pool sees a process started for the pair.
        """
        session_id = await self._store.session_id_for(state.pair.from_team, state.pair.to_team)
        process = await self.spares.take(state.pair, session_id, self._spawn_timeout_s)
        if process is None:
            return None
        spec = self._spec(state, session_id)
        permission = process.spec.can_use_tool
        if isinstance(permission, DeferredPermission):
            permission.target = spec.can_use_tool
        process.spec = dataclasses.replace(spec, can_use_tool=permission, resume=False)
        state.phase = Running(process)  # the spare's slot passes to the pair in this same step
        state.last_used_mono = monotonic_ms()
        self._emit("process.spawned", state, pid=process.pid)
        return process

    def _room_for_spare(self) -> bool:
        """Tell whether a spare may start: only into a free slot that no pair is waiting for."""
        return self.process_count < self._settings.max_processes and not self._line

    async def _launch_spare(
        self, team: TeamConfig, session_id: str, permission: DeferredPermission
    ) -> TeamProcess:
        """Start a warm spare of ``team`` under ``session_id``: a pair's spec, with no pair yet."""
        if self._session_mcp is not None and team.session_mcp_enabled:
            await self._session_mcp.wait_for_endpoint(self._spawn_timeout_s)
        spare = PairRuntime(Pair(SPARE_CALLER, team.name), team)
        spec = dataclasses.replace(self._spec(spare, session_id), can_use_tool=permission, resume=False)
        return await self._timed_launch(spare, spec)

    async def _launch(self, state: PairRuntime, victim: asyncio.Task[None | None] | None) -> TeamProcess:
        try:
            if victim is not None:
                await asyncio.shield(victim)
            session_id = await self._store.session_id_for(state.pair.from_team, state.pair.to_team)
            forsaken = self.spares.forsake(state.pair, session_id)  # never two processes under one session
            if forsaken:
                await asyncio.wait(forsaken)
            if self._session_mcp is not None and state.team.session_mcp_enabled:
                await self._session_mcp.wait_for_endpoint(self._spawn_timeout_s)
            rewind = await self._rewind_for(state, session_id)
            try:
                process = await self._timed_launch(state, self._spec(state, session_id, rewind))
            except RewindRefusedError as exc:
                logger.warning("%s: %s; resuming the whole session instead", state.pair, exc.message)
                if state.queue:
                    state.queue[0].rewind_prompts = ()
                process = await self._timed_launch(state, self._spec(state, session_id, None))
        except BaseException as exc:
            state.phase = ASLEEP
            await self.notify_room_changed()
            if isinstance(exc, IrisError):
                self._emit("process.error", state, error=exc.message)
            raise
        state.phase = Running(process)  # Starting -> Running in one step: the slot is never seen free
        self._emit("process.spawned", state, pid=process.pid)
        state.last_used_mono = monotonic_ms()
        if self._owner.closing:  # the pool began closing while this process started: it must not outlive it
            await self.stop_now(state, force=False)
            raise ProcessPoolLimitError("Iris is shutting down")
        return process

    async def _timed_launch(self, state: PairRuntime, spec: LaunchSpec) -> TeamProcess:
        """Launch, observing how long the start took (a failed or cancelled start too)."""
        if self._metrics is None:
            return await self._launcher(spec, self._spawn_timeout_s)
        started = time.monotonic()
        try:
            return await self._launcher(spec, self._spawn_timeout_s)
        finally:
            self._metrics.process_spawned(state.pair.to_team, time.monotonic() - started)

    async def _wait_for_room(self, deadline: float) -> None:
        """Wait until a slot may have freed (a reap, a failed start, a turn's end); re-check every second."""
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            waited = self._settings.admission_timeout_ms / 1000
            raise self._no_slot(
                f"No Claude Code process slot became free within {waited:g}s (settings.admissionTimeout)"
            )
        async with self._room_changed:
            try:
                async with asyncio.timeout(min(remaining, 1.0)):
                    await self._room_changed.wait()
            except TimeoutError:
                pass

    @property
    def _spawn_timeout_s(self) -> float:
        return self._settings.spawn_timeout_ms / 1000

    async def notify_room_changed(self) -> None:
        """Wake every start waiting for a slot (a process was reaped, a start failed, a turn ended).

        Room nobody waits for refills the warm spares.
        """
        async with self._room_changed:
            self._room_changed.notify_all()
        if not self._line:
            self.spares.refill()

    def stop_task(
        self, state: PairRuntime, *, force: bool, handed_over: bool = False
    ) -> asyncio.Task[None | None]:
        """Return the pair's stop in flight, starting one if needed (it reaps the process, frees the slot).

        Only a Running pair starts a stop (the caller checked it has a process).
        """
        phase = state.phase
        if isinstance(phase, Stopping):
            if force:
                phase.process.kill()
            return phase.task
        assert isinstance(phase, Running), f"{state.pair} has no process to stop"
        task = self._owner.spawn(self._stop(state, phase.process, force=force), f"stop-{state.pair}")
        state.phase = Stopping(phase.process, task, handed_over)
        return task

    async def stop_now(self, state: PairRuntime, *, force: bool) -> None:
        """Stop and reap the pair's process, if it has one, and wait until it is gone."""
        if state.process is None:
            return
        if not self._owner.accepting_tasks:  # the TaskGroup has closed (the owner's final sweep): stop inline
            await self._stop(state, state.process, force=force)
            return
        await asyncio.shield(self.stop_task(state, force=force))

    async def _stop(self, state: PairRuntime, process: TeamProcess, *, force: bool) -> None:
        try:
            await process.stop(force=force, grace_s=self._settings.shutdown_timeout_ms / 1000)
            logger.info("stopped Claude Code process %s of %s", process.pid, state.pair)
            self._emit("process.terminated", state, pid=process.pid)
        except Exception as exc:  # noqa: BLE001 - top of a task: a failed stop is logged, the slot still frees
            logger.error("stopping the process of %s failed: %r", state.pair, exc)
        finally:
            if state.process is process:
                state.phase = ASLEEP
            await self.notify_room_changed()

    def _emit(self, kind: str, state: PairRuntime, *, pid: int = 0, error: str = "") -> None:
        if self._events is not None:
            event = pb.WatchEventsResponse(
                kind=kind, team=state.pair.to_team, from_team=state.pair.from_team, pid=pid, error=error
            )
            self._events.emit(event)

    async def _rewind_for(self, state: PairRuntime, session_id: str) -> Rewind | None:
        """Plan the rewind the pair's next turn asks for (a cut-off attempt); None if it asks none.

        Planned at each start until the turn's new prompt is sent, so a process that dies before that is
        rewound again. The transcript is read in a worker thread (bounded, see ``plan_rewind``).
        """
        head = state.queue[0] if state.queue else None
        if head is None or not head.rewind_prompts:
            return None
        env = {**os.environ, **self.claude_env(state.team)}
        rewind = await asyncio.to_thread(plan_rewind, env, session_id, head.rewind_prompts)
        unrecorded = prompt_uuid(head.message_id, head.recovered_attempts + 1)
        if rewind is not None and rewind.prompt == unrecorded and head.attempts == head.recovered_attempts:
            # The cut-off attempt was one whose count could not be written: the next gets a uuid of its own.
            head.attempts = head.recovered_attempts = head.attempts + 1
        logger.info(
            "%s: turn %s was cut off; %s",
            state.pair,
            head.message_id,
            "its session resumes from before it" if rewind else "its prompt never reached Claude Code",
        )
        return rewind

    def _spec(self, state: PairRuntime, session_id: str, rewind: Rewind | None = None) -> LaunchSpec:
        env = self.claude_env(state.team)
        servers: dict[str, McpServerConfig] = {}
        if self._session_mcp is not None:
            servers = self._session_mcp.servers_for(state.team)
            env = {**env, **self._session_mcp.env_for(state.team)}
        try:
            spec = launch_spec(state, session_id, env, self._broker, servers, rewind)
        except ConfigurationError as exc:  # runAs names a user deleted since the config was loaded
            raise ProcessError(f"Claude Code failed to start: {exc}") from exc
        head = state.queue[0] if state.queue else None
        if head is not None and head.rewind_prompts:
            # This process is the one the head turn's rewind asked for (whether a rewind was found or not).
            return dataclasses.replace(spec, rewound_for=head.message_id)
        return spec

    async def stop_all(self) -> None:
        """Stop and reap every process, spares too (shutdown); a failed stop is logged, the others go on."""
        stops = [self.stop_now(s, force=False) for s in list(self._pairs.values()) if s.process is not None]
        stops.append(self.spares.stop_all())
        for outcome in await asyncio.gather(*stops, return_exceptions=True):
            if isinstance(outcome, BaseException):
                logger.error("stopping a process at shutdown failed: %r", outcome)

    async def retire(self, process: TeamProcess) -> None:
        """Kill and reap a process that failed a turn; the pair's next turn starts a new one."""
        for state in self._pairs.values():
            if state.process is process:
                await self.stop_now(state, force=True)
                return

    @property
    def process_count(self) -> int:
        """Slots in use: processes starting, alive, or not yet reaped, warm spares included."""
        return sum(1 for s in self._pairs.values() if s.holds_slot) + self.spares.count

    def census(self) -> tuple[int, int, frozenset[Pair]]:
        """Return (slots in use, processes running a turn, pairs with a live process)."""
        live = frozenset(p for p, s in self._pairs.items() if s.live)
        busy = sum(1 for s in self._pairs.values() if s.live and s.current is not None and not s.current.done)
        return self.process_count, busy, live

    def claude_env(self, team: TeamConfig) -> dict[str, str]:
        """Return the environment Iris adds for the team's Claude processes (over the server's own).

        A contained team (``runAs``) gets its user's ``HOME`` and Claude Code config dir over the settings'
        (which serve Iris's own user); the team's own ``env`` still wins.
        """
        identity: dict[str, str] = {}
        if team.run_as:
            try:
                identity = identity_of(team.run_as).environment()
            except ConfigurationError:  # the user went away since the config was loaded: _spec says so
                pass
        return {**self._settings.env, **self._extra_env, **identity, **team.env}

    def reap_once(self) -> None:
        """Start the stop of processes that died while idle, or sat idle past their team's idleTimeout."""
        self.spares.reap_once()
        now = monotonic_ms()
        for state in list(self._pairs.values()):
            if self._owner.closing:
                return
            if (
                state.process is not None
                and state.process.exited
                and not state.busy
                and state.stopping is None
            ):
                logger.info("reaping the exited process of %s", state.pair)
                self.stop_task(state, force=True)
            elif state.idle and 0 < state.team.idle_timeout_ms <= now - state.last_used_mono:
                logger.info("stopping the idle process of %s", state.pair)
                self.stop_task(state, force=False)
