"""Where Claude Code keeps a session's transcript, so reboot and delete can remove it.

Claude Code writes ``<config dir>/projects/<escaped cwd>/<session id>.jsonl``, where the config dir is
``$CLAUDE_CONFIG_DIR`` or ``$HOME/.claude`` of the Claude process. Session ids are uuids, so the file is found
by name under every project folder rather than by re-deriving Claude Code's escaping of the cwd.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["claude_config_dir", "find_transcripts", "remove_transcripts"]


def claude_config_dir(env: Mapping[str, str]) -> Path:
    """Return the config dir a Claude process with environment ``env`` uses."""
    explicit = env.get("CLAUDE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    return Path(env.get("HOME") or Path.home()) / ".claude"


def find_transcripts(env: Mapping[str, str], session_id: str) -> list[Path]:
    """Return the transcript files of ``session_id`` (usually one)."""
    projects = claude_config_dir(env) / "projects"
    if not projects.is_dir():
        return []
    return sorted(projects.glob(f"*/{session_id}.jsonl"))


def remove_transcripts(env: Mapping[str, str], session_id: str) -> int:
    """Delete the transcript files of ``session_id``; return how many were removed."""
    removed = 0
    for path in find_transcripts(env, session_id):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
