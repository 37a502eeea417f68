"""Exactly once in the conversation: a turn cut off by a stop or crash of Iris is re-run on a rewound session.

A persisted turn that was running when Iris stopped (or died) runs again at the next start. Its prompt, and
perhaps part of an answer, are already in Claude Code's transcript, so a plain resume would show the model
the same message twice. Instead:

- every prompt Iris sends carries a uuid of its own choosing (``prompt_uuid``: the message id and the
  attempt), which Claude Code keeps as the transcript entry's ``uuid``;
- before a persisted turn's prompt is sent, the record counts the attempt (``Store.record_attempt``), so the
  next start knows which prompt to look for;
- at the re-run, the pair's new process resumes the session at the entry before that prompt
  (``resume_session_at``) and declares the attempt's prompt dropped (``resume_drops_turn``), which Claude
  Code checks: it refuses if anything else would be lost, and Iris then resumes plainly (logged).

A prompt that never reached the transcript needs no rewind; one that opened the session means the whole
transcript is that attempt, so it is removed and the session starts afresh under the same id.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .transcripts import find_transcripts, remove_transcripts

__all__ = ["REFUSAL", "Rewind", "plan_rewind", "prompt_uuid"]

_NAMESPACE = uuid.UUID("5f0c8e52-3b8e-4a53-9d35-6f1d2f7c0b91")
"""Fixed namespace of Iris's prompt uuids (uuid5), so the same message and attempt give the same uuid."""

REFUSAL = "Resume rejected by --resume-drops-turn"
"""How Claude Code's refusal of a rewind begins (it would drop entries not of the declared turn)."""


def prompt_uuid(message_id: str, attempt: int) -> str:
    """Return the uuid of the prompt of ``message_id``'s attempt number ``attempt`` (1 for the first)."""
    return str(uuid.uuid5(_NAMESPACE, f"{message_id}/{attempt}"))


@dataclass(frozen=True, slots=True)
class Rewind:
    """Where the pair's next process resumes so that one cut-off attempt is dropped from the conversation."""

    prompt: str
    """The dropped attempt's prompt uuid."""
    resume_at: str | None
    """The transcript entry just before it; None when the prompt opened the session (no resume at all)."""


def plan_rewind(env: Mapping[str, str], session_id: str, prompt: str) -> Rewind | None:
    """Find ``prompt`` in the session's transcript and say where to resume; None if it never got there.

    Reads the transcript line by line (in a worker thread: it grows with the session). When the prompt
    opened the session, the transcript holds nothing else of the conversation and is removed here.
    """
    transcripts = find_transcripts(env, session_id)
    for path in transcripts:
        found = _entry_with_uuid(path, prompt)
        if found is None:
            continue
        parent = found.get("parentUuid")
        if isinstance(parent, str) and parent:
            return Rewind(prompt, parent)
        remove_transcripts(env, session_id)
        return Rewind(prompt, None)
    return None


def _entry_with_uuid(path: Path, wanted: str) -> dict[str, object] | None:
    # The transcript sits in the team's home, which a contained team's Claude controls: open only a regular
    # file, never through a symlink and never blocking (a FIFO in its place would stall the reading thread).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, encoding="utf-8", errors="replace", closefd=False) as lines:
            for line in lines:
                if wanted not in line:  # cheap: most lines are not it
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("uuid") == wanted:
                    return entry
    except OSError:
        return None
    finally:
        os.close(fd)
    return None
