"""Exactly once in the conversation: a persisted turn cut off by kill -9 of Iris runs again, seen once.

The model is the test's own offline model (not one inside the killed server), so what Claude Code sent it
before and after the crash can be counted; the transcript's live chain is read from Claude Code's own file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from iris_offline_model import OfflineModel, offline_model_env
from iris_offline_model.script import user_text
from tests.harness import iris_serve, write_config

CUT = "slow 30 100"
"""The turn the crash cuts off: 30 chunks, 100 ms apart."""


def mentions(body: Mapping[str, Any], text: str) -> int:
    """How many times ``text`` appears in the user messages of a request the model received."""
    count = 0
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        count += sum(block.get("text", "").count(text) for block in blocks if block.get("type") == "text")
    return count


def live_chain_prompts(claude_home: Path, session_id: str) -> list[str]:
    """The user prompts on the transcript's live chain (from its newest entry back along ``parentUuid``)."""
    (path,) = (claude_home / ".claude" / "projects").glob(f"*/{session_id}.jsonl")
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_uuid = {e["uuid"]: e for e in entries if e.get("uuid")}
    node: dict[str, Any] | None = [e for e in entries if e.get("uuid")][-1]
    prompts: list[str] = []
    while node is not None:
        content = node.get("message", {}).get("content") if node.get("type") == "user" else None
        if isinstance(content, str):
            prompts.append(content)
        node = by_uuid.get(node.get("parentUuid") or "")
    return prompts[::-1]


async def entry_of(stub: iris_pb2_grpc.IrisAsyncStub, message_id: str) -> pb.ReportEntry:
    report = await stub.SessionReport(pb.SessionReportRequest(team="alpha", from_team="caller"), timeout=10)
    (entry,) = [e for e in report.entries if e.message_id == message_id]
    return entry


async def send(stub: iris_pb2_grpc.IrisAsyncStub, text: str, **fields: Any) -> pb.SendMessageResponse:
    request = pb.SendMessageRequest(from_team="caller", to_team="alpha", message=text, **fields)
    return await stub.SendMessage(request, timeout=60)


@pytest.mark.parametrize("history", [True, False], ids=["after-other-turns", "first-turn-of-the-session"])
async def test_a_persisted_turn_cut_off_by_kill_9_reaches_model_and_transcript_once(
    tmp_path: Path, history: bool
) -> None:
    claude_home = tmp_path / "claude-home"
    async with OfflineModel(host="127.0.0.1", port=0) as model:
        env = {**offline_model_env(model.base_url), "HOME": str(claude_home)}
        config = write_config(tmp_path, settings={"env": env})
        async with iris_serve(tmp_path, config, offline_model=False) as served:
            if history:
                assert (await send(served.stub, "hello one")).status == "completed"
            accepted = await send(served.stub, CUT, timeout=-1, persist=True)
            async with asyncio.timeout(30):  # Claude Code sent the prompt, and the answer is streaming
                while not any(user_text(body) == CUT for body in model.requests):
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.5)
            served.process.kill()
            await asyncio.wait_for(served.process.wait(), 15)
        assert (await asyncio.to_thread(lambda: len(model.requests))) > 0
        sent_before = len(model.requests)

        async with iris_serve(tmp_path, config, offline_model=False) as served:
            async with asyncio.timeout(60):
                while (entry := await entry_of(served.stub, accepted.message_id)).status != "completed":
                    await asyncio.sleep(0.05)
            assert (await send(served.stub, "hello three")).status == "completed"
            report = await served.stub.SessionReport(
                pb.SessionReportRequest(team="alpha", from_team="caller"), timeout=10
            )

    rerun = [body for body in model.requests[sent_before:] if user_text(body) == CUT]
    assert rerun, "the cut-off turn did not run again"
    # The model saw the cut-off prompt once, in the re-run and in the turn after it; history intact.
    assert [mentions(body, CUT) for body in rerun] == [1] * len(rerun)
    after = [body for body in model.requests[sent_before:] if user_text(body) == "hello three"]
    assert [mentions(body, CUT) for body in after] == [1]
    assert mentions(after[0], "hello one") == (1 if history else 0)
    # Claude Code's own transcript: the conversation holds the turn once, between its neighbours.
    expected = ["hello one"] if history else []
    assert live_chain_prompts(claude_home, report.session_id) == [*expected, CUT, "hello three"]
    # The record counts both attempts, and holds the whole answer of the second.
    assert entry.attempts == 2 and entry.response.count("chunk") >= 30, entry
