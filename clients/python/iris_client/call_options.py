"""What the sync and the asyncio client share: credentials, deadlines and the requests they send.

Both clients build the same contract messages here, so they cannot drift apart; each only makes the calls.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from .generated.iris.v1 import iris_pb2 as pb

__all__ = [
    "ASK_GRACE_S",
    "DEFAULT_ASK_TIMEOUT_S",
    "DEFAULT_CALL_TIMEOUT_S",
    "CallOptions",
    "JsonValue",
    "WebhookHeaders",
    "millis",
]

DEFAULT_CALL_TIMEOUT_S = 30.0
"""Deadline of every unary call but Ask, unless the client is given another."""

DEFAULT_ASK_TIMEOUT_S = 300.0
"""How long Ask waits for a whole answer by default: a real model's answer can take minutes."""

ASK_GRACE_S = 10.0
"""Ask's call deadline is its timeout plus this, so Iris's own timeout (naming the message) comes first."""

WebhookHeaders = Mapping[str, str]
"""Extra headers of a job's webhook deliveries."""

JsonValue: TypeAlias = "str | float | bool | None | Mapping[str, JsonValue] | Sequence[JsonValue]"
"""What an AskContext's free-form metadata (a ``google.protobuf.Struct``) may hold."""


@dataclass(frozen=True)
class CallOptions:
    """How a client calls: its credential, its calling team and its deadlines."""

    api_key: str | None = field(repr=False)
    """The API key sent with every call (``authorization: Bearer``), or None to send none."""
    from_team: str
    """The calling team every request names; empty: the key's own name."""
    call_timeout_s: float
    """Deadline of every unary call but Ask."""

    @classmethod
    def of(cls, api_key: str | None, from_team: str | None, call_timeout_s: float) -> CallOptions:
        """Resolve the options a client was given: the key from the argument, else IRIS_API_KEY."""
        millis(call_timeout_s, "call_timeout")
        key = (api_key if api_key is not None else os.environ.get("IRIS_API_KEY", "")).strip()
        if not all(" " <= char <= "~" for char in key):
            # Never echo it: the message of an error ends up in logs.
            raise ValueError("The API key has characters a key cannot have (a second line?); it was not sent")
        return cls(api_key=key or None, from_team=from_team or "", call_timeout_s=call_timeout_s)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The per-call metadata that carries the key."""
        return () if self.api_key is None else (("authorization", f"Bearer {self.api_key}"),)

    def caller(self, from_team: str | None) -> str:
        """Return the calling team of one request: its own, else the client's."""
        return self.from_team if from_team is None else from_team

    def ask(
        self,
        team: str,
        question: str,
        *,
        timeout_s: float,
        from_team: str | None,
        source: str | None,
        metadata: Mapping[str, JsonValue] | None,
    ) -> tuple[pb.AskRequest, float]:
        """Return an Ask request and its call deadline in seconds.

        Raises:
            ValueError: ``timeout_s`` is not a positive number (every call has a deadline).

        """
        request = pb.AskRequest(
            team=team,
            question=question,
            timeout=millis(timeout_s, "timeout"),
            from_team=self.caller(from_team),
        )
        if source is not None:
            request.context.source = source
        if metadata is not None:
            request.context.metadata.update(metadata)
        return request, timeout_s + ASK_GRACE_S

    def tell(
        self, team: str, message: str, *, timeout_s: float | None, from_team: str | None, persist: bool
    ) -> pb.TellRequest:
        """Return a Tell request: streamed until the turn ends, or for ``timeout_s`` seconds."""
        request = pb.TellRequest(
            to_team=team, message=message, from_team=self.caller(from_team), persist=persist
        )
        if timeout_s is not None:
            request.timeout = millis(timeout_s, "timeout")
        return request

    def execute(
        self,
        team: str,
        task: str,
        *,
        callback: str | None,
        callback_headers: WebhookHeaders | None,
        priority: str | None,
        idempotency_key: str | None,
        timeout_s: float | None,
        ttl_days: int | None,
        from_team: str | None,
    ) -> pb.ExecuteRequest:
        """Return an Execute request; Iris checks every field, refusing a bad one before queueing anything."""
        request = pb.ExecuteRequest(
            team=team,
            task=task,
            priority=priority or "",
            idempotency_key=idempotency_key or "",
            from_team=self.caller(from_team),
        )
        if callback is not None:
            request.callback.url = callback
            request.callback.headers.update(callback_headers or {})
        if timeout_s is not None:
            request.timeout = millis(timeout_s, "timeout")
        if ttl_days is not None:
            request.ttl_days = ttl_days
        return request


def millis(seconds: float, name: str) -> int:
    """Return a positive time in whole milliseconds, rounded up (Iris reads 0 as "no limit").

    Raises:
        ValueError: it is not a positive, finite number of seconds.

    """
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, not {seconds!r}")
    return max(1, math.ceil(seconds * 1000))
