"""An SDK that no longer keeps its child where the launch seam reads it stops Iris at start-up, by name."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk._internal.transport import subprocess_cli

from iris_core.config import load_config
from iris_core.errors import ConfigurationError
from iris_core.service import IrisService
from tests.harness import write_config


async def test_iris_refuses_to_start_on_an_sdk_that_moved_its_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_init = subprocess_cli.SubprocessCLITransport.__init__

    def moved(self: Any, *args: Any, **kwargs: Any) -> None:  # as if a new SDK renamed the attribute
        real_init(self, *args, **kwargs)
        self._child = self.__dict__.pop("_process")

    monkeypatch.setattr(subprocess_cli.SubprocessCLITransport, "__init__", moved)
    config = load_config(write_config(tmp_path))
    with pytest.raises(ConfigurationError) as refused:
        await IrisService.open(config, tmp_path / "iris-home")
    version = importlib.metadata.version("claude-agent-sdk")
    assert (
        f"claude-agent-sdk {version} no longer exposes the Claude Code child process" in refused.value.message
    )
    assert not (tmp_path / "iris-home" / "iris.db").exists()  # refused before anything was opened
