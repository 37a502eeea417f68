"""Record writes that fail, driven through IrisService with real Claude Code against the offline model.

The failure is injected by patching the store, a private of the core, until the product has a hook for it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from iris_core.config import load_config
from iris_core.service import IrisService
from iris_offline_model import OfflineModel, offline_model_env
from tests.harness import write_config


@asynccontextmanager
async def open_service(root: Path, **settings: Any) -> AsyncIterator[IrisService]:
    os.environ.setdefault("CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK", "1")
    async with OfflineModel() as model:
        config = load_config(write_config(root, settings=settings))
        service = await IrisService.open(
            config, root / "iris-home", extra_env=offline_model_env(model.base_url)
        )
        try:
            yield service
        finally:
            await service.aclose()


async def send(service: IrisService, to: str, text: str, timeout_ms: int = 0, **kw: Any) -> dict[str, Any]:
    async with asyncio.timeout(60):
        return await service.send_message(
            from_team="c", to_team=to, message=text, timeout_ms=timeout_ms, **kw
        )


async def test_a_failing_record_write_neither_fails_the_turn_nor_stops_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_service(tmp_path) as service:
        store = service._pool._store
        real_end = store.finish_turn

        async def disk_full(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(store, "finish_turn", disk_full)
        reply = await send(service, "alpha", "say answered from memory")
        assert reply["status"] == "completed" and reply["response"] == "answered from memory"
        assert (await send(service, "beta", "say still serving"))["response"] == "still serving"
        monkeypatch.setattr(store, "finish_turn", real_end)
        assert (await send(service, "alpha", "say alpha too"))["response"] == "alpha too"
        assert any("could not record" in r.getMessage() for r in caplog.records)
        report = await service.session_report(team="alpha", from_team="c")
        assert [e["status"] for e in report["entries"]] == ["queued", "completed"]
