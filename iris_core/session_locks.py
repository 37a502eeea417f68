"""One lock per (caller, team) pair ordering what reads or replaces the pair's session.

Accepting a turn reads the pair's session id and records the turn under it; a reboot or delete replaces or
removes that session; a wake binds a process to it. Each holds the pair's lock, so a reboot can never slip
between a session read and the record write of a message.
"""

from __future__ import annotations

import asyncio

from .turns import Pair

__all__ = ["SessionLocks"]


class SessionLocks:
    """The session locks of every pair, made on first use."""

    def __init__(self) -> None:
        self._locks: dict[Pair, asyncio.Lock] = {}

    def of(self, pair: Pair) -> asyncio.Lock:
        """Return the pair's lock."""
        return self._locks.setdefault(pair, asyncio.Lock())
