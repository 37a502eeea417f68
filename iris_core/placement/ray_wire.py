"""What crosses between Iris and a pair's Ray actor, besides the turn events themselves.

A turn's stream (the actor's ``turn``, a Ray streaming generator) carries the ``TurnEvent``s of
``claude_process`` and these markers, in the order they happened on the node: that order is what makes a
transcript batch reach Iris's store before the result that follows it. Plain frozen dataclasses, importable
without Ray on either side (Ray pickles them by reference, so Iris's package must be installed on the nodes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import ToolPermissionContext

from iris_client.generated.iris.v1 import iris_pb2 as pb

from ..claude_process import TurnResult
from ..spend import ModelSpend

__all__ = [
    "ActorStarted",
    "PermissionAsk",
    "ResultOnWire",
    "Sent",
    "StartFailure",
    "Started",
    "TranscriptBatch",
    "TurnFailure",
]


@dataclass(frozen=True, slots=True)
class ActorStarted:
    """The actor's Claude Code is up: its pid on the node, and the node's id and address (for the logs)."""

    pid: int
    node_id: str
    node_ip: str


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Claude Code could not start on the node; ``message`` says why (the same words as a local failure)."""

    message: str


@dataclass(frozen=True, slots=True)
class Sent:
    """The prompt was written to Claude Code (``run_turn``'s ``on_sent``): it may be in the transcript now."""


@dataclass(frozen=True, slots=True)
class Started:
    """The turn's first message arrived (``run_turn``'s ``on_started``)."""


@dataclass(frozen=True, slots=True)
class TranscriptBatch:
    """Transcript entries Claude Code wrote on the node, mirrored by the SDK's session store, to keep in Iris.

    ``subpath`` is empty for the session's own transcript and names a subagent's otherwise (the SDK's
    ``SessionKey.subpath``).
    """

    subpath: str
    entries: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class PermissionAsk:
    """Claude Code asks whether it may use a tool; Iris answers with the actor's ``answer``."""

    request_id: str
    tool_name: str
    tool_input: dict[str, Any]
    context: ToolPermissionContext


@dataclass(frozen=True, slots=True)
class TurnFailure:
    """The turn failed on the node. ``gone``: the prompt never reached Claude Code (it may run again)."""

    message: str
    gone: bool


@dataclass(frozen=True, slots=True)
class ResultOnWire:
    """A ``TurnResult`` as it travels: its per-model token counts as serialized messages.

    The contract's generated classes are registered under the proto's package (``iris.v1``), not a module
    that can be imported by that name, so a pickler cannot find them; bytes travel instead.
    """

    result: TurnResult
    """The result without its ``spend``."""
    spend: tuple[tuple[str, float, bytes], ...]
    """(model, USD, serialized ``TokenUsage``) per model."""

    @classmethod
    def of(cls, result: TurnResult) -> ResultOnWire:
        """Wrap ``result`` for the stream."""
        spend = tuple((s.model, s.cost_usd, s.usage.SerializeToString()) for s in result.spend)
        return cls(dataclasses.replace(result, spend=()), spend)

    def unwrap(self) -> TurnResult:
        """Return the ``TurnResult`` that was sent."""
        spend = tuple(ModelSpend(m, cost, pb.TokenUsage.FromString(usage)) for m, cost, usage in self.spend)
        return dataclasses.replace(self.result, spend=spend)
