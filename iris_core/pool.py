"""The pool of Claude Code processes: one per (caller, team) pair, one turn at a time each.

Rules it keeps:

- A pair's turns run in arrival order; turns behind a busy pair wait in a bounded FIFO (full: refused).
- At most ``settings.maxProcesses`` processes are alive or starting (``slots.ProcessSlots`` keeps that).
  When every slot is busy a new message is refused with ProcessPoolLimitError before anything is recorded; a
  turn that was already accepted waits for a slot instead.
- A process idle for its team's ``idleTimeout`` is stopped; the session stays for the next wake.
- A process that dies mid-turn fails that turn at once with ProcessError; the pair's next turn starts a new
  process that resumes the same Claude session.
- Turns have a deadline (``settings.turnTimeout``): a turn past it ends as an error and its process is
  replaced, so no caller waits forever on a stuck process.

A pair's state is derived, never stored: from its process phase (``pairs.Phase``) and its turns. Every task
(drivers, starts, stops, record writes, the idle reaper) belongs to the pool's TaskGroup, which one task
(``_serve``) enters and exits; ``aclose`` asks it to end the turns, stop and reap every process, and waits.
Admission (``admit``) is checked once per message, before anything is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Self, TypeVar

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .budgets import check_budgets
from .clock import monotonic_ms, now_ms
from .config import IrisConfig, TeamConfig
from .errors import (
    BudgetExceededError,
    IrisError,
    PreconditionFailedError,
    ProcessError,
    ProcessPoolLimitError,
    TooManyRequestsError,
)
from .events import EventLog
from .metrics import IrisMetrics
from .pairs import PairRuntime, PairState, PairView
from .permissions import PermissionBroker
from .placement import Launcher, TeamProcess
from .session_mcp import SessionMcp
from .slots import ProcessSlots
from .store import Store
from .tracing import model_time, traced_launcher, turn_span_current
from .turn_runner import TurnRunner
from .turns import Pair, Turn, TurnStatus
from .usage import CostLedger
from .wait_cycles import wait_cycle

__all__ = ["Launcher", "PairState", "PairView", "ProcessPool"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ProcessPool:
    """Owns every Claude Code process and the order of every pair's turns.

    Use as an async context manager (or ``start``/``aclose`` from one task): the pool's TaskGroup owns the
    drivers, the stops and the idle reaper.
    """

    def __init__(
        self,
        config: IrisConfig,
        store: Store,
        broker: PermissionBroker,
        launcher: Launcher,
        *,
        extra_env: Mapping[str, str] | None = None,
        session_mcp: SessionMcp | None = None,
        events: EventLog | None = None,
        ledger: CostLedger | None = None,
        on_budget_refused: Callable[[str, str], None] | None = None,
        metrics: IrisMetrics | None = None,
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._on_budget_refused = on_budget_refused
        self._events = events
        self._metrics = metrics
        self._settings = config.settings
        self._store = store
        self._pairs: dict[Pair, PairRuntime] = {}
        self._turns: dict[str, Turn] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._main: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._close_requested = asyncio.Event()
        self._closing = False
        self._reaper_wake = asyncio.Event()
        self._slots = ProcessSlots(
            config,
            store,
            broker,
            traced_launcher(launcher),
            self._pairs,
            self,
            extra_env=extra_env,
            session_mcp=session_mcp,
            events=events,
            metrics=metrics,
        )
        store.session_ids = self._slots.spares
        self._runner = TurnRunner(
            store,
            self._settings,
            retire=self._slots.retire,
            is_closing=lambda: self._closing,
            owned=self.owned,
            on_started=events.turn_started if events is not None else None,
            on_recorded=ledger.add if ledger is not None else None,
            metrics=metrics,
        )

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pool's owner task (its TaskGroup and the idle reaper); return once it runs."""
        if self._main is None:
            self._main = asyncio.create_task(self._serve(), name="iris-pool")
        started = asyncio.ensure_future(self._started.wait())
        try:
            await asyncio.wait({started, self._main}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
            await asyncio.wait({started})
        if self._main.done():
            await self._main  # raises what stopped it
            raise ProcessPoolLimitError("Iris is shutting down")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop accepting turns, end the active ones, stop and reap every process. Idempotent.

        Turns sent with ``persist`` that had not finished stay queued in the record and run again at the
        next start; other unfinished turns end with status error ("server shut down"). The close runs in the
        pool's owner task, so a caller cancelled half-way does not leave it half-done.
        """
        self._close_requested.set()
        if self._main is not None:
            await asyncio.shield(self._main)

    async def _serve(self) -> None:
        """Own the TaskGroup: enter it, run until a close is asked for, close, and exit it, in one task."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._started.set()
                tg.create_task(self._reap_idle(), name="iris-idle-reaper")
                self._slots.spares.refill()
                await self._close_requested.wait()
                await self._close()
                # Leaving the group waits for drivers, starts, stops and record writes to end.
        finally:
            self._tg = None
            await self._slots.stop_all()  # a process whose start ended as the group closed (stopped inline)

    async def _close(self) -> None:
        self._closing = True
        self._reaper_wake.set()
        await self._slots.notify_room_changed()
        for state in list(self._pairs.values()):
            queued = self._take_queue(state)
            await self._runner.end_unrun(
                queued, TurnStatus.ERROR, "server shut down before the turn finished"
            )
            if state.current is not None:
                await self._runner.end_for_shutdown(state.current)
        await self._slots.stop_all()

    # --- queries ---------------------------------------------------------------------------------------

    def view(self, pair: Pair) -> PairView:
        """Return a snapshot of one pair (stopped if it never ran)."""
        state = self._pairs.get(pair)
        if state is None:
            return PairView(pair, PairState.STOPPED, 0, 0, 0, 0)
        shown = state.state
        pid = state.process.pid if state.process is not None and shown is not PairState.STOPPED else 0
        running = 1 if state.current is not None and not state.current.done else 0
        return PairView(pair, shown, pid, len(state.queue), running, state.last_used_ms)

    def wait_cycle(self, pair: Pair) -> list[str] | None:
        """Return the cycle of teams a new turn of ``pair`` would wait on, if it would queue behind one."""
        state = self._pairs.get(pair)
        if state is None or not state.busy:
            return None  # it would run at once, behind nothing
        return wait_cycle(pair, (turn.pair for turn in self._turns.values() if not turn.done))

    def live_turns(self) -> Mapping[str, Turn]:
        """Return a snapshot of the turns whose final record is not written yet, by message id.

        Take it before reading rows: a turn forgotten after the snapshot had its row written before, so every
        row read afterwards is either final or has its turn in the snapshot.
        """
        return dict(self._turns)

    @property
    def process_count(self) -> int:
        """Slots in use: processes starting, alive, or not yet reaped."""
        return self._slots.process_count

    def queued_turns(self) -> int:
        """Return how many turns wait on their pairs (behind a running one, or for a process)."""
        return sum(len(state.queue) for state in self._pairs.values())

    def census(self) -> tuple[int, int, frozenset[Pair]]:
        """Return (slots in use, processes running a turn, pairs with a live process)."""
        return self._slots.census()

    def claude_env(self, team: TeamConfig) -> dict[str, str]:
        """Return the environment Iris adds for the team's Claude processes (over the server's own)."""
        return self._slots.claude_env(team)

    # --- turns -----------------------------------------------------------------------------------------

    def admit(self, pair: Pair) -> None:
        """Refuse, before anything is recorded, a turn that cannot be queued.

        A turn that finds every process slot busy is accepted all the same: it waits for one in the fair line
        (``slots.ProcessSlots``), up to ``settings.admissionTimeout``.

        Raises:
            TooManyRequestsError: the pair's queue is full.
            ProcessPoolLimitError: the pool is shutting down.

        """
        self.check_open()
        state = self._pairs.get(pair)
        if state is not None and len(state.queue) >= self._settings.max_queued_messages:
            if self._metrics is not None:
                self._metrics.rate_limited("pair_queue")
            raise TooManyRequestsError(
                f"{pair} already has {len(state.queue)} messages waiting; try again later",
                details={"queued": len(state.queue), "limit": self._settings.max_queued_messages},
            )

    async def submit(self, turn: Turn, team: TeamConfig) -> None:
        """Record an admitted turn, queue it and publish its ``start`` event (``admit`` was checked first).

        Once the record is written the turn is accepted; callers run this as one owned step (``owned``), so
        a caller cancelled meanwhile cannot split the write from the queueing.
        """
        state = self._pair(turn.pair, team)
        await self.record(turn)
        await self._enqueue(state, turn)

    async def record(self, turn: Turn) -> None:
        """Record an accepted turn as queued (a job's, which waits in the job queue before its pair's)."""
        await self._store.add_turn(
            message_id=turn.message_id,
            session_id=turn.session_id,
            from_team=turn.pair.from_team,
            to_team=turn.pair.to_team,
            request=turn.request,
            created_at=turn.created_at,
            persist=turn.persist,
            expires_at=turn.expires_at,
            context=turn.context,
            job=turn.job,
        )

    async def end_unrun(self, turns: list[Turn], status: TurnStatus, why: str) -> None:
        """End turns that never reached a pair (jobs still in the job queue) and record how they ended."""
        await self._runner.end_unrun(turns, status, why)

    async def resubmit(self, turn: Turn, team: TeamConfig) -> None:
        """Queue a turn that is already recorded (a persisted turn left unfinished by the last run)."""
        self.check_open()
        await self._store.mark_queued(turn.message_id)
        await self._enqueue(self._pair(turn.pair, team), turn)

    def _observe(self, turn: Turn, event: pb.TellResponse) -> None:
        """Hear every event a turn publishes.

        The event log takes them all; the cost ledger notes the end before the turn's waiters wake, so a
        GetUsage or a budget check right after sees its cost.
        """
        if self._events is not None:
            self._events.turn_event(turn, event)
        if self._ledger is not None and event.HasField("complete"):
            self._ledger.note(turn)

    async def _enqueue(self, state: PairRuntime, turn: Turn) -> None:
        if self._events is not None or self._ledger is not None:
            turn.observer = self._observe
        state.queue.append(turn)
        self._turns[turn.message_id] = turn
        await turn.publish_start()
        logger.debug(
            "turn %s of %s accepted (%d in the pair's queue, itself included)",
            turn.message_id,
            turn.pair,
            len(state.queue),
            extra={
                "message_id": turn.message_id,
                "team": turn.pair.to_team,
                "from_team": turn.pair.from_team,
            },
        )
        if state.driver is None or state.driver.done():
            state.driver = self.spawn(self._drive(state), f"drive-{state.pair}")

    async def owned(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` to its end as a task of the pool, even if the caller is cancelled meanwhile.

        The task belongs to the pool's TaskGroup, so a shutdown waits for it; the caller's cancellation
        only stops the caller's wait. What ``work`` raises is raised here, to the caller.

        Raises:
            ProcessPoolLimitError: the pool is shutting down.

        """
        failed: list[Exception] = []

        async def capture() -> None:
            try:
                await work
            except Exception as exc:  # noqa: BLE001 - handed to the caller below, not to the TaskGroup
                failed.append(exc)

        await asyncio.shield(self.spawn(capture(), name))
        if failed:
            raise failed[0]

    async def cancel(self, pair: Pair) -> tuple[Turn | None, list[Turn]]:
        """Cancel everything the pair was asked to do: its running turn (the SDK's interrupt) and its queue.

        A cancel counts from the moment a turn is accepted: queued turns, and a turn waiting for its process
        to start, end as cancelled at once and never reach Claude. The running turn ends as cancelled when
        Claude Code answers the interrupt (a turn whose prompt has not reached Claude yet is interrupted as
        soon as it does); the process stays for the next turn.

        Returns:
            The running turn, if one was interrupted, and the queued turns that were cancelled.

        Raises:
            ProcessError: the interrupt could not be delivered (the process is gone).

        """
        state = self._pairs.get(pair)
        if state is None:
            return None, []
        queued = self._take_queue(state)
        await self._runner.end_unrun(queued, TurnStatus.CANCELLED, "cancelled before it ran")
        turn = state.current
        if turn is None or turn.done:
            return None, queued
        turn.cancel_requested = True
        if turn.sent and state.process is not None:
            await state.process.interrupt()
        return turn, queued

    async def cancel_one(self, turn: Turn) -> None:
        """Cancel one live turn: off its pair's queue if it has not run (it never will), else interrupted.

        Raises:
            ProcessError: the interrupt could not be delivered (the process is gone).

        """
        state = self._pairs.get(turn.pair)
        if state is None or turn.done:
            return
        if turn in state.queue:
            state.queue.remove(turn)
            self._turns.pop(turn.message_id, None)
            await self._runner.end_unrun([turn], TurnStatus.CANCELLED, "cancelled before it ran")
        elif state.current is turn:
            turn.cancel_requested = True
            if turn.sent and state.process is not None:
                await state.process.interrupt()

    # --- processes -------------------------------------------------------------------------------------

    async def wake(self, pair: Pair, team: TeamConfig) -> TeamProcess:
        """Ensure the pair's process is running and ready; return it.

        The start runs as a task of the pool, so a shutdown waits for it (and stops what it started) and a
        caller that goes away does not abandon a half-started child.

        Raises:
            ProcessPoolLimitError: no slot is free and no idle process can be evicted.
            ProcessError: the process failed to start.

        """
        self.admit(pair)
        state = self._pair(pair, team)

        async def start() -> TeamProcess | IrisError:
            try:
                process = await self._slots.ensure(state, wait_for_slot=False)
            except IrisError as exc:
                return exc
            assert process is not None
            return process

        outcome = await asyncio.shield(self.spawn(start(), f"wake-{pair}"))
        await self._slots.notify_room_changed()  # the pair is idle now: evictable for a pair waiting for room
        if outcome is None:
            raise ProcessError("Internal error while starting the process")
        if isinstance(outcome, IrisError):
            raise outcome
        return outcome

    async def sleep(self, pair: Pair, *, force: bool) -> bool:
        """Stop the pair's process; return False if it was not running.

        Raises:
            PreconditionFailedError: the pair is busy and ``force`` is false.

        """
        state = self._pairs.get(pair)
        if state is None or not (state.live or state.starting):
            return False
        self._refuse_if_busy(state, force)
        async with state.lifecycle:  # waits for a start in flight
            if not state.live:
                return False
            self._refuse_if_busy(state, force)  # a turn may have been queued while we waited
            await self._cancel_turns(state, "the team was put to sleep")
            await self._slots.stop_now(state, force=force)
        return True

    @staticmethod
    def _refuse_if_busy(state: PairRuntime, force: bool) -> None:
        if state.busy and not force:
            raise PreconditionFailedError(
                f"{state.pair} is busy with a turn; pass force to stop it anyway",
                details={"queued": len(state.queue)},
            )

    async def discard(self, pair: Pair) -> bool:
        """Cancel the pair's turns and stop its process, waiting for a start in flight (reboot, delete).

        Returns:
            True if a process was running.

        """
        self._slots.spares.forsake(pair)  # a spare promised to the removed session goes too
        state = self._pairs.get(pair)
        if state is None:
            return False
        async with state.lifecycle:
            had_process = state.live
            await self._cancel_turns(state, "the session was removed")
            await self._slots.stop_now(state, force=state.current is not None and not state.current.done)
        return had_process

    def _take_queue(self, state: PairRuntime) -> list[Turn]:
        """Take every queued turn off the pair's queue (they will not run); they leave the live index."""
        taken = list(state.queue)
        state.queue.clear()
        for turn in taken:
            self._turns.pop(turn.message_id, None)
        return taken

    async def _cancel_turns(self, state: PairRuntime, why: str) -> None:
        """Cancel the pair's queued turns and mark its running one for cancellation."""
        await self._runner.end_unrun(self._take_queue(state), TurnStatus.CANCELLED, why)
        if state.current is not None and not state.current.done:
            state.current.cancel_requested = True

    # --- internals: processes --------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once a shutdown has begun."""
        return self._closing

    @property
    def accepting_tasks(self) -> bool:
        """True while new tasks may join the pool's TaskGroup."""
        return self._tg is not None

    def check_open(self) -> None:
        """Refuse work once the pool is shutting down.

        Raises:
            ProcessPoolLimitError: the pool is closing or closed.

        """
        if self._closing or self._tg is None:
            raise ProcessPoolLimitError("Iris is shutting down")

    def _pair(self, pair: Pair, team: TeamConfig) -> PairRuntime:
        state = self._pairs.get(pair)
        if state is None:
            state = self._pairs[pair] = PairRuntime(pair, team)
        return state

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T | None]:
        """Run ``coro`` as a task of the pool; an exception is logged, never raised into the TaskGroup.

        One failing task must not cancel its siblings (and the server) through the TaskGroup, so the task's
        top catches everything but cancellation; callers that need an outcome return it as a value.
        """
        if self._tg is None:
            coro.close()
            raise ProcessPoolLimitError("Iris is shutting down")

        async def guarded() -> T | None:
            try:
                return await coro
            except Exception as exc:  # noqa: BLE001 - the task's top: logged, the pool goes on
                logger.error("task %s failed", name, exc_info=exc)
                return None

        top = guarded()
        try:
            return self._tg.create_task(top, name=name)
        except RuntimeError as exc:  # the group is finished or aborting: nothing new may start
            top.close()
            coro.close()
            raise ProcessPoolLimitError("Iris is shutting down") from exc

    # --- internals: turns ------------------------------------------------------------------------------

    async def _drive(self, state: PairRuntime) -> None:
        """Run the pair's queued turns in order, starting (or restarting) its process as needed.

        The loop re-checks the queue with no await before it ends, so a turn queued meanwhile is never left
        behind a driver that is finishing.
        """
        while state.queue and not self._closing:
            try:
                with turn_span_current(state.queue[0]):  # the driver outlives turns: each gets its own trace
                    await self._next_turn(state)
            except IrisError as exc:
                await self._runner.end_unrun(
                    self._take_queue(state), TurnStatus.ERROR, exc.message, failure=exc
                )
            except Exception as exc:  # noqa: BLE001 - fail this pair's queued turns, keep the pool alive
                logger.error("driver of %s failed", state.pair, exc_info=exc)
                failure = ProcessError("Internal error while starting the turn")
                await self._runner.end_unrun(
                    self._take_queue(state), TurnStatus.ERROR, failure.message, failure=failure
                )

    async def _next_turn(self, state: PairRuntime) -> None:
        if state.queue and await self._refused_for_budget(state.queue[0]):
            turn = state.queue.popleft()
            await self._runner.record(turn)
            self._turns.pop(turn.message_id, None)
            return
        process = await self._slots.ensure(state, wait_for_slot=True, only_if_queued=True)
        if process is None or not state.queue:
            return
        turn = state.queue[0]
        if process.spec.session_id != turn.session_id:  # the session was replaced: never mix conversations
            await self._slots.retire(process)
            return
        if turn.rewind_prompts and process.spec.rewound_for != turn.message_id:
            # A process started before the cut-off turn could rewind its session: start one that does.
            await self._slots.retire(process)
            return
        state.current = state.queue.popleft()
        again = False
        try:
            with model_time(turn, process):
                again = await self._runner.run(process, turn)
        except Exception as exc:  # noqa: BLE001 - the turn's top: it fails, its process is replaced
            logger.error("turn %s of %s failed", turn.message_id, state.pair, exc_info=exc)
            failure = ProcessError("Internal error while running the turn")
            if not turn.done:
                await turn.end(TurnStatus.ERROR, error=failure.message, failure=failure)
            await self._slots.retire(process)
        finally:
            state.last_used_mono = monotonic_ms()
            state.last_used_ms = now_ms()
            state.current = None
            if again:  # its process was dead before it began: first in line for the next process
                state.queue.appendleft(turn)
            else:
                await self._runner.record(turn)
                self._turns.pop(turn.message_id, None)  # after the record: reports overlay it until then
            self._reaper_wake.set()
            await self._slots.notify_room_changed()  # an idle process may now be evicted for a waiting pair

    async def _refused_for_budget(self, turn: Turn) -> bool:
        """End a turn whose budget was used up while it waited (it never starts); True if it was."""
        if not turn.budgets or self._ledger is None or turn.done:
            return False
        try:
            await check_budgets(self._ledger.spent, turn.budgets, self._on_budget_refused)
        except BudgetExceededError as refusal:
            await turn.end(TurnStatus.ERROR, error=refusal.message, failure=refusal)
            return True
        return False

    async def _reap_idle(self) -> None:
        """Stop processes idle past their team's idleTimeout; reap processes that died while idle."""
        timeouts = [t.idle_timeout_ms for t in self._config.teams.values() if t.idle_timeout_ms > 0]
        tick_s = min(max(min(timeouts, default=5000) / 4000, 0.05), 5.0)
        while not self._closing:
            self._reaper_wake.clear()
            try:
                async with asyncio.timeout(tick_s):
                    await self._reaper_wake.wait()
            except TimeoutError:
                pass
            try:
                self._slots.reap_once()
            except Exception as exc:  # noqa: BLE001 - top of a task: the reaper must outlive one bad pass
                logger.error("idle reaper pass failed", exc_info=exc)
