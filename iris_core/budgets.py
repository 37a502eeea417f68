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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .access import ADMIN, grants
from .clock import now_ms
from .config import TeamConfig
from .errors import BudgetExceededError
from .keys import ApiKey

__all__ = ["Budget", "Spent", "budgets_of", "check_budgets", "period_bounds"]

Spent = Callable[[str, str, int], Awaitable[float]]
"""The cost ledger's ``spent(scope, name, since_ms)``: USD a team or key spent since a time."""


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
    spent_shown: bool = True
    """Whether a refusal may say what was spent: a team's spending is every key's, so only an admin (who may
    read it with GetUsage) is told it."""


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
    admin = key is None or grants(key.permissions, ADMIN)
    return [
        Budget(scope, name, period, limit, spent_shown=scope == "key" or admin)
        for scope, name, period, limit in limits
        if limit > 0
    ]


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
    spent_by: Spent, budgets: Sequence[Budget], on_refused: Callable[[str, str], None] | None = None
) -> None:
    """Refuse a turn when a budget it falls under is used up (``on_refused(scope, period)`` counts it).

    Checked when a message is accepted and again when its turn is about to start, so messages queued (or
    sent together) before the budget ran out do not run past it.

    Raises:
        BudgetExceededError: its details name the budget (e.g. ``team backend daily``), ``limitUsd``,
            ``resetsAt`` (Unix ms, when the period ends) and, where the caller may know it, ``spentUsd``.

    """
    now = now_ms()
    for budget in budgets:
        start, end = period_bounds(budget.period, now)
        spent = await spent_by(budget.scope, budget.name, start)
        if spent < budget.limit_usd:
            continue
        if on_refused is not None:
            on_refused(budget.scope, budget.period)
        resets = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end / 1000))
        details = {
            "budget": f"{budget.scope} {budget.name} {budget.period}",
            "limitUsd": f"{budget.limit_usd:g}",
            "resetsAt": str(end),
        }
        if budget.spent_shown:
            details["spentUsd"] = f"{spent:.6f}"
        raise BudgetExceededError(
            f"The {budget.period} budget of {budget.scope} {budget.name} (${budget.limit_usd:.2f}) is used up"
            f"{f' (${spent:.2f} spent)' if budget.spent_shown else ''}; it resets at {resets}",
            details=details,
        )
