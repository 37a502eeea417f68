"""Wall-clock and monotonic time in the units the contract uses (milliseconds)."""

from __future__ import annotations

import time

__all__ = ["monotonic_ms", "now_ms"]


def now_ms() -> int:
    """Return Unix time in milliseconds (timestamps on the wire and in records)."""
    return time.time_ns() // 1_000_000


def monotonic_ms() -> float:
    """Return a monotonic clock in milliseconds (durations; immune to wall-clock changes)."""
    return time.monotonic() * 1000.0
