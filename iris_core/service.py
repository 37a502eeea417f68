"""The Iris service: every tool of the seeds as one async method, on the pool, the store and the config.

Transports call these methods and translate; they decide nothing. Inputs are validated here, before anything
changes. Results are plain dicts shaped like the contract's JSON (camelCase, the seeds' outputs), so each
transport turns them into its own message without a second hand-written schema.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Self

from . import info, reports
from .audit import AuditLog
from .claude_process import ClaudeProcess, LaunchSpec, launch_claude
from .clock import monotonic_ms, now_ms
from .config import IrisConfig, TeamConfig
from .errors import (
    IrisError,
    PreconditionFailedError,
    SessionNotFoundError,
    TeamNotFoundError,
    ValidationError,
)
from .fork import run_spawn_script
from .key_admin import KeyAdmin
from .keys import KeyStore
from .logs import LogRing
from .permissions import PermissionBroker, policy_decision
from .pool import Launcher, ProcessPool
from .session_mcp import SessionMcp
from .store import SessionRow, Store
from .transcripts import remove_transcripts
from .turns import Pair, Turn, TurnStatus
from .validation import validate_message, validate_team_name, validate_timeout, validate_ttl_days

__all__ = ["IrisService"]

logger = logging.getLogger(__name__)

try:
    _VERSION = importlib.metadata.version("iris")
except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "0.0.0"

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_TTL_DAYS = 30
_WAKE_ALL_PARALLELISM = 3

Result = dict[str, Any]


class IrisService:
    """What Iris does, independent of how it is reached. Create with ``IrisService.open``."""

    def __init__(
        self,
        config: IrisConfig,
        home: Path,
        store: Store,
        pool: ProcessPool,
        broker: PermissionBroker,
        logs: LogRing,
        extra_env: Mapping[str, str],
        keys: KeyStore,
        audit: AuditLog,
        session_mcp: SessionMcp | None = None,
    ) -> None:
        self.config = config
        self.home = home
        self.keys = keys
        """API keys (keys.db); the transports' authentication reads it."""
        self.session_mcp = session_mcp if session_mcp is not None else SessionMcp(keys)
        """The Iris MCP tools of ``sessionMcpEnabled`` teams. The transport sets ``session_mcp.endpoint``
        once it knows where the MCP adapter is served; until then no team's Claude gets the tools."""
        self.audit = audit
        """The audit log (audit.db); the transports write calls and refusals to it."""
        self.key_admin = KeyAdmin(keys, audit)
        """Key management with its audit trail (the admin RPCs)."""
        self._store = store
        self._pool = pool
        self._broker = broker
        self._logs = logs
        self._extra_env = dict(extra_env)
        self._exit = AsyncExitStack()
        self._session_locks: dict[Pair, asyncio.Lock] = {}
        self._started_mono = monotonic_ms()

    @classmethod
    async def open(
        cls,
        config: IrisConfig,
        home: Path,
        *,
        logs: LogRing | None = None,
        extra_env: Mapping[str, str] | None = None,
        launcher: Launcher | None = None,
    ) -> Self:
        """Open the record, start the pool, and re-queue persisted turns a previous run left unfinished.

        Args:
            config: the validated configuration.
            home: ``$IRIS_HOME``; the database lives at ``home/iris.db``.
            logs: the ring GetLogs reads (a private one if None).
            extra_env: environment added to every Claude process (e.g. the offline model's).
            launcher: how processes start (default: a local Claude Code child).

        """
        extra = dict(extra_env or {})
        store = Store(home / "iris.db")
        broker = PermissionBroker(config.settings.permission_timeout_ms / 1000)

        async def launch(spec: LaunchSpec, timeout_s: float) -> ClaudeProcess:
            return await launch_claude(spec, timeout_s=timeout_s)

        keys, audit = KeyStore(home / "keys.db"), AuditLog(home / "audit.db")
        session_mcp = SessionMcp(keys)
        pool = ProcessPool(
            config, store, broker, launcher or launch, extra_env=extra, session_mcp=session_mcp
        )
        service = cls(config, home, store, pool, broker, logs or LogRing(), extra, keys, audit, session_mcp)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(keys)
            await stack.enter_async_context(audit)
            await stack.enter_async_context(store)
            await stack.enter_async_context(pool)
            await service._recover()
            service._exit = stack.pop_all()
        return service

    async def aclose(self) -> None:
        """Stop every process (reaped) and close the record. Idempotent."""
        await self._exit.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- messages --------------------------------------------------------------------------------------

    async def send_message(
        self,
        *,
        from_team: str,
        to_team: str,
        message: str,
        timeout_ms: int | None = None,
        persist: bool = False,
        ttl_days: int | None = None,
    ) -> Result:
        """Send a message and wait per ``timeout_ms`` (seeds' send_message / ask_message).

        > 0 waits that long, then replies status "timeout" with the partial response while the turn goes on;
        0 waits until the turn ends; -1 replies at once with status "async".

        Raises:
            ValidationError, TeamNotFoundError, TooManyRequestsError, ProcessPoolLimitError: raised before
                anything is recorded.
            ProcessError: a waiting caller's turn failed because its process died or could not start.

        """
        timeout = DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms
        validate_timeout(timeout)
        validate_ttl_days(ttl_days)
        turn = await self._accept(from_team, to_team, message, persist=persist, ttl_days=ttl_days)
        if timeout == -1:
            return self._outcome(turn, status="async")
        finished = await turn.wait(None if timeout == 0 else timeout / 1000)
        if not finished:
            return self._outcome(turn, status="timeout")
        if turn.failure is not None:
            raise turn.failure
        return self._outcome(turn, status=turn.status.value)

    async def quick_message(self, *, from_team: str, to_team: str, message: str) -> Result:
        """Queue a message and reply at once with status "async" (seeds' quick_message)."""
        turn = await self._accept(from_team, to_team, message)
        return {
            "fromTeam": from_team,
            "toTeam": to_team,
            "message": message,
            "status": "async",
            "messageId": turn.message_id,
            "sessionId": turn.session_id,
            "timestamp": now_ms(),
        }

    async def tell(
        self,
        *,
        from_team: str,
        to_team: str,
        message: str,
        timeout_ms: int | None = None,
        persist: bool = False,
        ttl_days: int | None = None,
    ) -> AsyncIterator[Result]:
        """Accept a message and return its events as they happen: start, chunks, tool uses, complete.

        The turn is accepted before this returns, so an invalid request fails here, not mid-stream. A reader
        that stops early does not stop the turn (use SessionCancel for that); the turn still lands in the
        record. ``timeout_ms`` bounds the stream as it bounds send_message's wait: when it runs out first,
        the stream ends with a ``complete`` of status "timeout" (-1: "async") while the turn goes on.
        """
        timeout = 0 if timeout_ms is None else timeout_ms
        validate_timeout(timeout)
        validate_ttl_days(ttl_days)
        turn = await self._accept(from_team, to_team, message, persist=persist, ttl_days=ttl_days)
        return self._follow_until(turn, timeout)

    async def _follow_until(self, turn: Turn, timeout_ms: int) -> AsyncIterator[Result]:
        """Yield the turn's events until it ends, or ``timeout_ms`` passes (0: no limit; -1: after ``start``).

        A turn that ended in an Iris failure (its process died, it ran past turnTimeout) raises that error
        after its ``complete`` event, as send_message does, so a reader can tell it from an answer.
        """
        events = turn.follow()
        try:
            if timeout_ms == -1:
                yield await anext(events)  # the start event, published when the turn was accepted
                yield {"complete": self._stream_end(turn, "async")}
                return
            # The deadline covers the waits, never a yield: a cancel scope around a yield would fire in
            # whatever the reader is doing at the time.
            deadline = None if timeout_ms == 0 else asyncio.get_running_loop().time() + timeout_ms / 1000
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(events)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    yield {"complete": self._stream_end(turn, "timeout")}
                    return
                yield event
        finally:
            await events.aclose()
        if turn.failure is not None:
            raise turn.failure

    @staticmethod
    def _stream_end(turn: Turn, status: str) -> Result:
        """Return the last event of a stream that ends before its turn does: the answer so far and why."""
        return {
            "messageId": turn.message_id,
            "response": turn.response,
            "status": status,
            "duration": turn.duration_ms,
            "costUsd": 0.0,
            "sessionId": turn.session_id,
            "error": "",
            "timestamp": now_ms(),
        }

    async def _accept(
        self,
        from_team: str,
        to_team: str,
        message: str,
        *,
        persist: bool = False,
        ttl_days: int | None = None,
    ) -> Turn:
        validate_team_name(from_team, field="fromTeam")
        validate_team_name(to_team, field="toTeam")
        validate_message(message)
        team = self._team(to_team)
        pair = Pair(from_team, to_team)
        self._pool.check_room(pair)  # a message that will be refused must not create a session
        cycle = self._pool.wait_cycle(pair)
        if cycle is not None:
            raise PreconditionFailedError(
                f"{pair} is busy with a turn that is itself waiting on {pair.from_team} "
                f"({' -> '.join(cycle)}), so this message would wait on itself; answer without it",
                details={"cycle": " -> ".join(cycle)},
            )
        expires = (ttl_days or DEFAULT_TTL_DAYS) * 86_400_000 if persist else 0
        # Shielded with the lock inside: a caller that goes away mid-accept cannot let a reboot slip between
        # the session read and the record write.
        return await asyncio.shield(
            self._accept_locked(pair, team, message, persist=persist, expires_in=expires)
        )

    async def _accept_locked(
        self, pair: Pair, team: TeamConfig, message: str, *, persist: bool, expires_in: int
    ) -> Turn:
        async with self._session_lock(pair):
            session_id = await self._store.session_id_for(pair.from_team, pair.to_team)
            created = now_ms()
            turn = Turn(
                message_id=f"msg_{uuid.uuid4().hex}",
                pair=pair,
                session_id=session_id,
                request=message,
                created_at=created,
                persist=persist,
                expires_at=created + expires_in if persist else 0,
            )
            await self._pool.submit(turn, team)
        return turn

    def _session_lock(self, pair: Pair) -> asyncio.Lock:
        """Serialize what reads or replaces a pair's session: accepting a turn, reboot, delete."""
        return self._session_locks.setdefault(pair, asyncio.Lock())

    @staticmethod
    def _outcome(turn: Turn, *, status: str) -> Result:
        return {
            "fromTeam": turn.pair.from_team,
            "toTeam": turn.pair.to_team,
            "message": turn.request,
            "response": turn.response,
            "status": status,
            "messageId": turn.message_id,
            "sessionId": turn.session_id,
            "duration": turn.duration_ms,
            "costUsd": turn.cost_usd,
            "error": turn.error if status == "error" else "",
            "timestamp": now_ms(),
        }

    async def _recover(self) -> None:
        """Re-queue persisted turns left unfinished by the previous run; close the others as errors."""
        for row in await self._store.unfinished_turns():
            team = self.config.teams.get(row.to_team)
            if row.persist and team is not None and row.expires_at > now_ms():
                turn = Turn(
                    message_id=row.message_id,
                    pair=Pair(row.from_team, row.to_team),
                    session_id=row.session_id,
                    request=row.request,
                    created_at=row.created_at,
                    persist=True,
                    expires_at=row.expires_at,
                )
                try:
                    await self._pool.resubmit(turn, team)
                    logger.info("re-queued persisted message %s for %s", row.message_id, turn.pair)
                    continue
                except IrisError as exc:
                    logger.warning("could not re-queue %s: %s", row.message_id, exc.message)
            await self._store.finish_turn(
                row.message_id,
                status=TurnStatus.ERROR.value,
                response=row.response,
                error="the server stopped before the turn finished",
                events=row.events,
                started_at=row.started_at,
                completed_at=now_ms(),
                duration_ms=max(now_ms() - row.created_at, 0),
                cost_usd=row.cost_usd,
            )

    # --- sessions --------------------------------------------------------------------------------------

    async def session_cancel(self, *, team: str, from_team: str) -> Result:
        """Interrupt the pair's running turn for real; wait (bounded) until it has ended."""
        pair = self._pair(from_team, team)
        self._team(team)
        turn = await self._pool.interrupt(pair)
        if turn is None:
            return {
                "team": team,
                "cancelled": False,
                "message": f"No turn is running for {pair}",
                "timestamp": now_ms(),
            }
        ended = await turn.wait(5.0)
        return {
            "team": team,
            "cancelled": True,
            "message": "Turn interrupted" if ended else "Interrupt sent; the turn is still ending",
            "messageId": turn.message_id,
            "timestamp": now_ms(),
        }

    async def session_reboot(self, *, to_team: str, from_team: str) -> Result:
        """Stop the pair's process, delete its session and transcript, start a fresh session and wake it."""
        pair = self._pair(from_team, to_team)
        team = self._team(to_team)
        async with self._session_lock(pair):
            old, terminated = await self._remove_session(pair, team)
            new = await self._store.get_or_create_session(from_team, to_team)
            woke = ""
            try:
                await self._pool.wake(pair, team)
            except IrisError as exc:
                woke = f" The team will start on the next message ({exc.message})."
        old_text = f"Old session {old.session_id} terminated and removed." if old else "There was no session."
        return {
            "fromTeam": from_team,
            "toTeam": to_team,
            "hadPreviousSession": old is not None,
            "oldSessionId": old.session_id if old else "",
            "newSessionId": new.session_id,
            "processTerminated": terminated,
            "message": f"Fresh new session {new.session_id} created. {old_text}{woke}",
            "timestamp": now_ms(),
        }

    async def session_delete(self, *, to_team: str, from_team: str) -> Result:
        """Stop the pair's process and delete its session and transcript, with no replacement."""
        pair = self._pair(from_team, to_team)
        team = self._team(to_team)
        async with self._session_lock(pair):
            old, terminated = await self._remove_session(pair, team)
        return {
            "fromTeam": from_team,
            "toTeam": to_team,
            "hadSession": old is not None,
            "sessionId": old.session_id if old else "",
            "processTerminated": terminated,
            "message": f"Session {old.session_id} deleted" if old else f"{pair} had no session",
            "timestamp": now_ms(),
        }

    async def _remove_session(self, pair: Pair, team: TeamConfig) -> tuple[SessionRow | None, bool]:
        """Stop the pair's process (waiting for a start in flight), then delete its record and transcript.

        Returns:
            The removed session (None if there was none) and whether a process was running.

        """
        terminated = await self._pool.discard(pair)
        old = await self._store.get_session(pair.from_team, pair.to_team)
        if old is not None:
            removed = remove_transcripts({**os.environ, **self._pool.claude_env(team)}, old.session_id)
            await self._store.delete_session(old.session_id)
            logger.info("deleted session %s of %s (%d transcript files)", old.session_id, pair, removed)
        return old, terminated

    async def session_fork(self, *, to_team: str, from_team: str) -> Result:
        """Run the user's spawn script on the pair's session.

        Raises:
            SessionNotFoundError: the pair has no session yet (wake the team first).
            PreconditionFailedError: the spawn script is missing or not executable.

        """
        self._pair(from_team, to_team)
        team = self._team(to_team)
        session = await self._store.get_session(from_team, to_team)
        if session is None:
            raise SessionNotFoundError(f"No session found for {from_team}->{to_team}; wake the team first")
        outcome = await run_spawn_script(self.home, team.path, session.session_id)
        return {
            "success": outcome.success,
            "fromTeam": from_team,
            "toTeam": to_team,
            "sessionId": session.session_id,
            "spawnScriptPath": "scripts/spawn.sh",
            "teamPath": str(team.path),
            "remote": False,
            "sshHost": "",
            "message": outcome.message,
            "timestamp": now_ms(),
        }

    async def session_report(self, *, team: str, from_team: str) -> Result:
        """Return the recorded turns of the pair's session, with live progress for active ones."""
        self._pair(from_team, team)
        self._team(team)
        session = await self._store.get_session(from_team, team)
        rows = await self._store.turns_of_session(session.session_id) if session else []
        return reports.session_report(team, from_team, session, rows, self._pool.live_turn)

    # --- teams -----------------------------------------------------------------------------------------

    async def team_wake(self, *, team: str, from_team: str) -> Result:
        """Ensure the pair's process is running; reply when it is ready."""
        pair = self._pair(from_team, team)
        config = self._team(team)
        started = monotonic_ms()
        was_awake = self._pool.view(pair).awake
        async with self._session_lock(pair):  # a wake must not bind a process to a session being replaced
            process = await self._pool.wake(pair, config)
        return {
            "team": team,
            "status": "awake",
            "pid": process.pid,
            "sessionId": process.spec.session_id,
            "message": f"Team {team} was already awake" if was_awake else f"Team {team} is awake",
            "duration": int(monotonic_ms() - started),
            "timestamp": now_ms(),
        }

    async def team_sleep(self, *, team: str, from_team: str, force: bool = False) -> Result:
        """Stop the pair's process (refused while busy unless ``force``); its session is kept."""
        pair = self._pair(from_team, team)
        self._team(team)
        started = monotonic_ms()
        stopped = await self._pool.sleep(pair, force=force)
        return {
            "team": team,
            "status": "asleep" if stopped else "already_asleep",
            "message": f"Team {team} has been put to sleep" if stopped else f"Team {team} was already asleep",
            "duration": int(monotonic_ms() - started),
            "timestamp": now_ms(),
        }

    async def team_wake_all(self, *, from_team: str, parallel: bool = False) -> Result:
        """Wake every configured team for the caller: sequentially, or at most three at a time."""
        validate_team_name(from_team, field="fromTeam")
        started = monotonic_ms()
        gate = asyncio.Semaphore(_WAKE_ALL_PARALLELISM if parallel else 1)

        async def wake_one(name: str) -> Result:
            async with gate:
                try:
                    woke = await self.team_wake(team=name, from_team=from_team)
                except IrisError as exc:
                    return {
                        "team": name,
                        "success": False,
                        "status": "failed",
                        "message": exc.message,
                        "error": exc.reason,
                    }
                return {
                    "team": name,
                    "success": True,
                    "status": "awake",
                    "pid": woke["pid"],
                    "sessionId": woke["sessionId"],
                    "message": woke["message"],
                }

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(wake_one(name)) for name in self.config.teams]
        results = [t.result() for t in tasks]
        ok = sum(1 for r in results if r["success"])
        return {
            "results": results,
            "totalTeams": len(results),
            "successCount": ok,
            "failureCount": len(results) - ok,
            "duration": int(monotonic_ms() - started),
            "timestamp": now_ms(),
        }

    async def team_status(
        self, *, from_team: str, team: str | None = None, include_notifications: bool = True
    ) -> Result:
        """Describe the caller's pair with one team, or with every team."""
        validate_team_name(from_team, field="fromTeam")
        names = [team] if team is not None else list(self.config.teams)
        if team is not None:
            validate_team_name(team)
            self._team(team)
        sessions = {s.to_team: s for s in await self._store.list_sessions(from_team)}
        entries = []
        for name in names:
            view = self._pool.view(Pair(from_team, name))
            session = sessions.get(name)
            entry: Result = {
                "name": name,
                "awake": view.awake,
                "state": view.state.value,
                "pid": view.pid,
                "sessionId": session.session_id if session else "",
                "messageCount": session.message_count if session else 0,
                "lastUsed": view.last_used_ms or (session.last_used_at if session else 0),
            }
            if include_notifications:
                entry["notifications"] = {"pending": view.pending, "running": view.running}
            entries.append(entry)
        result: Result = {"teams": entries, "timestamp": now_ms()}
        if team is not None:
            result.update(team=team, awake=entries[0]["awake"])
        return result

    async def list_teams(self) -> Result:
        """List the configured teams with their settings."""
        return info.list_teams(self.config)

    # --- system ----------------------------------------------------------------------------------------

    async def get_logs(
        self,
        *,
        logs_since: int | None = None,
        store_name: str = "",
        format: str = "",  # noqa: A002 - the seeds' parameter name
        level: Sequence[str] = (),
        get_all_stores: bool = False,
    ) -> Result:
        """Read the in-memory log ring (seeds' get_logs)."""
        return info.get_logs(
            self._logs,
            logs_since=logs_since,
            store_name=store_name,
            format=format,
            level=level,
            get_all_stores=get_all_stores,
        )

    async def get_date(self) -> Result:
        """Return the server's clock in the seeds' forms."""
        return info.get_date()

    async def get_status(self) -> Result:
        """Report the whole system (the seeds' /api/status): sessions, processes, uptime and version."""
        slots, busy, live = self._pool.census()
        return {
            "sessions": {"total": await self._store.count_sessions(), "active": len(live)},
            "processes": {"total": slots, "maxProcesses": self.config.settings.max_processes, "busy": busy},
            "uptime": int(monotonic_ms() - self._started_mono),
            "version": _VERSION,
            "timestamp": now_ms(),
        }

    async def get_health(self) -> Result:
        """Answer a basic health check for HTTP monitors."""
        return {"status": "ok", "uptime": int(monotonic_ms() - self._started_mono), "timestamp": now_ms()}

    async def get_cache(self, *, session_id: str) -> Result:
        """Return a session's record by session id (the seeds' cache read).

        Raises:
            SessionNotFoundError: no such session.

        """
        session = await self._session_by_id(session_id)
        rows = await self._store.turns_of_session(session.session_id)
        report = reports.session_report(
            session.to_team, session.from_team, session, rows, self._pool.live_turn
        )
        return {"report": report}

    async def clear_cache(self, *, session_id: str) -> Result:
        """Delete a session's ended turn records; the Claude session and its conversation stay.

        Raises:
            SessionNotFoundError: no such session.

        """
        session = await self._session_by_id(session_id)
        removed = await self._store.delete_finished_turns(session.session_id)
        return {"sessionId": session.session_id, "removedEntries": removed, "timestamp": now_ms()}

    async def _session_by_id(self, session_id: str) -> SessionRow:
        if not session_id or len(session_id) > 100:
            raise ValidationError("sessionId is required", details={"field": "sessionId"})
        session = await self._store.get_session_by_id(session_id)
        if session is None:
            raise SessionNotFoundError(f"No session {session_id}", details={"sessionId": session_id})
        return session

    async def permissions_approve(
        self,
        *,
        tool_name: str = "",
        tool_input: Mapping[str, Any] | None = None,
        reason: str = "",
        request_id: str = "",
        decision: str = "",
        from_team: str = "",
    ) -> Result:
        """Answer a pending "ask" request (``request_id``), or apply the seeds' policy to ``tool_name``."""
        del reason  # recorded by the caller's own logs; the decision does not depend on it
        if request_id:
            validate_team_name(from_team, field="fromTeam")  # only the pair's caller may answer for it
            answer = self._broker.answer(request_id, decision, from_team)
            return {"behavior": "allow" if answer.allow else "deny", "message": answer.message}
        if not tool_name:
            raise ValidationError(
                "toolName is required (or a requestId to answer)", details={"field": "toolName"}
            )
        verdict = policy_decision(tool_name)
        result: Result = {"behavior": "allow" if verdict.allow else "deny", "message": verdict.message}
        if verdict.allow:
            result["updatedInput"] = dict(tool_input or {})
        return result

    # --- helpers ---------------------------------------------------------------------------------------

    def _pair(self, from_team: str, team: str) -> Pair:
        validate_team_name(from_team, field="fromTeam")
        validate_team_name(team)
        return Pair(from_team, team)

    def _team(self, name: str) -> TeamConfig:
        team = self.config.teams.get(name)
        if team is None:
            raise TeamNotFoundError(f"Unknown team: {name}", details={"team": name})
        return team
