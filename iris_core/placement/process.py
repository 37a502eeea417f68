"""What the pool needs of a Claude Code process, wherever it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from ..claude_process import LaunchSpec, TurnEvent

__all__ = ["Launcher", "TeamProcess"]


class TeamProcess(Protocol):
    """One started Claude Code process of one pair: a local child, a child speaking SSH, or a Ray actor's.

    One turn at a time (the pool guarantees it). ``pid`` identifies the process in status replies and
    events: for a local or SSH process it is the local child's; for a Ray actor's, the pid on its node.
    """

    spec: LaunchSpec
    """What it was started with (the pool reads the session id and the rewind it was started for)."""
    pid: int

    @property
    def exited(self) -> bool:
        """True once the process has ended (killed, crashed or stopped); cheap, asked on status checks."""

    @property
    def gone(self) -> bool:
        """True once it has ended or is ending: asked before a turn is sent to it."""

    def run_turn(
        self,
        prompt: str,
        *,
        prompt_uuid: str | None = None,
        on_sent: Callable[[], Awaitable[None]] | None = None,
        on_started: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Send ``prompt``; yield text deltas, tool calls and rate-limit changes, then one ``TurnResult``.

        Raises ``ProcessGoneError`` if the prompt never reached Claude Code, ``ProcessError`` if the process
        failed during the turn (see ``ClaudeProcess.run_turn``).
        """

    async def interrupt(self) -> None:
        """Stop the running turn (bounded); raises ``ProcessError`` if it could not be delivered."""

    def kill(self) -> None:
        """Kill it now, without waiting (force sleep, shutdown escalation); ``stop`` still reaps."""

    async def stop(self, *, force: bool = False, grace_s: float = 5.0) -> None:
        """Stop it and wait until it is gone.

        Gracefully (its transcript flushed) within ``grace_s``, else killed. Never raises for a process
        that is already gone.
        """


Launcher = Callable[[LaunchSpec, float], Awaitable[TeamProcess]]
"""Starts a Claude Code process for a spec within a deadline (seconds)."""
