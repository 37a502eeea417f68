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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .transcripts import find_transcripts, remove_transcripts

__all__ = ["REFUSAL", "Rewind", "plan_rewind", "prompt_uuid"]

_NAMESPACE = uuid.UUID("5f0c8e52-3b8e-4a53-9d35-6f1d2f7c0b91")
"""Fixed namespace of Iris's prompt uuids (uuid5), so the same message and attempt give the same uuid."""

_SCAN_BYTES = 64 * 1024 * 1024
_MAX_LINE_BYTES = 1024 * 1024
"""A prompt's entry is at most the message limit (100 KB) and some fields; longer lines are skipped."""

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


def plan_rewind(env: Mapping[str, str], session_id: str, prompts: Sequence[str]) -> Rewind | None:
    """Find the latest of ``prompts`` in the session's transcript and say where to resume; None if none is.

    ``prompts`` are the uuids an attempt cut off may have had (the one recorded, and the next, in case its
    count could not be written). The transcript is read in a worker thread, from its last 64 MiB only (the
    cut-off turn was its last) and a line of at most 1 MiB at a time, so neither time nor memory grows with
    the session, nor with what a contained team puts in its place. When the prompt opened the session, the
    transcript holds nothing else of the conversation and is removed here.
    """
    for path in find_transcripts(env, session_id):
        found = _latest_entry_with_uuid(path, frozenset(prompts))
        if found is None:
            continue
        prompt, parent = str(found["uuid"]), found.get("parentUuid")
        if isinstance(parent, str) and parent:
            return Rewind(prompt, parent)
        remove_transcripts(env, session_id)
        return Rewind(prompt, None)
    return None


def _latest_entry_with_uuid(path: Path, wanted: frozenset[str]) -> dict[str, object] | None:
    # The transcript sits in the team's home, which a contained team's Claude controls: open only a regular
    # file, never through a symlink and never blocking (a FIFO in its place would stall the reading thread).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    latest: dict[str, object] | None = None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, "rb", closefd=False) as transcript:
            start = max(os.fstat(fd).st_size - _SCAN_BYTES, 0)
            transcript.seek(start)
            whole = start == 0  # else the first line read is the tail of one cut by the seek
            while line := transcript.readline(_MAX_LINE_BYTES):
                complete = line.endswith(b"\n")
                if whole and complete and any(uuid.encode() in line for uuid in wanted):
                    entry = _json_object(line)
                    if entry is not None and entry.get("uuid") in wanted:
                        latest = entry
                whole = complete
    except OSError:
        return latest
    finally:
        os.close(fd)
    return latest


def _json_object(line: bytes) -> dict[str, object] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None
