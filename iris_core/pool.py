"""The pool of Claude Code processes: one per (caller, team) pair, one turn at a time each.

Rules it keeps:

- A pair's turns run in arrival order; turns for a busy pair wait in a bounded FIFO (full: TooManyRequests).
- At most ``settings.maxProcesses`` processes exist (starting, idle, busy or stopping). A new pair takes a
  free slot, else the least recently used idle process is stopped to make room; a busy one never is. With
  every slot busy the message is refused with ProcessPoolLimitError before anything is recorded.
- A process idle for its team's ``idleTimeout`` is stopped; the session stays for the next wake.
- A process that dies mid-turn fails that turn at once with ProcessError; the next turn of the pair starts a
  new process that resumes the same Claude session.
- Every task (a pair's driver, the idle reaper, a stop) belongs to the pool's TaskGroup, and ``aclose``
  stops and reaps every process.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from .claude_process import ClaudeProcess, LaunchSpec, TextDelta, ToolCall, TurnResult
from .clock import monotonic_ms, now_ms
from .config import IrisConfig, TeamConfig
from .errors import (
    IrisError,
    PreconditionFailedError,
    ProcessError,
    ProcessPoolLimitError,
    TooManyRequestsError,
)
from .permissions import PermissionBroker
from .store import Store
from .transcripts import find_transcripts
from .turns import Pair, Turn, TurnStatus

__all__ = ["Launcher", "PairState", "PairView", "ProcessPool"]

logger = logging.getLogger(__name__)

Launcher = Callable[[LaunchSpec, float], Awaitable[ClaudeProcess]]
"""Starts a Claude Code process for a spec within a deadline: the one seam for where processes run."""


class PairState(enum.StrEnum):
    """Lifecycle of a pair's process."""

    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"


_HOLDS_SLOT = frozenset({PairState.STARTING, PairState.IDLE, PairState.BUSY, PairState.STOPPING})


@dataclass(frozen=True, slots=True)
class PairView:
    """A read-only snapshot of a pair for status reports."""

    pair: Pair
    state: PairState
    pid: int
    pending: int
    running: int
    last_used_ms: int

    @property
    def awake(self) -> bool:
        """True while a live process serves the pair."""
        return self.state in (PairState.IDLE, PairState.BUSY)


@dataclass(eq=False)
class _Pair:
    pair: Pair
    team: TeamConfig
    state: PairState = PairState.STOPPED
    process: ClaudeProcess | None = None
    queue: deque[Turn] = field(default_factory=deque)
    current: Turn | None = None
    driver: asyncio.Task[None] | None = None
    start_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used_mono: float = field(default_factory=monotonic_ms)
    last_used_ms: int = 0
    cost_base: float = 0.0
    evicting: asyncio.Task[None] | None = None
    """A stop of another pair's process that must finish before this pair's process may start."""

    @property
    def busy(self) -> bool:
        """A turn is unfinished (its record may still be being written once it has finished)."""
        return (self.current is not None and not self.current.done) or bool(self.queue)

    @property
    def idle(self) -> bool:
        """A live process with nothing to do: the only kind that idle-stop and eviction may take."""
        return (
            self.state in (PairState.IDLE, PairState.BUSY)
            and not self.busy
            and self.process is not None
            and not self.process.exited
        )


class ProcessPool:
    """Owns every Claude Code process and the order of every pair's turns.

    Use as an async context manager (or call ``start``/``aclose`` from the same task): the pool's TaskGroup
    owns the drivers and the idle reaper.
    """

    def __init__(
        self,
        config: IrisConfig,
        store: Store,
        broker: PermissionBroker,
        launcher: Launcher,
        *,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._settings = config.settings
        self._store = store
        self._broker = broker
        self._launcher = launcher
        self._extra_env = dict(extra_env or {})
        self._pairs: dict[Pair, _Pair] = {}
        self._turns: dict[str, Turn] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False
        self._activity = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the TaskGroup and the idle reaper."""
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._tg.create_task(self._reap_idle(), name="iris-idle-reaper")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop accepting turns, end the active ones, stop and reap every process. Idempotent.

        Turns sent with ``persist`` that had not finished stay queued in the record and run again at the
        next start; other unfinished turns end with status error ("server shut down").
        """
        if self._closing:
            return
        self._closing = True
        self._activity.set()
        for state in self._pairs.values():
            for turn in [*state.queue, *([state.current] if state.current else [])]:
                await self._end_for_shutdown(turn)
            state.queue.clear()
        stops = [self._stop_process(s, force=False) for s in self._pairs.values() if s.process is not None]
        await asyncio.gather(*stops, return_exceptions=True)
        tg, self._tg = self._tg, None
        if tg is not None:
            for state in self._pairs.values():
                if state.driver is not None:
                    state.driver.cancel()
            await tg.__aexit__(None, None, None)

    # --- queries ---------------------------------------------------------------------------------------

    def view(self, pair: Pair) -> PairView:
        """Return a snapshot of one pair (stopped if it never ran)."""
        state = self._pairs.get(pair)
        if state is None:
            return PairView(pair, PairState.STOPPED, 0, 0, 0, 0)
        live = state.process is not None and not state.process.exited
        shown = (
            state.state
            if live or state.state in (PairState.STARTING, PairState.STOPPING)
            else PairState.STOPPED
        )
        return PairView(
            pair,
            shown,
            state.process.pid if state.process is not None and live else 0,
            len(state.queue),
            1 if state.current is not None else 0,
            state.last_used_ms,
        )

    def live_turn(self, message_id: str) -> Turn | None:
        """Return an active turn by id (its record is still being written)."""
        return self._turns.get(message_id)

    @property
    def process_count(self) -> int:
        """Slots in use (starting, idle, busy or stopping processes)."""
        return sum(1 for s in self._pairs.values() if s.state in _HOLDS_SLOT)

    # --- turns -----------------------------------------------------------------------------------------

    async def submit(self, turn: Turn, team: TeamConfig) -> None:
        """Accept a turn: check room, record it, queue it. Raises before recording if there is no room.

        Raises:
            TooManyRequestsError: the pair's queue is full.
            ProcessPoolLimitError: the pair has no process and every slot is busy.

        """
        self._check_open()
        state = self._pair(turn.pair, team)
        if len(state.queue) >= self._settings.max_queued_messages:
            raise TooManyRequestsError(
                f"{turn.pair} already has {len(state.queue)} messages waiting; try again later",
                details={"queued": len(state.queue), "limit": self._settings.max_queued_messages},
            )
        if state.state is PairState.STOPPED:
            self._claim_slot(state)
        state.queue.append(turn)
        self._turns[turn.message_id] = turn
        try:
            await self._store.add_turn(
                message_id=turn.message_id,
                session_id=turn.session_id,
                from_team=turn.pair.from_team,
                to_team=turn.pair.to_team,
                request=turn.request,
                created_at=turn.created_at,
                persist=turn.persist,
                expires_at=turn.expires_at,
            )
        except BaseException:
            state.queue.remove(turn)
            self._turns.pop(turn.message_id, None)
            if not state.busy and state.process is None:
                state.state = PairState.STOPPED
            raise
        await turn.publish(
            {
                "start": {
                    "messageId": turn.message_id,
                    "sessionId": turn.session_id,
                    "team": turn.pair.to_team,
                    "fromTeam": turn.pair.from_team,
                    "timestamp": turn.created_at,
                }
            }
        )
        self._ensure_driver(state)

    async def resubmit(self, turn: Turn, team: TeamConfig) -> None:
        """Queue a turn that is already recorded (a persisted turn left unfinished by the last run)."""
        self._check_open()
        state = self._pair(turn.pair, team)
        state.queue.append(turn)
        self._turns[turn.message_id] = turn
        await self._store.mark_queued(turn.message_id)
        self._ensure_driver(state)

    async def interrupt(self, pair: Pair) -> Turn | None:
        """Interrupt the pair's running turn (the SDK's interrupt); return it, or None if none runs.

        The turn ends with status cancelled; the process stays for the next turn.
        """
        state = self._pairs.get(pair)
        if state is None or state.current is None or state.process is None:
            return None
        turn = state.current
        turn.cancel_requested = True
        await state.process.interrupt()
        return turn

    # --- processes -------------------------------------------------------------------------------------

    async def wake(self, pair: Pair, team: TeamConfig) -> ClaudeProcess:
        """Ensure the pair's process is running and ready; return it.

        Raises:
            ProcessPoolLimitError: no slot is free and no idle process can be evicted.
            ProcessError: the process failed to start.

        """
        self._check_open()
        state = self._pair(pair, team)
        if state.process is not None and not state.process.exited:
            return state.process
        if state.state is PairState.STOPPED:
            self._claim_slot(state)
        try:
            return await self._ensure_process(state)
        finally:
            if state.process is None and not state.busy and state.state is PairState.STARTING:
                state.state = PairState.STOPPED

    async def sleep(self, pair: Pair, *, force: bool) -> bool:
        """Stop the pair's process; return False if it was not running.

        Raises:
            PreconditionFailedError: the pair is busy and ``force`` is false.

        """
        state = self._pairs.get(pair)
        if state is None or state.process is None:
            return False
        if state.busy and not force:
            raise PreconditionFailedError(
                f"{pair} is busy with a turn; pass force to stop it anyway",
                details={"running": 1 if state.current else 0, "queued": len(state.queue)},
            )
        await self._cancel_turns(state, "the team was put to sleep")
        await self._stop_process(state, force=force)
        return True

    async def discard(self, pair: Pair) -> bool:
        """Cancel the pair's turns and stop its process (reboot/delete); return True if a process ran."""
        state = self._pairs.get(pair)
        if state is None:
            return False
        had_process = state.process is not None and not state.process.exited
        await self._cancel_turns(state, "the session was removed")
        if state.process is not None:
            await self._stop_process(state, force=had_process and state.current is not None)
        return had_process

    # --- internals -------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing or self._tg is None:
            raise ProcessPoolLimitError("Iris is shutting down")

    def _pair(self, pair: Pair, team: TeamConfig) -> _Pair:
        state = self._pairs.get(pair)
        if state is None:
            state = self._pairs[pair] = _Pair(pair, team)
        return state

    def _claim_slot(self, state: _Pair) -> None:
        """Reserve a process slot for a stopped pair, evicting the LRU idle process if the pool is full."""
        if self.process_count >= self._settings.max_processes:
            victims = [s for s in self._pairs.values() if s.idle]
            if not victims:
                raise ProcessPoolLimitError(
                    f"All {self._settings.max_processes} Claude Code processes are busy; try again later",
                    details={"maxProcesses": self._settings.max_processes},
                )
            victim = min(victims, key=lambda s: s.last_used_mono)
            victim.state = PairState.STOPPING  # claimed now, so a concurrent claim picks another victim
            logger.info("evicting idle %s to make room for %s", victim.pair, state.pair)
            state.evicting = self._spawn(self._stop_process(victim, force=False), f"evict-{victim.pair}")
        state.state = PairState.STARTING

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        assert self._tg is not None
        return self._tg.create_task(coro, name=name)

    def _ensure_driver(self, state: _Pair) -> None:
        if state.driver is None or state.driver.done():
            state.driver = self._spawn(self._drive(state), f"drive-{state.pair}")

    async def _ensure_process(self, state: _Pair) -> ClaudeProcess:
        async with state.start_lock:
            if state.process is not None and not state.process.exited:
                return state.process
            if state.process is not None:  # died while idle: reap it, keep the slot
                await state.process.stop(force=True)
                state.process = None
            if state.state is PairState.STOPPED:  # re-queued after a restart, or stopped while queued
                self._claim_slot(state)
            if state.evicting is not None:
                evicting, state.evicting = state.evicting, None
                await evicting
            state.state = PairState.STARTING
            session = await self._store.get_or_create_session(state.pair.from_team, state.pair.to_team)
            spec = self._spec(state, session.session_id)
            try:
                process = await self._launcher(spec, self._settings.spawn_timeout_ms / 1000)
            except BaseException:
                state.state = PairState.STOPPED if not state.busy else state.state
                raise
            state.process = process
            state.cost_base = 0.0
            state.state = PairState.BUSY if state.current else PairState.IDLE
            state.last_used_mono = monotonic_ms()
            return process

    def _spec(self, state: _Pair, session_id: str) -> LaunchSpec:
        team = state.team
        env = {**self._settings.env, **self._extra_env, **team.env}
        resume = bool(find_transcripts({**os.environ, **env}, session_id))

        async def announce(request_id: str, tool: str, tool_input: dict[str, Any], expires_at: int) -> None:
            turn = state.current
            if turn is not None:
                await turn.publish(
                    {
                        "permissionRequest": {
                            "requestId": request_id,
                            "tool": tool,
                            "input": tool_input,
                            "expiresAt": expires_at,
                        }
                    }
                )

        return LaunchSpec(
            cwd=team.path,
            env=env,
            session_id=session_id,
            resume=resume,
            can_use_tool=self._broker.callback(team.grant_permission, state.pair.from_team, announce),
            model=team.model,
            allowed_tools=team.allowed_tools,
            disallowed_tools=team.disallowed_tools,
        )

    async def _drive(self, state: _Pair) -> None:
        """Run the pair's queued turns in order, starting (or restarting) its process as needed."""
        while state.queue and not self._closing:
            try:
                process = await self._ensure_process(state)
            except IrisError as exc:
                await self._fail_queue(state, exc)
                return
            if not state.queue:
                break
            turn = state.queue.popleft()
            state.current = turn
            state.state = PairState.BUSY
            try:
                await self._run_turn(state, process, turn)
            finally:
                state.current = None
                state.last_used_mono = monotonic_ms()
                state.last_used_ms = now_ms()
                if state.state is PairState.BUSY:
                    if state.process is not None and not state.process.exited:
                        state.state = PairState.IDLE
                    else:  # the process went away with the turn; keep the slot only for queued turns
                        state.state = PairState.STARTING if state.queue else PairState.STOPPED
                self._turns.pop(turn.message_id, None)
                self._activity.set()

    async def _run_turn(self, state: _Pair, process: ClaudeProcess, turn: Turn) -> None:
        await turn.mark_running()
        await self._store.mark_running(turn.message_id, turn.started_at)
        try:
            async for event in process.run_turn(turn.request):
                if isinstance(event, TextDelta):
                    await turn.publish({"chunk": {"text": event.text}})
                elif isinstance(event, ToolCall):
                    await turn.publish(
                        {
                            "toolUse": {
                                "tool": event.name,
                                "input": event.input,
                                "toolUseId": event.tool_use_id,
                            }
                        }
                    )
                elif isinstance(event, TurnResult):
                    cost = max(event.total_cost_usd - state.cost_base, 0.0)
                    state.cost_base = event.total_cost_usd
                    if turn.cancel_requested:
                        await turn.finish(TurnStatus.CANCELLED, cost_usd=cost)
                    elif event.is_error:
                        detail = event.text or "; ".join(event.errors) or "Claude Code reported an error"
                        await turn.finish(TurnStatus.ERROR, error=detail, cost_usd=cost)
                    else:
                        await turn.finish(TurnStatus.COMPLETED, final_text=event.text, cost_usd=cost)
        except ProcessError as exc:
            logger.warning("%s: %s", state.pair, exc.message)
            if self._closing:
                await self._end_for_shutdown(turn)
            elif turn.cancel_requested:
                await turn.finish(TurnStatus.CANCELLED)
            else:
                await turn.finish(TurnStatus.ERROR, error=exc.message, failure=exc)
            await self._retire_dead_process(state)
        finally:
            if not turn.done:  # the driver was cancelled mid-turn (shutdown)
                await self._end_for_shutdown(turn)
            await self._record(turn)

    async def _record(self, turn: Turn) -> None:
        if turn.persist and turn.status is TurnStatus.QUEUED:
            return  # left queued for the next start
        await asyncio.shield(
            self._store.finish_turn(
                turn.message_id,
                status=turn.status.value,
                response=turn.response,
                error=turn.error,
                events=turn.events,
                completed_at=turn.completed_at,
                duration_ms=turn.duration_ms,
                cost_usd=turn.cost_usd,
            )
        )

    async def _end_for_shutdown(self, turn: Turn) -> None:
        if turn.done:
            return
        if turn.persist:
            await turn.finish(
                TurnStatus.ERROR, error="server shut down; the message will run again at restart"
            )
            turn.status = TurnStatus.QUEUED  # the record keeps it queued
            await self._store.mark_queued(turn.message_id)
        else:
            await turn.finish(TurnStatus.ERROR, error="server shut down before the turn finished")
            await self._record(turn)

    async def _retire_dead_process(self, state: _Pair) -> None:
        """Reap a process that died mid-turn; the slot stays with the pair for its next turn."""
        process, state.process = state.process, None
        if process is not None:
            await process.stop(force=True, grace_s=1.0)
        if not state.queue:
            state.state = PairState.STOPPED

    async def _fail_queue(self, state: _Pair, exc: IrisError) -> None:
        while state.queue:
            turn = state.queue.popleft()
            await turn.finish(TurnStatus.ERROR, error=exc.message, failure=exc)
            await self._record(turn)
            self._turns.pop(turn.message_id, None)
        if state.process is None:
            state.state = PairState.STOPPED

    async def _cancel_turns(self, state: _Pair, why: str) -> None:
        while state.queue:
            turn = state.queue.popleft()
            turn.cancel_requested = True
            await turn.finish(TurnStatus.CANCELLED, error=why)
            await self._record(turn)
            self._turns.pop(turn.message_id, None)
        if state.current is not None:
            state.current.cancel_requested = True

    async def _stop_process(self, state: _Pair, *, force: bool) -> None:
        process = state.process
        if process is None:
            state.state = PairState.STOPPED
            return
        state.state = PairState.STOPPING
        try:
            await process.stop(force=force, grace_s=self._settings.shutdown_timeout_ms / 1000)
        finally:
            if state.process is process:
                state.process = None
            if not state.busy:
                state.state = PairState.STOPPED
            logger.info("stopped Claude Code process %s of %s", process.pid, state.pair)

    async def _reap_idle(self) -> None:
        """Stop processes idle past their team's idleTimeout, and reap processes that died while idle."""
        while not self._closing:
            timeouts = [t.idle_timeout_ms for t in self._config.teams.values() if t.idle_timeout_ms > 0]
            tick_s = min(max(min(timeouts, default=5000) / 4000, 0.05), 5.0)
            self._activity.clear()
            try:
                async with asyncio.timeout(tick_s):
                    await self._activity.wait()
            except TimeoutError:
                pass
            now = monotonic_ms()
            for state in list(self._pairs.values()):
                if state.state is not PairState.IDLE or state.busy or state.process is None:
                    continue
                idle_ms = state.team.idle_timeout_ms
                if state.process.exited or (idle_ms > 0 and now - state.last_used_mono >= idle_ms):
                    reason = "exited" if state.process.exited else "idle"
                    logger.info("stopping %s process of %s", reason, state.pair)
                    self._spawn(
                        self._stop_process(state, force=state.process.exited), f"idle-stop-{state.pair}"
                    )
