"""The rate limiter's token bucket, on a clock the test moves by hand."""

from __future__ import annotations

import time

import pytest

from iris_core.ratelimit import RateLimiter


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_trips_at_its_count_after_counting_down() -> None:
    limiter = RateLimiter(600, 3, clock=FakeClock())
    taken = [limiter.take("k") for _ in range(3)]
    assert [d.allowed for d in taken] == [True, True, True]
    assert [d.remaining for d in taken] == [2, 1, 0]
    assert all(d.limit == 3 and d.retry_after_s == 0 for d in taken)
    refused = limiter.take("k")
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after_s == pytest.approx(0.2)  # one request is worth 600 ms / 3


def test_a_tripped_bucket_recovers_one_request_per_share_of_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3000, 3, clock=clock)  # one request a second (times exact in binary)
    for _ in range(3):
        limiter.take("k")
    clock.advance(0.75)
    still = limiter.take("k")
    assert not still.allowed and still.retry_after_s == 0.25
    clock.advance(0.25)
    assert limiter.take("k").allowed
    assert not limiter.take("k").allowed
    clock.advance(60)  # far past the window: full again, never above the limit
    assert [limiter.take("k").remaining for _ in range(3)] == [2, 1, 0]
    assert not limiter.take("k").allowed


def test_each_key_has_its_own_bucket_and_may_have_its_own_limit() -> None:
    limiter = RateLimiter(600, 3, clock=FakeClock())
    for _ in range(3):
        limiter.take("spent")
    assert not limiter.take("spent").allowed
    fresh = limiter.take("fresh")
    assert fresh.allowed and fresh.remaining == 2
    own = limiter.take("larger", limit=10)
    assert own.limit == 10 and own.remaining == 9


def test_the_reset_time_is_when_the_bucket_is_full_again() -> None:
    limiter = RateLimiter(60_000, 3, clock=FakeClock())
    before = time.time()
    for _ in range(3):
        decision = limiter.take("k")
    after = time.time()
    # Empty after three: full again one whole window (60 s) later.
    assert before + 60 <= decision.reset_at_s <= after + 61
