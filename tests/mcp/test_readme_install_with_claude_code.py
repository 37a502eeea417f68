"""The README's one line, end to end: `iris mcp install --write`, then Claude Code in that project uses Iris.

Claude Code is the bundled CLI (`claude -p`), driven by the offline model to call mcp__iris__ask_message; it
starts the adapter from the written .mcp.json, which reaches Iris over gRPC and team beta's Claude Code.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import claude_agent_sdk

from iris_offline_model import offline_model_env
from mcp_adapter.cli import main as iris_mcp
from tests.harness import Iris, live_processes_in

CLAUDE = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


async def test_a_project_registered_by_the_readme_line_can_ask_a_team(iris: Iris, tmp_path: Path) -> None:
    project = tmp_path / "newcomer"
    project.mkdir()
    assert (
        iris_mcp(
            [
                "install",
                "--write",
                "--project",
                str(project),
                "--from-team",
                "newcomer",
                "--target",
                iris.target,
            ]
        )
        == 0
    )
    # Interactive Claude Code asks once to trust a project's .mcp.json servers; `claude -p` needs it said.
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.local.json").write_text(json.dumps({"enableAllProjectMcpServers": True}))
    home = tmp_path / "newcomer-home"
    home.mkdir()
    model = iris.running.offline_model
    assert model is not None
    env = {
        **os.environ,
        **offline_model_env(model.base_url),
        "HOME": str(home),
        "IRIS_API_KEY": iris.admin_key,
    }
    prompt = 'tool mcp__iris__ask_message {"toTeam": "beta", "message": "say hello newcomer"}'
    claude = await asyncio.create_subprocess_exec(
        str(CLAUDE), "-p", prompt, "--output-format", "json", "--allowedTools", "mcp__iris",
        cwd=project, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            out, err = await claude.communicate()
    finally:
        if claude.returncode is None:
            claude.kill()
            await claude.wait()
    assert claude.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    assert not result["is_error"]
    answer = json.loads(result["result"].removeprefix("tool result: "))
    assert answer["response"] == "hello newcomer" and answer["fromTeam"] == "newcomer"
    async with asyncio.timeout(10):  # the adapter Claude Code started ends with it (stdin closed)
        while live_processes_in(project):
            await asyncio.sleep(0.05)
