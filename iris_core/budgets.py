"""Spending budgets: a turn that would start past a team's or a key's daily or monthly budget is refused.

Budgets are read from the config (a team's ``budget: {dailyUsd, monthlyUsd}``) and from the key
(``daily_budget_usd``, ``monthly_budget_usd``); days and months are UTC, as in the cost ledger. A turn is
refused when what was spent in the period has reached the budget: the turn that crosses it runs (its cost is
not known before it ends), the next one does not. Claude Code's own per-turn cap (``maxTurnBudgetUsd``)
bounds that last turn.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass

from .clock import now_ms
from .config import TeamConfig
from .errors import BudgetExceededError
from .keys import ApiKey
from .usage import CostLedger

__all__ = ["Budget", "budgets_of", "check_budgets", "period_bounds"]


@dataclass(frozen=True, slots=True)
class Budget:
    """One limit on spending."""

    scope: str
    """``team`` or ``key``."""
    name: str
    """The team's or the key's name."""
    period: str
    """``daily`` or ``monthly`` (UTC)."""
    limit_usd: float


def budgets_of(team: TeamConfig, key: ApiKey | None) -> list[Budget]:
    """Return the budgets a turn of ``team`` sent with ``key`` must stay within."""
    limits = [
        ("team", team.name, "daily", team.daily_budget_usd),
        ("team", team.name, "monthly", team.monthly_budget_usd),
    ]
    if key is not None:
        limits += [
            ("key", key.name, "daily", key.daily_budget_usd),
            ("key", key.name, "monthly", key.monthly_budget_usd),
        ]
    return [Budget(scope, name, period, limit) for scope, name, period, limit in limits if limit > 0]


def period_bounds(period: str, at_ms: int) -> tuple[int, int]:
    """Return the start and end (Unix ms, UTC) of the day or month that contains ``at_ms``."""
    t = time.gmtime(at_ms / 1000)
    if period == "daily":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        return start * 1000, (start + 86_400) * 1000
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return start * 1000, calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


async def check_budgets(
    ledger: CostLedger,
    team: TeamConfig,
    key: ApiKey | None,
    on_refused: Callable[[str, str], None] | None = None,
) -> None:
    """Refuse a turn when a budget it falls under is used up (``on_refused(scope, period)`` counts it).

    Raises:
        BudgetExceededError: its details name the budget (e.g. ``team backend daily``), ``limitUsd``,
            ``spentUsd`` and ``resetsAt`` (Unix ms, when the period ends).

    """
    now = now_ms()
    for budget in budgets_of(team, key):
        start, end = period_bounds(budget.period, now)
        spent = await ledger.spent(budget.scope, budget.name, start)
        if spent >= budget.limit_usd:
            if on_refused is not None:
                on_refused(budget.scope, budget.period)
            resets = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end / 1000))
            raise BudgetExceededError(
                f"The {budget.period} budget of {budget.scope} {budget.name} (${budget.limit_usd:.2f}) is "
                f"used up (${spent:.2f} spent); it resets at {resets}",
                details={
                    "budget": f"{budget.scope} {budget.name} {budget.period}",
                    "limitUsd": f"{budget.limit_usd:g}",
                    "spentUsd": f"{spent:.6f}",
                    "resetsAt": str(end),
                },
            )
