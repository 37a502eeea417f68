"""The iris command line: a bad config stops start-up with one clear message."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def run_iris(*args: str) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "iris_app.cli", *args, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        _, err = await child.communicate()
    assert child.returncode is not None
    return child.returncode, err.decode()


async def test_a_bad_config_stops_start_up_naming_file_key_and_problem(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    config = tmp_path / "broken.yaml"
    config.write_text("settings:\n  maxProcesses: many\nteams:\n  alpha:\n    path: ./team\n")
    code, err = await run_iris("serve", "--config", str(config), "--home", str(tmp_path / "home"))
    assert code == 2
    assert "broken.yaml" in err and "settings.maxProcesses" in err and "many" in err
    assert "Traceback" not in err
    assert not (tmp_path / "home").exists(), "nothing may be created when the config is refused"


async def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("settings:\n  maxProcess: 2\nteams:\n  alpha:\n    path: ./team\n")
    code, err = await run_iris("serve", "--config", str(config))
    assert code == 2 and "settings.maxProcess" in err and "maxProcesses" in err
