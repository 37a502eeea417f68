"""A turn's spend from Claude Code's running totals: only finite numbers reach the ledger."""

from __future__ import annotations

import math

from iris_core.spend import spend_since


def test_a_turn_spends_the_difference_of_the_running_totals_per_model() -> None:
    first, totals = spend_since({}, {"m": {"costUSD": 0.5, "inputTokens": 10, "outputTokens": 2}})
    second, _ = spend_since(totals, {"m": {"costUSD": 0.75, "inputTokens": 25, "outputTokens": 2}})

    assert [(s.model, s.cost_usd, s.usage.input_tokens) for s in first] == [("m", 0.5, 10)]
    assert [(s.model, s.cost_usd, s.usage.input_tokens, s.usage.output_tokens) for s in second] == [
        ("m", 0.25, 15, 0)
    ]


def test_a_nan_or_infinite_report_counts_as_nothing() -> None:
    spends, totals = spend_since({}, {"m": {"costUSD": math.nan, "inputTokens": math.inf, "outputTokens": 3}})

    [spend] = spends
    assert (spend.cost_usd, spend.usage.input_tokens, spend.usage.output_tokens) == (0.0, 0, 3)
    assert all(math.isfinite(v) for v in totals["m"].values())
