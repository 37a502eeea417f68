"""wait_cycle: when a new turn would queue behind a turn that waits, through other turns, on its caller."""

from __future__ import annotations

from iris_core.turns import Pair
from iris_core.wait_cycles import wait_cycle


def test_a_turn_back_into_a_team_that_waits_on_the_caller_closes_a_cycle() -> None:
    running = [Pair("tester", "alpha"), Pair("alpha", "beta"), Pair("beta", "alpha")]
    assert wait_cycle(Pair("alpha", "beta"), running) == ["alpha", "beta", "alpha"]


def test_a_longer_cycle_is_named_in_order() -> None:
    running = [Pair("a", "b"), Pair("b", "c"), Pair("c", "a")]
    assert wait_cycle(Pair("a", "b"), running) == ["a", "b", "c", "a"]


def test_no_path_back_to_the_caller_is_no_cycle() -> None:
    assert wait_cycle(Pair("alpha", "beta"), [Pair("tester", "alpha"), Pair("alpha", "beta")]) is None
    assert wait_cycle(Pair("alpha", "beta"), [Pair("beta", "gamma"), Pair("gamma", "delta")]) is None
    assert wait_cycle(Pair("alpha", "beta"), []) is None
