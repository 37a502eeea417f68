"""``iris mcp install``: the lines that register Iris with Claude Code in a project.

It prints (or, with ``--write``, merges into the project's ``.mcp.json``) a stdio server named ``iris``
that runs this installation's adapter. The API key is never written: the entry reads ``${IRIS_API_KEY}``,
which Claude Code expands from its own environment when it starts the server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["McpInstallError", "adapter_command", "default_team", "server_entry", "write_mcp_json"]

KEY_REFERENCE = "${IRIS_API_KEY}"
"""How the entry names the key: expanded by Claude Code at start, so the file holds no secret."""


class McpInstallError(Exception):
    """The project's .mcp.json cannot be updated (it is not a JSON object); nothing was written."""


def adapter_command() -> list[str]:
    """Return the argv that starts this installation's adapter: the ``iris`` script beside this Python."""
    script = Path(sys.executable).parent / "iris"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "mcp"]
    return [sys.executable, "-m", "mcp_adapter"]


def default_team(project: Path) -> str:
    """Return a team name for a project: its folder's name, made a valid team name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", project.resolve().name).strip("-._")
    return name or "team"


def server_entry(*, from_team: str, target: str, tls_ca: Path | None = None) -> dict[str, Any]:
    """Return the ``mcpServers.iris`` entry of a project's .mcp.json."""
    command = adapter_command()
    args = [*command[1:], "--from-team", from_team, "--target", target]
    if tls_ca is not None:
        args += ["--tls-ca", str(tls_ca.resolve())]
    return {"type": "stdio", "command": command[0], "args": args, "env": {"IRIS_API_KEY": KEY_REFERENCE}}


def claude_mcp_add_line(entry: dict[str, Any], name: str) -> str:
    """Return the ``claude mcp add`` command that registers ``entry`` (project scope)."""
    argv = ["claude", "mcp", "add", "--scope", "project", "-e", f"IRIS_API_KEY={KEY_REFERENCE}", name, "--"]
    return shlex.join([*argv, entry["command"], *entry["args"]])


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_mcp_json(project: Path, name: str, entry: dict[str, Any]) -> Path:
    """Merge ``entry`` as ``mcpServers[name]`` into ``project/.mcp.json``, keeping every other server.

    The file is replaced atomically, so a failure leaves the old one whole.

    Raises:
        McpInstallError: the existing file is not a JSON object with an object ``mcpServers``.

    """
    path = project / ".mcp.json"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise McpInstallError(f"{path} is not valid JSON ({exc}); fix or remove it first") from exc
        if not isinstance(loaded, dict) or not isinstance(loaded.get("mcpServers", {}), dict):
            raise McpInstallError(f"{path} must be a JSON object whose mcpServers is an object")
        data = loaded
    data.setdefault("mcpServers", {})[name] = entry
    fd, temporary = tempfile.mkstemp(prefix=".mcp.json.", dir=project)
    try:
        # mkstemp makes it 0600; the file holds no secret and is meant to be shared with the project.
        os.fchmod(fd, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
