"""Naming what a call acts on: a pair of teams, and a configured team. Checked before anything changes."""

from __future__ import annotations

from .config import IrisConfig, TeamConfig
from .errors import TeamNotFoundError
from .turns import Pair
from .validation import validate_team_name

__all__ = ["configured_team", "pair_of"]


def pair_of(from_team: str, team: str, *, team_field: str = "team") -> Pair:
    """Return the (caller, team) pair after checking both names.

    Raises:
        ValidationError: a name is empty, too long or path-like.

    """
    validate_team_name(from_team, field="fromTeam")
    validate_team_name(team, field=team_field)
    return Pair(from_team, team)


def configured_team(config: IrisConfig, name: str) -> TeamConfig:
    """Return the team's configuration.

    Raises:
        TeamNotFoundError: no such team in the config.

    """
    team = config.teams.get(name)
    if team is None:
        raise TeamNotFoundError(f"Unknown team: {name}", details={"team": name})
    return team
