"""A team's own Claude settings (env, disallowedTools, model) reach the Claude Code process running its turns.

The model is checked where it ends up: the Messages API request Claude Code sends to the offline model, which
keeps the bodies it received (``OfflineModel.requests``, public for tests); the rest is seen in the turn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.harness import Iris, start_iris, tell_events, write_config

TEAM_MODEL = "claude-team-alpha-model"


def bash(command: str) -> str:
    """A script line making the offline model call Bash with ``command``."""
    return "tool Bash " + json.dumps({"command": command, "description": "run a command"})


async def turn(iris: Iris, message: str, to: str = "alpha") -> list[pb.TellResponse]:
    events = await tell_events(iris, pb.TellRequest(from_team="caller", to_team=to, message=message))
    assert events[-1].WhichOneof("event") == "complete", events[-1]
    return events


def tools_used(events: list[pb.TellResponse]) -> list[str]:
    return [e.tool_use.tool for e in events if e.WhichOneof("event") == "tool_use"]


def requests_with(iris: Iris, words: str) -> list[dict[str, Any]]:
    """Messages API bodies the offline model received whose text mentions ``words``."""
    model = iris.running.offline_model
    assert model is not None
    return [body for body in model.requests if words in json.dumps(body.get("messages", []))]


async def test_a_teams_env_is_visible_to_its_bash_and_wins_over_the_settings_env(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        settings={"env": {"HOME": str(tmp_path / "claude-home"), "IRIS_T_MARK": "from-settings"}},
        teams={"alpha": {"env": {"IRIS_T_MARK": "from-alpha", "IRIS_T_ONLY": "alpha-only"}}},
    )
    async with start_iris(tmp_path, config) as iris:
        alpha = await turn(iris, bash('echo "mark=$IRIS_T_MARK only=${IRIS_T_ONLY:-unset}"'))
        beta = await turn(iris, bash('echo "mark=$IRIS_T_MARK only=${IRIS_T_ONLY:-unset}"'), to="beta")
    assert tools_used(alpha) == ["Bash"]
    assert "mark=from-alpha only=alpha-only" in alpha[-1].complete.response
    assert "mark=from-settings only=unset" in beta[-1].complete.response


async def test_a_tool_in_disallowed_tools_is_refused_while_another_tool_runs(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"disallowedTools": ["Write"]}})
    async with start_iris(tmp_path, config) as iris:
        folder = iris.config.teams["alpha"].path
        write = "tool Write " + json.dumps({"file_path": str(folder / "written.txt"), "content": "nope"})
        refused = await turn(iris, write)
        ran = await turn(iris, bash("echo bash-ran > ran.txt && cat ran.txt"))
        other_team = await turn(
            iris, write.replace(str(folder), str(iris.config.teams["beta"].path)), to="beta"
        )
        offered = {
            tool["name"]
            for body in requests_with(iris, "tool Write")
            if str(folder) in json.dumps(body["messages"])
            for tool in body.get("tools", [])
        }
    complete = refused[-1].complete
    assert complete.status == "completed"
    assert complete.response.startswith("tool result")
    assert "No such tool available: Write" in complete.response
    assert not (folder / "written.txt").exists()
    assert "Write" not in offered and "Bash" in offered  # Claude Code did not even offer it to the model
    assert "bash-ran" in ran[-1].complete.response and (folder / "ran.txt").exists()
    assert (iris.config.teams["beta"].path / "written.txt").read_text() == "nope"  # beta has no such rule
    assert tools_used(other_team) == ["Write"]


async def test_a_teams_model_is_the_model_its_claude_code_asks_for(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"alpha": {"model": TEAM_MODEL}})
    async with start_iris(tmp_path, config) as iris:
        alpha = await turn(iris, "say model-check-alpha")
        beta = await turn(iris, "say model-check-beta", to="beta")
        alpha_models = {body["model"] for body in requests_with(iris, "model-check-alpha")}
        beta_models = {body["model"] for body in requests_with(iris, "model-check-beta")}
    assert alpha[-1].complete.response == "model-check-alpha"
    assert beta[-1].complete.response == "model-check-beta"
    assert alpha_models == {TEAM_MODEL}
    assert beta_models and TEAM_MODEL not in beta_models
