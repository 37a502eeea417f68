"""Refusing a message that would wait on itself: teams whose Claude calls Iris can form a cycle.

A team's Claude (``sessionMcpEnabled``) that asks another team waits for that turn inside its own turn. If
team A's turn waits on B, B's on A, and A's Claude then asks B again, the new turn queues behind B's running
turn (a pair runs one turn at a time), which waits on A's turn, which waits on the new one: no turn of the
cycle can end until ``turnTimeout`` (an hour by default) kills it. Iris sees every unfinished turn, so it
refuses such a message at once instead, and the Claude that sent it gets an error it can act on.

The check is by team, so it is conservative: it may refuse a message whose target's running turn would have
ended on its own, in the rare case that one of the target team's other turns waits on the caller's team.
"""

from __future__ import annotations

from collections.abc import Iterable

from .turns import Pair

__all__ = ["wait_cycle"]


def wait_cycle(pair: Pair, unfinished: Iterable[Pair]) -> list[str] | None:
    """Return the teams of a cycle a new turn of busy ``pair`` would close, or None if there is none.

    ``unfinished`` are the pairs of every queued or running turn; each is an edge caller -> team ("the
    caller waits on the team"). The new turn waits behind ``pair.to_team``'s turn, so it closes a cycle when
    ``pair.to_team`` already waits, through such edges, on ``pair.from_team``.
    """
    edges: dict[str, set[str]] = {}
    for each in unfinished:
        edges.setdefault(each.from_team, set()).add(each.to_team)
    came_from: dict[str, str] = {pair.to_team: ""}
    frontier = [pair.to_team]
    while frontier:
        team = frontier.pop()
        for nxt in sorted(edges.get(team, ())):
            if nxt in came_from:
                continue
            came_from[nxt] = team
            if nxt == pair.from_team:
                chain = [nxt]
                while came_from[chain[-1]]:
                    chain.append(came_from[chain[-1]])
                return [pair.from_team, *reversed(chain)]
            frontier.append(nxt)
    return None
