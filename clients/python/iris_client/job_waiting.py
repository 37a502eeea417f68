"""How a client waits for a job: polls GetMessage, backing off, until the message has ended.

Polling is safe to repeat (GetMessage changes nothing), so it is the one thing the clients retry: a poll
that finds Iris unreachable tries again, because a job survives a restart of Iris and so should its waiter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from .errors import CancelledError, DeadlineExceededError, TimeoutError, UnavailableError
from .generated.iris.v1 import iris_pb2 as pb

__all__ = ["FINISHED", "JobWait", "ended", "poll_delays"]

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


class JobWait:
    """One wait for a job, shared by the sync and asyncio clients: the polls' deadlines and the pauses.

    ``delays`` gives the pause before each next poll; ``poll_timeout`` a poll's own deadline (the client's,
    cut to what is left); ``pause`` the next pause, or the error of a wait that has run out.
    """

    FAILED_POLL = (UnavailableError, DeadlineExceededError, CancelledError)
    """Failures of a poll that did not come from Iris (unreachable, cancelled by Iris's own stop, one poll
    past its deadline): GetMessage changes nothing, so the wait polls again."""

    def __init__(self, message_id: str, timeout: float | None, call_timeout_s: float) -> None:
        self._message_id = message_id
        self._call_timeout_s = call_timeout_s
        self._started = time.monotonic()
        self._deadline = None if timeout is None else self._started + timeout
        self.delays = poll_delays()
        """Seconds to pause before each next poll: 0.1, doubling up to 2."""

    def poll_timeout(self) -> float:
        """Return a poll's deadline in seconds: the client's, cut to what is left of the wait."""
        if self._deadline is None:
            return self._call_timeout_s
        return max(0.001, min(self._call_timeout_s, self._deadline - time.monotonic()))

    def pause(self) -> float:
        """Return how long to pause before the next poll.

        Raises:
            TimeoutError: the wait has run out (the job goes on); its ``message_id`` names the job's message.

        """
        delay, now = next(self.delays), time.monotonic()
        if self._deadline is None:
            return delay
        if now >= self._deadline:
            waited = now - self._started
            raise TimeoutError(
                f"The job had not ended after {waited:.1f} s; it goes on (wait again, or cancel it)",
                code=grpc.StatusCode.DEADLINE_EXCEEDED,
                details={"messageId": self._message_id},
            )
        return min(delay, self._deadline - now)


def ended(record: pb.MessageRecord) -> bool:
    """Whether a message has ended."""
    return record.status in FINISHED
