"""Teams: wake, launch, sleep and wake-all a caller's pairs, report their state, list the configured teams."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import Caller
from .clock import monotonic_ms, now_ms
from .config import IrisConfig
from .errors import IrisError
from .jobs import JobQueue
from .pool import ProcessPool
from .process_memory import resident_bytes
from .session_locks import SessionLocks
from .store import Store
from .targets import configured_team, pair_of
from .turns import Pair
from .validation import validate_team_name

__all__ = ["Teams"]

_WAKE_ALL_PARALLELISM = 3
"""Teams TeamWakeAll starts at once when asked for parallel: each start is a Claude Code process."""

Woken = TypeVar("Woken", pb.TeamWakeResponse, pb.TeamLaunchResponse)


class Teams:
    """The caller's view of the configured teams and the processes of its pairs."""

    def __init__(
        self, config: IrisConfig, store: Store, pool: ProcessPool, jobs: JobQueue, locks: SessionLocks
    ) -> None:
        self._config = config
        self._store = store
        self._pool = pool
        self._jobs = jobs
        self._locks = locks

    async def team_wake(self, request: pb.TeamWakeRequest, caller: Caller) -> pb.TeamWakeResponse:
        """Ensure the pair's process is running; reply when it is ready."""
        return await self._wake(caller.team(request.from_team), request.team, pb.TeamWakeResponse)

    async def team_launch(self, request: pb.TeamLaunchRequest, caller: Caller) -> pb.TeamLaunchResponse:
        """TeamWake, named for intent."""
        return await self._wake(caller.team(request.from_team), request.team, pb.TeamLaunchResponse)

    async def _wake(self, from_team: str, name: str, reply: type[Woken]) -> Woken:
        pair = pair_of(from_team, name)
        team = configured_team(self._config, name)
        started = monotonic_ms()
        was_awake = self._pool.view(pair).awake
        async with self._locks.of(pair):  # a wake must not bind a process to a session being replaced
            process = await self._pool.wake(pair, team)
        return reply(
            team=name,
            status="awake",
            pid=process.pid,
            session_id=process.spec.session_id,
            message=f"Team {name} was already awake" if was_awake else f"Team {name} is awake",
            duration=int(monotonic_ms() - started),
            timestamp=now_ms(),
        )

    async def team_sleep(self, request: pb.TeamSleepRequest, caller: Caller) -> pb.TeamSleepResponse:
        """Stop the pair's process (refused while busy unless ``force``); its session is kept."""
        pair = pair_of(caller.team(request.from_team), request.team)
        configured_team(self._config, request.team)
        started = monotonic_ms()
        stopped = await self._pool.sleep(pair, force=request.force)
        name = request.team
        return pb.TeamSleepResponse(
            team=name,
            status="asleep" if stopped else "already_asleep",
            message=f"Team {name} has been put to sleep" if stopped else f"Team {name} was already asleep",
            duration=int(monotonic_ms() - started),
            timestamp=now_ms(),
        )

    async def team_wake_all(self, request: pb.TeamWakeAllRequest, caller: Caller) -> pb.TeamWakeAllResponse:
        """Wake every configured team for the caller: sequentially, or at most three at a time."""
        from_team = caller.team(request.from_team)
        validate_team_name(from_team, field="fromTeam")
        started = monotonic_ms()
        gate = asyncio.Semaphore(_WAKE_ALL_PARALLELISM if request.parallel else 1)

        async def wake_one(name: str) -> pb.WakeResult:
            async with gate:
                try:
                    woke = await self._wake(from_team, name, pb.TeamWakeResponse)
                except IrisError as exc:
                    return pb.WakeResult(
                        team=name, success=False, status="failed", message=exc.message, error=exc.reason
                    )
                return pb.WakeResult(
                    team=name,
                    success=True,
                    status="awake",
                    pid=woke.pid,
                    session_id=woke.session_id,
                    message=woke.message,
                )

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(wake_one(name)) for name in self._config.teams]
        results = [t.result() for t in tasks]
        ok = sum(1 for r in results if r.success)
        return pb.TeamWakeAllResponse(
            results=results,
            total_teams=len(results),
            success_count=ok,
            failure_count=len(results) - ok,
            duration=int(monotonic_ms() - started),
            timestamp=now_ms(),
        )

    async def team_status(self, request: pb.TeamStatusRequest, caller: Caller) -> pb.TeamStatusResponse:
        """Describe the caller's pair with one team, or with every team."""
        from_team = caller.team(request.from_team)
        validate_team_name(from_team, field="fromTeam")
        named = request.team if request.HasField("team") else None
        with_queues = request.include_notifications if request.HasField("include_notifications") else True
        if named is not None:
            validate_team_name(named)
            configured_team(self._config, named)
        names = [named] if named is not None else list(self._config.teams)
        sessions = {s.to_team: s for s in await self._store.list_sessions(from_team)}
        entries = []
        for name in names:
            view = self._pool.view(Pair(from_team, name))
            session = sessions.get(name)
            entry = pb.TeamStatusEntry(
                name=name,
                awake=view.awake,
                state=view.state.value,
                pid=view.pid,
                session_id=session.session_id if session else "",
                message_count=session.message_count if session else 0,
                last_used=view.last_used_ms or (session.last_used_at if session else 0),
                memory_bytes=resident_bytes(view.pid) if view.pid else 0,
            )
            if with_queues:
                pending = view.pending + self._jobs.waiting_for(view.pair)  # its jobs not yet handed out too
                entry.notifications.CopyFrom(pb.QueueStats(pending=pending, running=view.running))
            entries.append(entry)
        reply = pb.TeamStatusResponse(teams=entries, timestamp=now_ms())
        if named is not None:
            reply.team = named
            reply.awake = entries[0].awake
        return reply

    async def list_teams(self, request: pb.ListTeamsRequest, caller: Caller) -> pb.ListTeamsResponse:
        """List the configured teams with their settings."""
        del request, caller
        teams = [
            pb.TeamInfo(
                name=t.name,
                path=str(t.path),
                description=t.description or "",
                color=t.color or "",
                idle_timeout=t.idle_timeout_ms,
                session_mcp_enabled=t.session_mcp_enabled,
                grant_permission=t.grant_permission.value,
                remote=f"ssh {t.remote.destination}" if t.remote is not None else "",
            )
            for t in self._config.teams.values()
        ]
        return pb.ListTeamsResponse(teams=teams, total_teams=len(teams), timestamp=now_ms())
