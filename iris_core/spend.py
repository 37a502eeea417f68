"""What one turn cost, per model, from the running totals Claude Code reports.

Claude Code's result carries ``modelUsage``: per model, the tokens and cost of the whole process so far
(seen: a second turn reports the first turn's tokens plus its own). A turn's own spend is therefore the
difference from the previous result of the same process. Cache reads and writes are counted: leaving them
out undercounts spend several times over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iris_client.generated.iris.v1 import iris_pb2 as pb

__all__ = ["ModelSpend", "ModelTotals", "spend_since"]

_FIELDS = (
    ("inputTokens", "input_tokens"),
    ("outputTokens", "output_tokens"),
    ("cacheCreationInputTokens", "cache_creation_input_tokens"),
    ("cacheReadInputTokens", "cache_read_input_tokens"),
)

ModelTotals = Mapping[str, Mapping[str, float]]
"""Per model, Claude Code's running totals (``costUSD`` and the token counts of ``_FIELDS``)."""


@dataclass(frozen=True, slots=True)
class ModelSpend:
    """One model's part of one turn."""

    model: str
    """The model id, as Claude Code reported it."""
    cost_usd: float
    """USD."""
    usage: pb.TokenUsage
    """Tokens, cache reads and writes included."""


def spend_since(before: ModelTotals, now: Mapping[str, Any]) -> tuple[tuple[ModelSpend, ...], ModelTotals]:
    """Return the spend between two reports of one process, per model, and the totals to compare with next.

    Models that spent nothing in between are left out.
    """
    spends: list[ModelSpend] = []
    totals: dict[str, dict[str, float]] = {}
    for model, raw in now.items():
        if not isinstance(raw, Mapping):
            continue
        current = {name: _number(raw.get(name)) for name, _ in (*_FIELDS, ("costUSD", ""))}
        totals[model] = current
        previous = before.get(model, {})
        delta = {name: max(value - previous.get(name, 0.0), 0.0) for name, value in current.items()}
        if not any(delta.values()):
            continue
        usage = pb.TokenUsage(**{field: int(delta[name]) for name, field in _FIELDS})
        spends.append(ModelSpend(model=str(model), cost_usd=delta["costUSD"], usage=usage))
    return tuple(spends), totals


def _number(value: object) -> float:
    """Return a finite number Claude Code reported, else 0 (a NaN or infinity must not reach the ledger)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0
