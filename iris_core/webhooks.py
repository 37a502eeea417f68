"""Signed delivery of job results to callback URLs (Standard Webhooks), retried, recorded, restart-proof.

When a job with a callback ends, its delivery is recorded (``Store.add_webhook``) with the body to send:
``{jobId, messageId, team, status, result: {summary, details}, error, duration, timestamp}``. A sender task
POSTs due deliveries, signed with the ``standardwebhooks`` package (``webhook-id`` stays the same across
retries, so a receiver can drop duplicates; ``webhook-timestamp``; ``webhook-signature: v1,<base64
HMAC-SHA256>``), and records every attempt. Network errors, 5xx, 408 and 429 are retried after an
exponential delay with jitter, up to ``api.webhooks.maxAttempts``; any other answer ends the delivery.
Pending deliveries are in the record, so a restart picks them up, and a job whose end was written just
before Iris stopped gets its delivery at the next start.

A callback URL whose host resolves to a loopback, private, link-local, multicast, reserved or other
non-global address (cloud metadata at 169.254.169.254 among them) is refused, at Execute and again before
each attempt, unless ``api.webhooks.allowPrivateNetworks`` is on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import logging
import os
import random
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .clock import now_ms
from .config import WebhookConfig
from .errors import ValidationError
from .events import EventLog
from .metrics import IrisMetrics
from .store import Store, TurnRow
from .turns import V1_STATUS, Turn, cut_text

__all__ = ["SECRET_FILE", "WebhookSender", "check_destination", "check_headers", "signing_secret"]

logger = logging.getLogger(__name__)

SECRET_FILE = "webhook.secret"
"""Where Iris keeps the signing secret it made, in ``$IRIS_HOME`` (mode 0600)."""
_RESOLVE_TIMEOUT_S = 5.0
_CATCH_UP_MS = 7 * 86_400_000
"""How far back, at start, jobs that ended without a recorded delivery are looked for."""
_BATCH = 16
"""Deliveries attempted at once."""
_IDLE_CHECK_S = 60.0
"""The longest the sender sleeps without looking at the record."""
_SUMMARY_CHARS = 280
_RETRIED_STATUSES = frozenset({408, 429})
_OWN_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


def signing_secret(config: WebhookConfig, home: Path) -> str:
    """Return the configured secret, else the one in ``home`` (made, 0600, at the first start)."""
    if config.secret:
        return config.secret
    path = home / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    logger.info("made a webhook signing secret; receivers verify with the one in %s", path)
    return secret


async def check_destination(url: str, allow_private: bool) -> str:
    """Refuse a callback URL that is not http(s), or whose host resolves to a non-global address.

    Returns:
        The address to connect to: the one checked (so a name that resolves elsewhere a moment later,
        DNS rebinding, cannot move the delivery onto a private address); the host itself when private
        networks are allowed.

    Raises:
        ValidationError: naming ``callback.url``.

    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValidationError(
            f"callback.url has a bad port: {exc}", details={"field": "callback.url"}
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("callback.url must be an http or https URL", details={"field": "callback.url"})
    if allow_private:
        return parts.hostname
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port or 443)
    except (OSError, TimeoutError) as exc:
        raise ValidationError(
            f"callback.url's host {parts.hostname} does not resolve: {exc}", details={"field": "callback.url"}
        ) from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not _public(address):
            raise ValidationError(
                f"callback.url's host {parts.hostname} resolves to {address}, a private, loopback or "
                "link-local address (api.webhooks.allowPrivateNetworks is off)",
                details={"field": "callback.url"},
            )
    return str(addresses[0])


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Return whether ``address`` is global, and so is any IPv4 address an IPv6 form of it carries.

    Mapped, 6to4, NAT64 and IPv4-compatible forms reach their IPv4 address where such routing exists.
    """
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return True


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse callback headers that cannot be sent (not printable ASCII) or that would replace Iris's own.

    Raises:
        ValidationError: naming ``callback.headers``.

    """
    for name, value in headers.items():
        printable = all(" " <= char <= "~" for char in name + value) and name and ":" not in name
        if not printable or " " in name:
            raise ValidationError(
                f"callback header {name!r} must be a token name with a printable ASCII value",
                details={"field": "callback.headers"},
            )
        if name.lower() in _OWN_HEADERS:
            raise ValidationError(
                f"callback header {name!r} is set by Iris", details={"field": "callback.headers"}
            )


def body_of(turn: Turn | TurnRow, max_response_bytes: int) -> str:
    """Return the delivery's JSON body for a job that has ended (its answer cut to the record's cap)."""
    if isinstance(turn, Turn):
        job, team, status = turn.job, turn.pair.to_team, turn.status.value
        response, error, duration, message_id = turn.response, turn.error, turn.duration_ms, turn.message_id
    else:
        job, team, status = turn.job, turn.to_team, turn.status
        response, error, duration, message_id = turn.response, turn.error, turn.duration_ms, turn.message_id
    response = cut_text(response, max_response_bytes)[0]
    first_line = response.strip().split("\n", 1)[0]
    body = {
        "jobId": job.job_id if job is not None else "",
        "messageId": message_id,
        "team": team,
        "status": V1_STATUS.get(status, status),
        "result": {"summary": first_line[:_SUMMARY_CHARS], "details": response},
        "error": error,
        "duration": duration,
        "timestamp": now_ms(),
    }
    return json.dumps(body, ensure_ascii=False)


class WebhookSender:
    """Delivers recorded job results, one owned task, woken when a delivery is added or falls due."""

    def __init__(
        self,
        config: WebhookConfig,
        store: Store,
        secret: str,
        max_response_bytes: int,
        events: EventLog | None = None,
        metrics: IrisMetrics | None = None,
    ) -> None:
        self._config = config
        self._events = events
        self._metrics = metrics
        self._store = store
        self._webhook = Webhook(secret)
        self._max_response_bytes = max_response_bytes
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(timeout=self._config.timeout_ms / 1000, follow_redirects=False)
        for row in await self._store.ended_jobs_without_webhook(now_ms() - _CATCH_UP_MS):
            await self._store.add_webhook(row.message_id, body_of(row, self._max_response_bytes), now_ms())
        self._task = asyncio.create_task(self._run(), name="webhook-sender")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop sending (an attempt in flight is dropped and made again at the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def job_ended(self, turn: Turn) -> None:
        """Record the delivery of a job that ended, if it has a callback, and wake the sender."""
        if turn.job is None or turn.job.callback is None:
            return
        await self._store.add_webhook(turn.message_id, body_of(turn, self._max_response_bytes), now_ms())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                due = await self._store.due_webhooks(now_ms(), _BATCH)
                if due:
                    await asyncio.gather(*(self._attempt(*delivery) for delivery in due))
                    continue
                next_at = await self._store.next_webhook_at()
            except Exception as exc:  # noqa: BLE001 - the sender outlives one bad pass (a failing disk)
                logger.error("webhook sender pass failed: %r", exc)
                next_at = None
            wait_s = (
                _IDLE_CHECK_S if next_at is None else min(max((next_at - now_ms()) / 1000, 0), _IDLE_CHECK_S)
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()

    async def _attempt(self, message_id: str, body: str, attempts: int) -> None:
        number = attempts + 1
        started = time.monotonic()
        status_code, error = 0, ""
        row = await self._store.get_turn(message_id)
        callback = row.job.callback if row is not None and row.job is not None else None
        if callback is None:
            error = "the job's callback is no longer recorded"
        else:
            try:
                address = await check_destination(callback.url, self._config.allow_private_networks)
                status_code = await self._send(callback, address, message_id, body)
                if not 200 <= status_code < 300:
                    error = f"the receiver answered HTTP {status_code}"
            except ValidationError as exc:
                error = exc.message
            except Exception as exc:  # noqa: BLE001 - any failure is this attempt's, recorded; never the sender's
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        delivered = not error
        retry = not delivered and callback is not None and _retried(status_code, error)
        state = (
            "delivered"
            if delivered
            else "pending"
            if retry and number < self._config.max_attempts
            else "failed"
        )
        attempt = pb.WebhookDelivery(
            attempt=number,
            at=now_ms(),
            status_code=status_code,
            error=error,
            delivered=delivered,
            duration=int((time.monotonic() - started) * 1000),
        )
        await self._store.record_delivery(message_id, attempt, state, now_ms() + self._delay_ms(number))
        if self._metrics is not None:
            self._metrics.webhook_attempt("retried" if state == "pending" else state)
        if self._events is not None and row is not None:
            self._events.emit(
                pb.WatchEventsResponse(
                    kind="webhook.delivered" if delivered else "webhook.failed",
                    team=row.to_team,
                    from_team=row.from_team,
                    session_id=row.session_id,
                    message_id=message_id,
                    job_id=row.job.job_id if row.job is not None else "",
                    attempt=number,
                    status_code=status_code,
                    error=error,
                )
            )
        if state == "failed":
            logger.warning("webhook of %s failed after %d attempt(s): %s", message_id, number, error)

    async def _send(self, callback: pb.WebhookCallback, address: str, message_id: str, body: str) -> int:
        """POST (or PUT) the body to ``address``, the checked address of the callback's host.

        The URL keeps its host in the ``Host`` header and, for https, in TLS (SNI and the certificate check).
        """
        assert self._client is not None
        url = httpx.URL(callback.url)
        host = url.host
        sent_at = datetime.datetime.now(tz=datetime.UTC)
        webhook_id = f"wh_{message_id}"
        headers = {
            **callback.headers,
            "content-type": "application/json",
            "user-agent": "iris-webhooks",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self._webhook.sign(webhook_id, sent_at, body),
            "host": url.netloc.decode("ascii"),
        }
        reply = await self._client.request(
            (callback.method or "POST").upper(),
            url.copy_with(host=address),
            content=body.encode(),
            headers=headers,
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        return reply.status_code

    def _delay_ms(self, attempt: int) -> int:
        """Return the delay before the next attempt: doubling from retryBaseMs, capped, with jitter."""
        ceiling = min(self._config.retry_base_ms * 2 ** (attempt - 1), self._config.retry_max_ms)
        return int(ceiling * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret


def _retried(status_code: int, error: str) -> bool:
    """Return whether to try again: after a network error (no answer), a 5xx, 408 or 429; not otherwise."""
    if status_code == 0:
        return not error.startswith("callback.url")  # a refused address stays refused
    return status_code >= 500 or status_code in _RETRIED_STATUSES
