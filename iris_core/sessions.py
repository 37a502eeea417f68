"""A pair's session: cancel its turn, reboot or delete it, fork it into a terminal, read its record."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import IMPERSONATE, Caller
from .clock import now_ms
from .config import IrisConfig, TeamConfig
from .errors import ForbiddenError, IrisError, SessionNotFoundError, ValidationError
from .fork import run_spawn_script
from .jobs import JobQueue
from .pool import ProcessPool
from .reports import session_report
from .session_locks import SessionLocks
from .store import SessionRow, Store
from .targets import configured_team, pair_of
from .transcripts import remove_transcripts
from .turns import Pair

__all__ = ["Sessions"]

logger = logging.getLogger(__name__)

_CANCEL_WAIT_S = 5.0
"""How long SessionCancel waits for the interrupted turn to end before it replies anyway."""


class Sessions:
    """Everything that acts on a pair's Claude session or on its record."""

    def __init__(
        self,
        config: IrisConfig,
        home: Path,
        store: Store,
        pool: ProcessPool,
        jobs: JobQueue,
        locks: SessionLocks,
    ) -> None:
        self._config = config
        self._home = home
        self._store = store
        self._pool = pool
        self._jobs = jobs
        self._locks = locks

    async def session_cancel(
        self, request: pb.SessionCancelRequest, caller: Caller
    ) -> pb.SessionCancelResponse:
        """Cancel the pair's queued turns and its running one (waiting, bounded, until that has ended)."""
        pair = pair_of(caller.team(request.from_team), request.team)
        configured_team(self._config, request.team)
        waiting = await self._jobs.cancel_for(pair, "cancelled before it ran")
        running, queued = await self._pool.cancel(pair)
        queued = [*queued, *waiting]
        if running is None and not queued:
            return pb.SessionCancelResponse(
                team=request.team,
                cancelled=False,
                message=f"No turn is running for {pair}",
                timestamp=now_ms(),
            )
        parts = []
        if running is not None:
            ended = await running.wait(_CANCEL_WAIT_S)
            parts.append("Turn interrupted" if ended else "Interrupt sent; the turn is still ending")
        if queued:
            parts.append(f"{len(queued)} queued turn{'s' if len(queued) > 1 else ''} cancelled")
        first = running if running is not None else queued[0]
        return pb.SessionCancelResponse(
            team=request.team,
            cancelled=True,
            message="; ".join(parts),
            message_id=first.message_id,
            timestamp=now_ms(),
        )

    async def session_reboot(
        self, request: pb.SessionRebootRequest, caller: Caller
    ) -> pb.SessionRebootResponse:
        """Stop the pair's process, delete its session and transcript, start a fresh session and wake it."""
        pair = pair_of(caller.team(request.from_team), request.to_team)
        team = configured_team(self._config, request.to_team)
        async with self._locks.of(pair):
            old, terminated = await self._remove_session(pair, team)
            new = await self._store.get_or_create_session(pair.from_team, pair.to_team)
            woke = ""
            try:
                await self._pool.wake(pair, team)
            except IrisError as exc:
                woke = f" The team will start on the next message ({exc.message})."
        old_text = f"Old session {old.session_id} terminated and removed." if old else "There was no session."
        return pb.SessionRebootResponse(
            from_team=pair.from_team,
            to_team=pair.to_team,
            had_previous_session=old is not None,
            old_session_id=old.session_id if old else "",
            new_session_id=new.session_id,
            process_terminated=terminated,
            message=f"Fresh new session {new.session_id} created. {old_text}{woke}",
            timestamp=now_ms(),
        )

    async def session_delete(
        self, request: pb.SessionDeleteRequest, caller: Caller
    ) -> pb.SessionDeleteResponse:
        """Stop the pair's process and delete its session and transcript, with no replacement."""
        pair = pair_of(caller.team(request.from_team), request.to_team)
        team = configured_team(self._config, request.to_team)
        async with self._locks.of(pair):
            old, terminated = await self._remove_session(pair, team)
        return pb.SessionDeleteResponse(
            from_team=pair.from_team,
            to_team=pair.to_team,
            had_session=old is not None,
            session_id=old.session_id if old else "",
            process_terminated=terminated,
            message=f"Session {old.session_id} deleted" if old else f"{pair} had no session",
            timestamp=now_ms(),
        )

    async def _remove_session(self, pair: Pair, team: TeamConfig) -> tuple[SessionRow | None, bool]:
        """Stop the pair's process (waiting for a start in flight), then delete its record and transcript.

        Returns:
            The removed session (None if there was none) and whether a process was running.

        """
        await self._jobs.cancel_for(pair, "the session was removed")
        terminated = await self._pool.discard(pair)
        old = await self._store.get_session(pair.from_team, pair.to_team)
        if old is not None:
            removed = remove_transcripts({**os.environ, **self._pool.claude_env(team)}, old.session_id)
            await self._store.delete_session(old.session_id)
            logger.info("deleted session %s of %s (%d transcript files)", old.session_id, pair, removed)
        return old, terminated

    async def session_fork(self, request: pb.SessionForkRequest, caller: Caller) -> pb.SessionForkResponse:
        """Run the user's spawn script on the pair's session.

        Raises:
            SessionNotFoundError: the pair has no session yet (wake the team first).
            PreconditionFailedError: the spawn script is missing or not executable.

        """
        pair = pair_of(caller.team(request.from_team), request.to_team)
        team = configured_team(self._config, request.to_team)
        session = await self._store.get_session(pair.from_team, pair.to_team)
        if session is None:
            raise SessionNotFoundError(f"No session found for {pair}; wake the team first")
        outcome = await run_spawn_script(self._home, team.path, session.session_id)
        return pb.SessionForkResponse(
            success=outcome.success,
            from_team=pair.from_team,
            to_team=pair.to_team,
            session_id=session.session_id,
            spawn_script_path="scripts/spawn.sh",
            team_path=str(team.path),
            remote=team.remote is not None,
            ssh_host=team.remote.destination if team.remote is not None else "",
            message=outcome.message,
            timestamp=now_ms(),
        )

    async def session_report(
        self, request: pb.SessionReportRequest, caller: Caller
    ) -> pb.SessionReportResponse:
        """Return one page of the pair's session's recorded turns, with live progress for active ones."""
        pair = pair_of(caller.team(request.from_team), request.team)
        configured_team(self._config, request.team)
        session = await self._store.get_session(pair.from_team, pair.to_team)
        return await session_report(
            pair.to_team,
            pair.from_team,
            session,
            store=self._store,
            settings=self._config.settings,
            page_size=request.page_size,
            page_token=request.page_token,
            live_turn=self._pool.live_turns().get,
        )

    async def get_cache(self, request: pb.GetCacheRequest, caller: Caller) -> pb.GetCacheResponse:
        """Return one page of a session's record by session id.

        Raises:
            SessionNotFoundError: no such session.
            ValidationError: a page size out of range or a page token this server did not give.

        """
        session = await self._session_by_id(request.session_id, caller)
        report = await session_report(
            session.to_team,
            session.from_team,
            session,
            store=self._store,
            settings=self._config.settings,
            page_size=request.page_size,
            page_token=request.page_token,
            live_turn=self._pool.live_turns().get,
        )
        return pb.GetCacheResponse(report=report)

    async def clear_cache(self, request: pb.ClearCacheRequest, caller: Caller) -> pb.ClearCacheResponse:
        """Delete a session's ended turn records; the Claude session and its conversation stay.

        Raises:
            SessionNotFoundError: no such session.

        """
        session = await self._session_by_id(request.session_id, caller)
        removed = await self._store.delete_finished_turns(session.session_id)
        return pb.ClearCacheResponse(
            session_id=session.session_id, removed_entries=removed, timestamp=now_ms()
        )

    async def _session_by_id(self, session_id: str, caller: Caller) -> SessionRow:
        """Return a session the caller may see: one of its own pairs, unless it may act for others.

        Raises:
            ValidationError: no session id.
            SessionNotFoundError: no such session.
            ForbiddenError: the session belongs to another caller's pair.

        """
        if not session_id or len(session_id) > 100:
            raise ValidationError("sessionId is required", details={"field": "sessionId"})
        session = await self._store.get_session_by_id(session_id)
        if session is None:
            raise SessionNotFoundError(f"No session {session_id}", details={"sessionId": session_id})
        if not caller.may_act_for_others and session.from_team != caller.team(""):
            raise ForbiddenError(
                f"Session {session_id} belongs to another caller's pair",
                details={"sessionId": session_id, "permission": IMPERSONATE},
            )
        return session
