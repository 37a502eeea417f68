"""A pair's runtime: its process phase, its queue, its running turn, and the state derived from them.

Where a pair's process is in its life is one value, a ``Phase``, never parallel flags::

    Asleep ──claim a slot──► Starting ──launched──► Running ──stop──► Stopping ──reaped──► Asleep
                                 └──────────failed───────────────────────────────────────► Asleep

Everything else (``PairState`` for TeamStatus, whether the pair holds a slot, is idle or may be evicted) is
derived from the phase, the queue and the current turn.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass, field

from .clock import monotonic_ms
from .config import TeamConfig
from .placement import TeamProcess
from .turns import Pair, Turn

__all__ = [
    "ASLEEP",
    "Asleep",
    "PairRuntime",
    "PairState",
    "PairView",
    "Phase",
    "Running",
    "Starting",
    "Stopping",
]


class PairState(enum.StrEnum):
    """Lifecycle of a pair's process, as reported by TeamStatus."""

    STOPPED = "stopped"
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class Asleep:
    """No process and no start in flight."""


@dataclass(frozen=True, slots=True)
class Starting:
    """A slot is taken and the process is being launched."""


@dataclass(frozen=True, slots=True)
class Running:
    """The pair's process is up (it may have died since: ``process.exited``)."""

    process: TeamProcess


@dataclass(frozen=True, slots=True)
class Stopping:
    """The process is being stopped and reaped by ``task``."""

    process: TeamProcess
    task: asyncio.Task[None | None]
    handed_over: bool = False
    """Evicted: its slot already belongs to the evicting pair, while its child is still being reaped."""


Phase = Asleep | Starting | Running | Stopping
ASLEEP = Asleep()


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
    """What the pool knows about one (caller, team) pair. Only the pool changes it."""

    pair: Pair
    team: TeamConfig
    phase: Phase = ASLEEP
    queue: deque[Turn] = field(default_factory=deque)
    current: Turn | None = None
    """The turn on the process now (from its start until it is recorded)."""
    driver: asyncio.Task[None | None] | None = None
    lifecycle: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by whatever starts, stops or discards the pair's process, so those never interleave."""
    last_used_mono: float = field(default_factory=monotonic_ms)
    last_used_ms: int = 0

    @property
    def process(self) -> TeamProcess | None:
        """The pair's process, from the end of its start to the end of its reaping."""
        phase = self.phase
        return phase.process if isinstance(phase, Running | Stopping) else None

    @property
    def starting(self) -> bool:
        """A launch is in flight."""
        return isinstance(self.phase, Starting)

    @property
    def stopping(self) -> asyncio.Task[None | None] | None:
        """The stop in flight, if any."""
        phase = self.phase
        return phase.task if isinstance(phase, Stopping) else None

    @property
    def busy(self) -> bool:
        """A turn is queued or unfinished."""
        return (self.current is not None and not self.current.done) or bool(self.queue)

    @property
    def live(self) -> bool:
        """A process is running and not being stopped."""
        phase = self.phase
        return isinstance(phase, Running) and not phase.process.exited

    @property
    def holds_slot(self) -> bool:
        """Counts against maxProcesses: starting, alive, or unreaped (unless its slot was handed over)."""
        phase = self.phase
        return isinstance(phase, Starting | Running) or (
            isinstance(phase, Stopping) and not phase.handed_over
        )

    @property
    def idle(self) -> bool:
        """A live process with nothing to do: the only kind idle-stop and eviction may take."""
        return self.live and not self.busy and not self.lifecycle.locked()

    @property
    def state(self) -> PairState:
        """The lifecycle state shown to callers."""
        phase = self.phase
        if isinstance(phase, Stopping):
            return PairState.STOPPING
        if isinstance(phase, Starting):
            return PairState.STARTING
        if not self.live:
            return PairState.STOPPED
        return PairState.BUSY if self.busy else PairState.IDLE
