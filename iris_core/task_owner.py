"""What owns the tasks the pool's parts start: the pool, whose TaskGroup awaits them at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["TaskOwner"]

T = TypeVar("T")


class TaskOwner(Protocol):
    """Owns the tasks the slots and the warm spares start (stops, starts, refills), so none is orphaned."""

    @property
    def closing(self) -> bool:
        """True once a shutdown has begun."""

    @property
    def accepting_tasks(self) -> bool:
        """True while new tasks may start (the TaskGroup is open)."""

    def check_open(self) -> None:
        """Raise ProcessPoolLimitError once the pool is shutting down."""

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T | None]:
        """Run ``coro`` as an owned task."""
