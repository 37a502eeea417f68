"""The offline model keeps a bounded amount of what Claude Code sent it, however long a session grows.

Claude Code sends a session's whole history with every turn, so its request bodies grow turn after turn (about
50 KB each from the first turn, for the system prompt and tools). The model once kept its newest 1000 bodies,
parsed: bounded in count but not in bytes, and a served Iris with ``--offline-model`` grew by hundreds of MB
(quadratically in a session's length) holding bodies nobody read. It now keeps raw bodies, up to
``keep_bytes``.

The model is the test's own, with a small ``keep_bytes``, so a few real turns go past it.
"""

from __future__ import annotations

import json
from pathlib import Path

from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_offline_model import OfflineModel, offline_model_env
from iris_offline_model.script import user_text
from tests.harness import iris_serve, write_config

KEEP_BYTES = 200_000
TURNS = 12


async def test_a_growing_session_keeps_only_the_newest_bodies_within_keep_bytes(tmp_path: Path) -> None:
    async with OfflineModel(host="127.0.0.1", port=0, keep_bytes=KEEP_BYTES) as model:
        env = {**offline_model_env(model.base_url), "HOME": str(tmp_path / "claude-home")}
        config = write_config(tmp_path, settings={"env": env})
        async with iris_serve(tmp_path, config, offline_model=False) as served:
            for number in range(TURNS):
                message = f"say turn {number}"
                request = pb.SendMessageRequest(from_team="caller", to_team="alpha", message=message)
                reply = await served.stub.SendMessage(request, timeout=60)
                assert (reply.status, reply.response) == ("completed", f"turn {number}")
        kept = model.requests

    assert 0 < model.recorded_bytes <= KEEP_BYTES
    assert 1 <= len(kept) < TURNS
    assert user_text(kept[-1]) == f"say turn {TURNS - 1}"
    # Why bytes and not a count bound them: the newest body still carries the first turn.
    assert "say turn 0" in json.dumps(kept[-1]["messages"])
