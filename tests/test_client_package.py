"""The contract kit installs alone: a fresh virtualenv with only clients/python installed talks to Iris."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.harness import start_iris

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "python"


async def run(*argv: str, env: dict[str, str] | None = None, within_s: float = 240) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    try:
        async with asyncio.timeout(within_s):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


async def test_the_client_package_installs_alone_and_its_examples_run(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    await run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    await run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(CLIENT))
    installed = await run(python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check")
    assert "iris-client==0.1.0" in installed
    assert not {"iris", "claude-agent-sdk", "fastapi", "mcp"} & {
        line.split("==")[0].lower() for line in installed.splitlines()
    }
    async with start_iris(tmp_path / "server") as iris:
        env = {"PATH": os.environ.get("PATH", ""), "IRIS_API_KEY": iris.admin_key}
        example = str(CLIENT / "examples" / "list_and_tell.py")
        out = await run(python, example, iris.target, "alpha", "chunks one|two", env=env, within_s=60)
        client_example = str(CLIENT / "examples" / "ask_and_stream.py")
        env["IRIS_ADDRESS"] = iris.target
        answered = await run(python, client_example, "beta", env=env, within_s=60)
    assert answered.splitlines()[0].startswith("answer: echo: What database do we use? (msg_")
    assert answered.splitlines()[1] == "echo: Explain auth"
    assert out.splitlines() == [
        "teams: alpha, beta, gamma",
        "start ",
        "chunk one",
        "chunk two",
        "complete completed",
    ]
