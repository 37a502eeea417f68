"""Per-key rate limits: a token bucket of ``maxRequests`` refilled evenly over ``windowMs``.

A bucket starts full, so a key may burst up to its limit and then gets one request per window/limit. Every
decision carries what the transports show as X-RateLimit-Limit / -Remaining / -Reset.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of taking one request from a bucket."""

    allowed: bool
    """False when the bucket was empty."""
    limit: int
    """The bucket's size."""
    remaining: int
    """Whole requests left after this one."""
    reset_at_s: int
    """Unix seconds at which the bucket is full again."""
    retry_after_s: float
    """Seconds until one request is allowed (0 when allowed)."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """One bucket per key; in memory (a restart refills them, which errs on the side of the caller)."""

    def __init__(
        self, window_ms: int, default_limit: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window_s = window_ms / 1000
        self._default = default_limit
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key_id: str, limit: int = 0) -> RateDecision:
        """Take one request for ``key_id`` from a bucket of ``limit`` (0: the default)."""
        size = limit or self._default
        rate = size / self._window_s  # tokens per second
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(size), now)
        bucket.tokens = min(float(size), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        full_in = (size - bucket.tokens) / rate
        return RateDecision(
            allowed=allowed,
            limit=size,
            remaining=math.floor(bucket.tokens),
            reset_at_s=math.ceil(time.time() + full_in),
            retry_after_s=0.0 if allowed else (1.0 - bucket.tokens) / rate,
        )
