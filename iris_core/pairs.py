"""A pair's runtime: its process, its queue, its running turn, and the state derived from them."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass, field

from .claude_process import ClaudeProcess
from .clock import monotonic_ms
from .config import TeamConfig
from .turns import Pair, Turn

__all__ = ["PairRuntime", "PairState", "PairView"]


class PairState(enum.StrEnum):
    """Lifecycle of a pair's process, as reported by TeamStatus."""

    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"


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
class PairRuntime:
    """What the pool knows about one (caller, team) pair; its state is derived, never stored."""

    pair: Pair
    team: TeamConfig
    process: ClaudeProcess | None = None
    """The pair's process, from the end of its start to the end of its reaping."""
    starting: bool = False
    handed_over: bool = False
    """Evicted: its slot already belongs to the evicting pair, while its child is still being reaped."""
    stopping: asyncio.Task[None] | None = None
    queue: deque[Turn] = field(default_factory=deque)
    current: Turn | None = None
    driver: asyncio.Task[None] | None = None
    lifecycle: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used_mono: float = field(default_factory=monotonic_ms)
    last_used_ms: int = 0
    cost_base: float = 0.0

    @property
    def busy(self) -> bool:
        """A turn is queued or unfinished."""
        return (self.current is not None and not self.current.done) or bool(self.queue)

    @property
    def live(self) -> bool:
        """A process is running and not being stopped."""
        return self.process is not None and not self.process.exited and self.stopping is None

    @property
    def holds_slot(self) -> bool:
        """Counts against maxProcesses: starting, alive, or unreaped (unless its slot was handed over)."""
        return self.starting or (self.process is not None and not self.handed_over)

    @property
    def idle(self) -> bool:
        """A live process with nothing to do: the only kind idle-stop and eviction may take."""
        return self.live and not self.busy and not self.starting and not self.lifecycle.locked()

    @property
    def state(self) -> PairState:
        """The lifecycle state shown to callers."""
        if self.stopping is not None:
            return PairState.STOPPING
        if self.starting:
            return PairState.STARTING
        if self.process is None or self.process.exited:
            return PairState.STOPPED
        return PairState.BUSY if self.busy else PairState.IDLE
