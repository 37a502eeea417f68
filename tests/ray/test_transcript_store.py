"""Iris's copy of Ray-placed transcripts (``transcripts.db``): order, once per uuid, subagents, reopening."""

from __future__ import annotations

import stat
from pathlib import Path

from iris_core.placement.ray_store import TranscriptStore


async def test_entries_come_back_in_order_by_subpath_and_an_entry_seen_before_is_kept_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "transcripts.db"
    async with TranscriptStore(path) as store:
        assert await store.load("s1") == {}
        await store.append("s1", "", [{"uuid": "a", "n": 1}, {"type": "tag", "n": 2}])
        await store.append("s1", "", [{"uuid": "a", "n": 1}, {"uuid": "b", "n": 3}])  # a batch sent again
        await store.append("s1", "subagents/agent-x", [{"uuid": "a", "n": 4}])
        await store.append("s2", "", [{"uuid": "c", "n": 5}])
        await store.append("s1", "", [])
    async with TranscriptStore(path) as reopened:
        loaded = await reopened.load("s1")
    assert loaded == {
        "": [{"uuid": "a", "n": 1}, {"type": "tag", "n": 2}, {"uuid": "b", "n": 3}],
        "subagents/agent-x": [{"uuid": "a", "n": 4}],
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # whole conversations: the owner's only
