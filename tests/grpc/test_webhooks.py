"""Webhooks: a job's result POSTed to its callback, signed (Standard Webhooks), retried, recorded, refused
for private addresses unless allowed, and still delivered after a restart."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iris_app.rest_server import serving_app
from iris_client.generated.iris.v1 import iris_pb2 as pb
from iris_client.generated.iris.v1 import iris_pb2_grpc
from tests.harness import Iris, error_details, start_iris, write_config

SECRET = "whsec_" + base64.b64encode(b"a test secret of thirty-two bytes").decode()


@dataclass
class Receiver:
    """A local webhook receiver: answers each POST with the next planned status (then 200), keeps them all."""

    url: str
    planned: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def receiver(planned: list[int] | None = None) -> AsyncIterator[Receiver]:
    box: list[Receiver] = []

    async def hook(request: Request) -> Response:
        mine = box[0]
        mine.received.append((dict(request.headers), await request.body()))
        mine.arrived.set()
        return Response(status_code=mine.planned.pop(0) if mine.planned else 200)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST", "PUT"])])
    async with serving_app(app, host="127.0.0.1", port=0) as port:
        box.append(Receiver(f"http://127.0.0.1:{port}/hook", list(planned or [])))
        yield box[0]


def webhook_config(tmp_path: Path, settings: dict[str, Any] | None = None, **webhooks: Any) -> Path:
    hooks = {"secret": SECRET, "allowPrivateNetworks": True, "retryBaseMs": 20, **webhooks}
    return write_config(tmp_path, settings=settings, api={"webhooks": hooks})


async def until_delivery_ends(stub: iris_pb2_grpc.IrisAsyncStub, job_id: str) -> pb.MessageRecord:
    async with asyncio.timeout(60):
        while True:
            record = (await stub.GetMessage(pb.GetMessageRequest(message_id=job_id), timeout=10)).message
            if record.webhook_status in ("delivered", "failed"):
                return record
            await asyncio.sleep(0.05)


async def execute(iris: Iris, task: str, url: str, **fields: Any) -> pb.ExecuteResponse:
    callback = pb.WebhookCallback(url=url, headers={"authorization": "Bearer receiver-secret"})
    return await iris.stub.Execute(pb.ExecuteRequest(team="alpha", task=task, callback=callback, **fields))


async def test_a_job_result_is_posted_signed_to_its_callback(tmp_path: Path) -> None:
    async with receiver() as hooks, start_iris(tmp_path, webhook_config(tmp_path)) as iris:
        job = await execute(iris, "say all fixed\nthe details", hooks.url)
        record = await until_delivery_ends(iris.stub, job.job_id)
    assert record.webhook_status == "delivered" and [d.status_code for d in record.deliveries] == [200]
    ((headers, body),) = hooks.received
    payload = Webhook(SECRET).verify(body, headers)  # raises unless the signature is the secret's
    assert payload["jobId"] == job.job_id and payload["messageId"] == job.message_id
    assert (payload["team"], payload["status"]) == ("alpha", "completed")
    assert payload["result"] == {"summary": "all fixed", "details": "all fixed\nthe details"}
    assert payload["duration"] > 0 and payload["timestamp"] > 0
    assert (
        headers["authorization"] == "Bearer receiver-secret"
        and headers["webhook-id"] == f"wh_{job.message_id}"
    )
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + base64.b64encode(b"another secret of thirty-two byte").decode()).verify(
            body, headers
        )


async def test_a_failing_receiver_gets_retries_until_it_succeeds_each_attempt_recorded(
    tmp_path: Path,
) -> None:
    async with receiver([500, 503]) as hooks, start_iris(tmp_path, webhook_config(tmp_path)) as iris:
        job = await execute(iris, "say retried", hooks.url)
        record = await until_delivery_ends(iris.stub, job.job_id)
    assert record.webhook_status == "delivered"
    assert [(d.attempt, d.status_code, d.delivered) for d in record.deliveries] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert "HTTP 500" in record.deliveries[0].error and record.deliveries[2].error == ""
    assert len({headers["webhook-id"] for headers, _ in hooks.received}) == 1  # one delivery, three tries
    assert len(hooks.received) == 3


async def test_a_4xx_answer_ends_the_delivery_and_the_attempts_are_bounded(tmp_path: Path) -> None:
    async with (
        receiver([400, 500, 500, 500]) as hooks,
        start_iris(tmp_path, webhook_config(tmp_path, maxAttempts=2)) as iris,
    ):
        refused = await execute(iris, "say refused", hooks.url)
        first = await until_delivery_ends(iris.stub, refused.job_id)
        bounded = await execute(iris, "say bounded", hooks.url)
        second = await until_delivery_ends(iris.stub, bounded.job_id)
    assert first.webhook_status == "failed" and [d.status_code for d in first.deliveries] == [400]
    assert second.webhook_status == "failed" and [d.status_code for d in second.deliveries] == [500, 500]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://2130706433/x",  # 127.0.0.1 as one number
        "http://[::127.0.0.1]/x",  # IPv4-compatible
        "http://[64:ff9b::7f00:1]/x",  # NAT64
        "http://[2002:7f00:1::]/x",  # 6to4
        "http://example.com:99999/x",  # no such port
    ],
)
async def test_a_private_callback_is_refused_unless_allowed(tmp_path: Path, url: str) -> None:
    async with start_iris(tmp_path, write_config(tmp_path)) as iris:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await execute(iris, "say hi", url)
        listed = await iris.stub.ListMessages(pb.ListMessagesRequest())
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(refused.value)["field"] == "callback.url"
    why = refused.value.details() or ""
    assert listed.pagination.total == 0 and ("allowPrivateNetworks" in why or "port" in why), why


async def test_a_pending_delivery_survives_a_restart(tmp_path: Path) -> None:
    config = webhook_config(tmp_path, retryBaseMs=1500)
    async with receiver([503]) as hooks:
        async with start_iris(tmp_path, config) as iris:
            job = await execute(iris, "say later", hooks.url)
            async with asyncio.timeout(30):
                await hooks.arrived.wait()  # the first attempt failed; the next one is a second away
        async with start_iris(tmp_path, config) as iris:
            record = await until_delivery_ends(iris.stub, job.job_id)
    assert [d.status_code for d in record.deliveries] == [503, 200] and record.webhook_status == "delivered"
    assert json.loads(hooks.received[1][1])["jobId"] == job.job_id


async def test_iris_makes_and_keeps_a_secret_when_none_is_configured(tmp_path: Path) -> None:
    async with start_iris(tmp_path, write_config(tmp_path)) as iris:
        secret = (iris.home / "webhook.secret").read_text().strip()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert (iris.home / "webhook.secret").stat().st_mode & 0o777 == 0o600
    async with start_iris(tmp_path, write_config(tmp_path)) as again:
        assert (again.home / "webhook.secret").read_text().strip() == secret


@pytest.mark.parametrize(
    "headers", [{"x-note": "café"}, {"bad name": "x"}, {"webhook-signature": "v1,forged"}, {"Host": "evil"}]
)
async def test_callback_headers_that_cannot_be_sent_or_would_replace_irises_are_refused(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with start_iris(tmp_path, webhook_config(tmp_path)) as iris:
        callback = pb.WebhookCallback(url="http://127.0.0.1:9/hook", headers=headers)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await iris.stub.Execute(pb.ExecuteRequest(team="alpha", task="say hi", callback=callback))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(refused.value)["field"] == "callback.headers"


async def test_a_job_cancelled_while_it_waits_still_reports_its_end(tmp_path: Path) -> None:
    config = webhook_config(tmp_path, settings={"maxConcurrentJobs": 1})
    async with receiver() as hooks, start_iris(tmp_path, config) as iris:
        blocker = await execute(iris, "slow 50 100", hooks.url)
        waiting = await execute(iris, "say never", hooks.url)
        await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=waiting.job_id))
        record = await until_delivery_ends(iris.stub, waiting.job_id)
        await iris.stub.CancelMessage(pb.CancelMessageRequest(message_id=blocker.job_id))
    assert record.status == "cancelled" and record.webhook_status == "delivered"
    bodies = [json.loads(body) for _, body in hooks.received]
    cancelled = [b for b in bodies if b["jobId"] == waiting.job_id]
    assert [(c["status"], c["result"]["details"]) for c in cancelled] == [("cancelled", "")]
