"""The pool under races, driven through IrisService with real Claude Code against the offline model."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from iris_core.config import load_config
from iris_core.errors import ProcessPoolLimitError
from iris_core.service import IrisService
from iris_core.transcripts import find_transcripts
from iris_offline_model import OfflineModel, offline_model_env
from tests.harness import live_processes_in, write_config


def live_claude_pids(root: Path) -> list[int]:
    return live_processes_in(root / "teams")


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


async def until(predicate: Callable[[], Any], seconds: float = 30) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_a_message_right_after_sleep_starts_a_new_process(tmp_path: Path) -> None:
    async with open_service(tmp_path) as service:
        await send(service, "alpha", "remember lime")
        sleeping = asyncio.create_task(service.team_sleep(team="alpha", from_team="c"))
        reply = await send(service, "alpha", "recall")
        assert (await sleeping)["status"] == "asleep"
        assert reply["status"] == "completed" and reply["response"] == "you told me: lime"


async def test_max_processes_bounds_live_claude_processes_under_a_burst_of_pairs(tmp_path: Path) -> None:
    async with open_service(tmp_path, maxProcesses=1) as service:
        peak = 0
        stop = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, len(live_claude_pids(tmp_path)))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        await send(service, "alpha", "say a")
        outcomes = await asyncio.gather(
            *(
                send(service, team, f"say {team} {i}")
                for i in range(3)
                for team in ("beta", "alpha", "gamma")
            ),
            return_exceptions=True,
        )
        stop.set()
        await watcher
        answered = [o for o in outcomes if isinstance(o, dict)]
        refused = [o for o in outcomes if isinstance(o, ProcessPoolLimitError)]
        assert len(answered) + len(refused) == len(outcomes), outcomes
        assert answered and all(o["status"] == "completed" for o in answered)
        assert peak == 1
        assert service._pool.process_count == 1
        assert len(live_claude_pids(tmp_path)) == 1


async def test_with_every_slot_busy_a_refused_message_creates_no_session(tmp_path: Path) -> None:
    async with open_service(tmp_path, maxProcesses=1) as service:
        await send(service, "alpha", "slow 50 100", timeout_ms=-1)
        await until(lambda: _running(service, "alpha"))
        with pytest.raises(ProcessPoolLimitError):
            await send(service, "beta", "say b")
        status = await service.team_status(from_team="c", team="beta")
        assert status["teams"][0]["sessionId"] == ""
        await service.session_cancel(team="alpha", from_team="c")


async def _running(service: IrisService, team: str) -> bool:
    status = await service.team_status(from_team="c", team=team)
    return bool(status["teams"][0]["notifications"]["running"])


async def test_shutdown_during_cold_starts_leaves_no_claude_process(tmp_path: Path) -> None:
    async with open_service(tmp_path) as service:
        await service.team_wake(team="alpha", from_team="c")
        await send(service, "beta", "say hi", timeout_ms=-1)  # its process is starting
        waking = asyncio.create_task(service.team_wake(team="gamma", from_team="c"))
        await asyncio.sleep(0)  # let the wake begin its start
    assert live_claude_pids(tmp_path) == []
    with pytest.raises(ProcessPoolLimitError):
        await waking


async def test_reboot_during_a_cold_start_leaves_no_trace_of_the_old_session(tmp_path: Path) -> None:
    async with open_service(tmp_path) as service:
        await send(service, "alpha", "remember old", timeout_ms=0)
        await service.team_sleep(team="alpha", from_team="c")
        first = await send(service, "alpha", "say starting", timeout_ms=-1)  # a new process is starting
        reboot = await service.session_reboot(to_team="alpha", from_team="c")
        assert reboot["oldSessionId"] == first["sessionId"] != reboot["newSessionId"]
        after = await send(service, "alpha", "recall")
        assert after["sessionId"] == reboot["newSessionId"]
        assert after["response"] == "you told me: nothing"
        env = {**os.environ, **service._pool.claude_env(service.config.teams["alpha"])}
        assert find_transcripts(env, first["sessionId"]) == []
        report = await service.session_report(team="alpha", from_team="c")
        assert [e["request"] for e in report["entries"]] == ["recall"]


async def test_persisted_turns_beyond_max_processes_wait_for_a_slot_after_restart(tmp_path: Path) -> None:
    async with open_service(tmp_path, maxProcesses=3) as service:
        for team in ("alpha", "beta", "gamma"):
            await send(service, team, "slow 30 100", timeout_ms=-1, persist=True)
        for team in ("alpha", "beta", "gamma"):
            await until(lambda team=team: _running(service, team))  # type: ignore[misc]
    async with open_service(tmp_path, maxProcesses=1) as service:

        async def all_completed() -> bool:
            reports = [
                await service.session_report(team=t, from_team="c") for t in ("alpha", "beta", "gamma")
            ]
            return all(r["entries"][0]["status"] == "completed" for r in reports)

        await until(all_completed, 60)
        assert service._pool.process_count <= 1


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


async def test_sleep_without_force_refuses_when_a_message_was_queued_during_a_start(tmp_path: Path) -> None:
    async with open_service(tmp_path) as service:
        queued = await send(service, "alpha", "say queued first", timeout_ms=-1)  # its process is starting
        try:
            slept = await service.team_sleep(team="alpha", from_team="c")
        except Exception as exc:  # noqa: BLE001 - the refusal is one of two allowed outcomes
            assert getattr(exc, "reason", "") == "PreconditionFailedError"
        else:
            assert slept["status"] == "already_asleep"
        report = await service.session_report(team="alpha", from_team="c")
        await until(lambda: _completed(service, queued["messageId"]))
        assert report["entries"][0]["status"] != "cancelled"


async def _completed(service: IrisService, message_id: str) -> bool:
    report = await service.session_report(team="alpha", from_team="c")
    return any(e["messageId"] == message_id and e["status"] == "completed" for e in report["entries"])
