"""How a client waits for a job: polls GetMessage, backing off, until the message has ended.

Polling is safe to repeat (GetMessage changes nothing), so it is the one thing the clients retry: a poll
that finds Iris unreachable tries again, because a job survives a restart of Iris and so should its waiter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from .errors import TimeoutError
from .generated.iris.v1 import iris_pb2 as pb

__all__ = ["FINISHED", "ended", "poll_delays", "poll_timeout", "still_waiting"]

FINISHED = frozenset({"completed", "failed", "cancelled"})
"""A message's statuses once it has ended."""

FIRST_POLL_S = 0.1
MAX_POLL_S = 2.0


def poll_delays() -> Iterator[float]:
    """Seconds to sleep before each next poll: 0.1, doubling up to 2."""
    delay = FIRST_POLL_S
    while True:
        yield delay
        delay = min(delay * 2, MAX_POLL_S)


def still_waiting(message_id: str, waited_s: float) -> TimeoutError:
    """Return the error of a wait that ran out while the job goes on."""
    return TimeoutError(
        f"The job had not ended after {waited_s:.1f} s; it goes on (wait again, or cancel it)",
        code=grpc.StatusCode.DEADLINE_EXCEEDED,
        details={"messageId": message_id},
    )


def ended(record: pb.MessageRecord) -> bool:
    """Whether a message has ended."""
    return record.status in FINISHED


def poll_timeout(call_timeout_s: float, deadline: float | None) -> float:
    """Return a poll's deadline in seconds: the client's, cut to what is left of the wait (monotonic)."""
    if deadline is None:
        return call_timeout_s
    return max(0.001, min(call_timeout_s, deadline - time.monotonic()))
