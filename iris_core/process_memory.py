"""How much memory a Claude Code process holds, as the kernel counts it (for TeamStatus and the dashboard)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["resident_bytes"]


def resident_bytes(pid: int) -> int:
    """Return the resident set size of a process in bytes (VmRSS), or 0 when it cannot be read.

    One small read of ``/proc/<pid>/status``: cheap enough for every status call, and 0 on a system without
    procfs or for a process that has just gone.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0
