"""A failing record write (disk full) fails neither the turn, which answers from memory, nor the pool."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_core.access import Caller
from iris_core.config import load_config
from iris_core.service import IrisService
from iris_core.store import Store
from iris_offline_model import OfflineModel, offline_model_env
from tests.harness import write_config


class DiskFullStore(Store):
    """A record whose final turn writes fail while ``full`` is set (the documented ``store`` seam)."""

    full = True

    async def finish_turn(self, message_id: str, **fields: Any) -> None:
        if self.full:
            raise OSError("disk full")
        await super().finish_turn(message_id, **fields)


async def send(service: IrisService, to: str, text: str) -> pb.SendMessageResponse:
    request = pb.SendMessageRequest(from_team="c", to_team=to, message=text, timeout=0)
    async with asyncio.timeout(60):
        return await service.messages.send_message(request, Caller())


async def test_a_failing_record_write_neither_fails_the_turn_nor_stops_the_pool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.environ.setdefault("CLAUDE_AGENT_SDK_SKIP_VERSION_CHECK", "1")
    store = DiskFullStore(tmp_path / "iris-home" / "iris.db")
    caplog.set_level(logging.ERROR, logger="iris_core")
    async with OfflineModel() as model:
        config = load_config(write_config(tmp_path))
        env = offline_model_env(model.base_url)
        async with await IrisService.open(
            config, tmp_path / "iris-home", extra_env=env, store=store
        ) as service:
            reply = await send(service, "alpha", "say answered from memory")
            assert (reply.status, reply.response) == ("completed", "answered from memory")
            assert (await send(service, "beta", "say still serving")).response == "still serving"
            store.full = False
            assert (await send(service, "alpha", "say alpha too")).response == "alpha too"
            report = await service.sessions.session_report(
                pb.SessionReportRequest(team="alpha", from_team="c"), Caller()
            )
    assert any("could not record" in r.getMessage() for r in caplog.records)
    assert [e.status for e in report.entries] == ["queued", "completed"]
