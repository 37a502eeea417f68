"""IrisClient and AsyncIrisClient against a live Iris: the API the README shows, its errors and its jobs."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import grpc
import pytest
from standardwebhooks import Webhook

from iris_client import (
    AsyncIrisClient,
    IrisClient,
    IrisError,
    NotFoundError,
    TeamNotFoundError,
    TimeoutError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from iris_client.generated.iris.v1 import iris_pb2 as pb
from tests.clients.conftest import CLIENTS, LiveIris, run_tool
from tests.clients.webhook_receiver import webhook_receiver


@pytest.fixture
def iris(live_iris: LiveIris) -> IrisClient:
    return IrisClient(live_iris.address, api_key=live_iris.api_key)


def test_ask_answers_with_the_whole_response_and_what_the_turn_cost(iris: IrisClient) -> None:
    r = iris.teams.backend.ask("say we use postgres", from_team="py-ask")
    assert (r.response, r.status, r.team, r.from_team) == (
        "we use postgres",
        "completed",
        "backend",
        "py-ask",
    )
    assert r.message_id.startswith("msg_")
    assert r.duration > 0
    assert r.metadata.cost_usd > 0
    assert r.metadata.usage.input_tokens > 0


def test_stream_yields_start_then_chunks_in_order_then_complete(iris: IrisClient) -> None:
    events = list(iris.teams.backend.stream("chunks one |two |three", from_team="py-stream"))
    assert [e.kind for e in events] == ["start", "chunk", "chunk", "chunk", "complete"]
    assert "".join(e.text for e in events) == "one two three"
    start, complete = events[0].start, events[-1].complete
    assert start is not None and complete is not None
    assert (complete.status, complete.response, complete.message_id) == (
        "completed",
        "one two three",
        start.message_id,
    )


def test_a_team_whose_name_is_no_identifier_is_reached_by_index(iris: IrisClient) -> None:
    assert iris.teams["data-pipeline"].ask("say piped", from_team="py-index").response == "piped"


def test_leaving_a_stream_early_cancels_it_and_the_pair_answers_again(iris: IrisClient) -> None:
    started = time.monotonic()
    for event in iris.teams.alpha.stream("slow 5 1000", from_team="py-leave"):
        if event.kind == "chunk":
            break
    assert time.monotonic() - started < 4  # did not wait for the rest of the turn
    iris.cancel_message(_latest_message(iris, "py-leave").message_id)
    assert iris.teams.alpha.ask("say still here", from_team="py-leave").response == "still here"


def test_an_unknown_team_raises_team_not_found_with_its_code_and_details(iris: IrisClient) -> None:
    with pytest.raises(TeamNotFoundError) as caught:
        iris.teams.nowhere.ask("hello")
    assert isinstance(caught.value, NotFoundError) and isinstance(caught.value, IrisError)
    assert (caught.value.reason, caught.value.code) == ("TeamNotFoundError", grpc.StatusCode.NOT_FOUND)
    assert caught.value.details == {"team": "nowhere"}


def test_a_bad_key_raises_unauthorized(live_iris: LiveIris) -> None:
    with (
        IrisClient(live_iris.address, api_key="iris_sk_live_not-a-real-key") as iris,
        pytest.raises(UnauthorizedError),
    ):
        iris.list_teams()


def test_the_key_comes_from_iris_api_key_when_none_is_given(
    live_iris: LiveIris, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_API_KEY", live_iris.api_key)
    with IrisClient(live_iris.address) as iris:
        assert {"backend", "data-pipeline"} <= {t.name for t in iris.list_teams()}
    monkeypatch.delenv("IRIS_API_KEY")
    with IrisClient(live_iris.address) as iris, pytest.raises(UnauthorizedError):
        iris.list_teams()


def test_bad_input_raises_validation_error_naming_the_field(iris: IrisClient) -> None:
    with pytest.raises(ValidationError) as caught:
        iris.teams.backend.execute("say x", priority="urgent")
    assert caught.value.details.get("field") == "priority"


def test_ask_past_its_timeout_raises_timeout_error_naming_the_message_that_goes_on(iris: IrisClient) -> None:
    with pytest.raises(TimeoutError) as caught:
        iris.teams.alpha.ask("slow 4 1000", timeout=1, from_team="py-timeout")
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    message_id = caught.value.message_id
    assert message_id is not None and message_id.startswith("msg_")
    assert iris.get_message(message_id).status in {"processing", "completed"}
    iris.cancel_message(message_id)


def test_an_unreachable_iris_raises_unavailable_within_the_call_deadline(tmp_path: Path) -> None:
    with IrisClient("127.0.0.1:1", api_key="k", call_timeout=5) as iris:
        started = time.monotonic()
        with pytest.raises(UnavailableError):
            iris.list_teams()
        assert time.monotonic() - started < 6


def test_execute_delivers_a_signed_webhook_and_wait_returns_the_record(
    iris: IrisClient, live_iris: LiveIris
) -> None:
    with webhook_receiver() as receiver:
        job = iris.teams["data-pipeline"].execute(
            "say report ready", callback=receiver.url, from_team="py-job"
        )
        assert job.job_id.startswith("job_") and job.message_id.startswith("msg_")
        record = job.wait(timeout=60)
        assert (record.status, record.response, record.job_id) == ("completed", "report ready", job.job_id)
        delivery = receiver.first()
    secret = (live_iris.home / "webhook.secret").read_text().strip()
    assert Webhook(secret).verify(delivery.raw, delivery.headers) == delivery.body
    assert (delivery.body["jobId"], delivery.body["status"]) == (job.job_id, "completed")


def test_a_cancelled_job_ends_cancelled_and_wait_says_so(iris: IrisClient) -> None:
    job = iris.teams.beta.execute("slow 10 1000", from_team="py-cancel")
    with pytest.raises(TimeoutError) as caught:
        job.wait(timeout=0.5)
    assert caught.value.message_id == job.message_id
    job.cancel()
    assert job.wait(timeout=30).status == "cancelled"


async def test_the_async_client_asks_streams_and_waits_for_a_job(live_iris: LiveIris) -> None:
    async with AsyncIrisClient(live_iris.address, api_key=live_iris.api_key, from_team="py-async") as iris:
        assert (await iris.teams.gamma.ask("say async hello")).response == "async hello"
        chunks = [
            event.text async for event in iris.teams.gamma.stream("chunks x|y") if event.kind == "chunk"
        ]
        assert chunks == ["x", "y"]
        job = await iris.teams["data-pipeline"].execute("say async job")
        assert (await job.wait(timeout=60)).response == "async job"
        with pytest.raises(TeamNotFoundError):
            await iris.teams.nowhere.ask("hello")


async def test_cancelling_the_task_cancels_an_async_stream_promptly(live_iris: LiveIris) -> None:
    async with AsyncIrisClient(
        live_iris.address, api_key=live_iris.api_key, from_team="py-async-cancel"
    ) as iris:
        first_chunk = asyncio.Event()

        async def consume() -> None:
            async for event in iris.teams.gamma.stream("slow 10 500"):
                if event.kind == "chunk":
                    first_chunk.set()

        task = asyncio.ensure_future(consume())
        async with asyncio.timeout(30):
            await first_chunk.wait()
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 2
        listing = await iris.call(iris.stub.ListMessages, pb.ListMessagesRequest(from_team="py-async-cancel"))
        await iris.cancel_message(listing.messages[0].message_id)


def test_the_example_asks_and_streams(live_iris: LiveIris) -> None:
    example = CLIENTS / "python" / "examples" / "ask_and_stream.py"
    out = run_tool(
        [sys.executable, str(example), "backend"], cwd=example.parent, env=live_iris.env(), within_s=90
    )
    assert "answer: echo: What database do we use?" in out
    assert "echo: Explain auth" in out


def _latest_message(iris: IrisClient, from_team: str) -> pb.MessageRecord:
    reply = iris.call(iris.stub.ListMessages, pb.ListMessagesRequest(from_team=from_team, limit=1))
    return reply.messages[0]


def test_the_key_never_shows_in_a_repr_or_an_error(live_iris: LiveIris) -> None:
    with IrisClient(live_iris.address, api_key=live_iris.api_key) as iris:
        assert live_iris.api_key not in repr(iris.options)
        with pytest.raises(TeamNotFoundError) as caught:
            iris.teams.nowhere.ask("hello")
        assert live_iris.api_key not in f"{caught.value!s} {caught.value!r} {caught.value.details}"


def test_the_python_quick_start_runs_as_written(live_iris: LiveIris) -> None:
    example = CLIENTS / "python" / "examples" / "quickstart.py"
    with webhook_receiver() as receiver:
        env = live_iris.env(IRIS_CALLBACK_URL=receiver.url)
        out = run_tool([sys.executable, str(example)], cwd=example.parent, env=env, within_s=120)
        delivery = receiver.first()
    lines = out.splitlines()
    assert lines[:2] == ["echo: What database do we use?", "echo: Explain auth"]
    job_id, status, response = lines[2].split(": ", 2)
    assert (status, response, delivery.body["jobId"]) == ("completed", "echo: Generate the report", job_id)


def test_the_exposed_stub_carries_the_key_and_a_deadline(live_iris: LiveIris) -> None:
    with IrisClient(live_iris.address, api_key=live_iris.api_key, call_timeout=1) as iris:
        assert {"backend", "alpha"} <= {t.name for t in iris.stub.ListTeams(pb.ListTeamsRequest()).teams}
        request = pb.SendMessageRequest(to_team="alpha", message="slow 3 1000", from_team="py-raw-deadline")
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            iris.stub.SendMessage(request)
        assert isinstance(caught.value, grpc.Call)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2.5
        iris.cancel_message(_latest_message(iris, "py-raw-deadline").message_id)


def test_a_stream_that_is_never_iterated_sends_nothing(iris: IrisClient) -> None:
    stream = iris.teams.alpha.stream("say never sent", from_team="py-lazy")
    iris.teams.alpha.ask("say sent", from_team="py-lazy")
    del stream
    assert [m.message for m in _history(iris, "py-lazy")] == ["say sent"]


def test_a_closed_client_says_so(live_iris: LiveIris) -> None:
    iris = IrisClient(live_iris.address, api_key=live_iris.api_key)
    iris.close()
    with pytest.raises(RuntimeError, match="closed"):
        iris.list_teams()
    with pytest.raises(RuntimeError, match="closed"):
        iris.teams.alpha.stream("say x")


def test_the_async_client_works_from_one_event_loop_after_another(live_iris: LiveIris) -> None:
    iris = AsyncIrisClient(live_iris.address, api_key=live_iris.api_key, from_team="py-loops")

    async def ask(text: str) -> str:
        return (await iris.teams.gamma.ask(f"say {text}")).response

    assert asyncio.run(ask("first loop")) == "first loop"
    assert asyncio.run(ask("second loop")) == "second loop"

    async def closed() -> None:
        await iris.close()
        with pytest.raises(RuntimeError, match="closed"):
            await iris.list_teams()

    asyncio.run(closed())


def _history(iris: IrisClient, from_team: str) -> list[pb.MessageRecord]:
    return list(iris.call(iris.stub.ListMessages, pb.ListMessagesRequest(from_team=from_team)).messages)
