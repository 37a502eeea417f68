"""One event of a streamed answer, as the clients hand it out: the contract's message with its kind named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .generated.iris.v1 import iris_pb2 as pb

__all__ = ["EventKind", "TellEvent"]

EventKind = Literal["start", "chunk", "tool_use", "permission_request", "complete"]
"""Which event of a turn it is, in the order they come: start, then chunks and tool uses, then complete."""


@dataclass(frozen=True, slots=True)
class TellEvent:
    """One event of a Tell stream: ``kind``, the answer's ``text`` for a chunk, and the whole ``event``.

    The message itself is the contract's ``TellResponse``; this only spares every caller the oneof dance,
    so ``for chunk in team.stream(...): print(chunk.text, end="")`` prints the answer as it comes.
    """

    kind: EventKind
    """Which event this is."""
    event: pb.TellResponse
    """The event as Iris sent it."""

    @classmethod
    def of(cls, event: pb.TellResponse) -> TellEvent | None:
        """Name an event by the field it sets; None for a kind newer than this client (streams skip it)."""
        kind = event.WhichOneof("event")
        return None if kind is None else cls(kind, event)

    @property
    def text(self) -> str:
        """The answer's text this chunk carries ("" for other kinds)."""
        return self.event.chunk.text if self.kind == "chunk" else ""

    @property
    def complete(self) -> pb.TellComplete | None:
        """The last event's whole answer and status, or None."""
        return self.event.complete if self.kind == "complete" else None

    @property
    def start(self) -> pb.TellStart | None:
        """The first event's message and session ids, or None."""
        return self.event.start if self.kind == "start" else None

    @property
    def tool_use(self) -> pb.TellToolUse | None:
        """The tool the team's Claude is using, or None."""
        return self.event.tool_use if self.kind == "tool_use" else None

    @property
    def permission_request(self) -> pb.TellPermissionRequest | None:
        """A tool call waiting for a decision (PermissionsApprove), or None."""
        return self.event.permission_request if self.kind == "permission_request" else None
