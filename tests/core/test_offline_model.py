from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    StreamEvent,
    ToolUseBlock,
)

from iris_offline_model import OfflineModel, ScriptedReply, decide_reply, offline_model_env
from iris_offline_model.script import error_body, user_text

REMINDER = "<system-reminder>\nToday is a test.\n</system-reminder>\n"


def body(*messages: Mapping[str, Any], stream: bool = True) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 1024, "stream": stream, "messages": list(messages)}


def user(*texts: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text} for text in texts]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


# --- the script, as pure functions ---


def test_plain_text_is_echoed_in_word_sized_chunks() -> None:
    reply = decide_reply(body(user(REMINDER, "hello  there world")))
    assert reply.text == "echo: hello  there world"
    assert reply.chunks == ("echo: ", "hello  ", "there ", "world")
    assert reply.stop_reason == "end_turn"
    assert (reply.tool, reply.error_status, reply.delay_s) == (None, None, 0.0)


def test_user_text_is_the_newest_user_text_that_is_not_a_system_reminder() -> None:
    request = body(
        user("first"), assistant("echo: first"), user("second", REMINDER), {"role": "system", "content": "x"}
    )
    assert user_text(request) == "second"
    assert user_text(body({"role": "user", "content": "plain string"})) == "plain string"
    assert user_text(body(user(REMINDER))) == ""


def test_slow_streams_numbered_chunks_with_a_delay_before_each() -> None:
    reply = decide_reply(body(user("slow 3 250")))
    assert reply.chunks == ("chunk 1 ", "chunk 2 ", "chunk 3 ")
    assert reply.delay_s == 0.25


def test_chunks_streams_the_given_pieces_exactly() -> None:
    assert decide_reply(body(user("chunks a|b c| d"))).chunks == ("a", "b c", " d")


def test_remember_acknowledges_the_word() -> None:
    assert decide_reply(body(user("remember apple"))).text == "ok, remembering apple"


def test_recall_lists_words_remembered_in_earlier_turns() -> None:
    history = body(
        user(REMINDER, "remember apple"),
        assistant("ok, remembering apple"),
        user("say something"),
        assistant("something"),
        user("remember pear"),
        assistant("ok, remembering pear"),
        user(REMINDER, "recall"),
    )
    assert decide_reply(history).text == "you told me: apple, pear"


def test_recall_with_nothing_remembered_says_nothing() -> None:
    assert decide_reply(body(user("recall"))).text == "you told me: nothing"


def test_tool_replies_with_one_tool_use_block_and_the_parsed_input() -> None:
    reply = decide_reply(body(user('tool Bash {"command": "echo hi", "description": "say hi"}')))
    assert reply.tool is not None
    assert reply.tool.name == "Bash"
    assert dict(reply.tool.input) == {"command": "echo hi", "description": "say hi"}
    assert re.fullmatch(r"toolu_[0-9a-f]+", reply.tool.id)
    assert reply.stop_reason == "tool_use"
    assert reply.chunks == ()


def test_tool_without_input_calls_the_tool_with_an_empty_object() -> None:
    reply = decide_reply(body(user("tool mcp__iris__list_teams")))
    assert reply.tool is not None
    assert (reply.tool.name, dict(reply.tool.input)) == ("mcp__iris__list_teams", {})


def test_tool_with_bad_json_explains_instead_of_calling() -> None:
    reply = decide_reply(body(user("tool Bash {not json")))
    assert reply.tool is None
    assert reply.text.startswith("offline model: tool input is not JSON")
    assert decide_reply(body(user("tool Bash [1]"))).text == "offline model: tool input must be a JSON object"


def test_tool_result_in_the_newest_user_message_is_reported_back() -> None:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}
    as_string = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "hi\n"}
    as_blocks = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "x" * 3000}],
    }
    history = [user("tool Bash {}"), {"role": "assistant", "content": [tool_use]}]
    reply = decide_reply(body(*history, {"role": "user", "content": [as_string]}))
    assert reply.text == "tool result: hi\n"
    reply = decide_reply(
        body(*history, {"role": "user", "content": [as_blocks, {"type": "text", "text": REMINDER}]})
    )
    assert reply.text == "tool result: " + "x" * 2000


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_replies_with_the_status_and_a_fitting_error_type(status: int, error_type: str) -> None:
    assert decide_reply(body(user(f"error {status}"))) == ScriptedReply(error_status=status)
    assert error_body(status) == {
        "type": "error",
        "error": {"type": error_type, "message": "offline model: scripted error"},
    }


def test_error_noretry_forbids_retries() -> None:
    assert decide_reply(body(user("error 500 noretry"))) == ScriptedReply(error_status=500, retry=False)


def test_say_replies_exactly_the_text() -> None:
    reply = decide_reply(body(user("say   two  spaces\nand a line ")))
    assert reply.text == "  two  spaces\nand a line "
    assert len(reply.chunks) > 1


@pytest.mark.parametrize(
    "text", ["Say hi", " say hi", "error 200", "error 5OO", "slow 3", "slow x 10", "sayhi"]
)
def test_text_that_is_not_exactly_a_command_is_echoed(text: str) -> None:
    assert decide_reply(body(user(text))).text == f"echo: {text}"


def test_malformed_body_is_echoed_rather_than_raising() -> None:
    assert decide_reply({"messages": "nonsense"}).text == "echo: "
    assert decide_reply({"messages": [{"role": "user", "content": 7}, 3]}).text == "echo: "


# --- the HTTP server, over raw asyncio streams ---


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        events = []
        for raw in self.body.decode().split("\n\n"):
            if raw.strip():
                fields = dict(line.split(": ", 1) for line in raw.splitlines())
                events.append((fields["event"], json.loads(fields["data"])))
        return events


class HttpConnection:
    """A minimal HTTP/1.1 client: enough to check what the server puts on the wire."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, path: str, payload: object, headers: Mapping[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        head = {
            "Host": "test",
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            **(headers or {}),
        }
        lines = [f"POST {path} HTTP/1.1", *(f"{name}: {value}" for name, value in head.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        await self.writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        status_line = await self.reader.readline()
        headers = {}
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    async def read_response(self) -> Response:
        status, headers = await self.read_head()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while size := int(await self.reader.readline(), 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readexactly(2)
            data = b"".join(parts)
        else:
            data = await self.reader.read()
        return Response(status, headers, data)

    async def request(self, path: str, payload: object, headers: Mapping[str, str] | None = None) -> Response:
        await self.send(path, payload, headers)
        return await self.read_response()


@asynccontextmanager
async def http(model: OfflineModel) -> AsyncIterator[HttpConnection]:
    host, port = model.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield HttpConnection(reader, writer)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def model() -> AsyncIterator[OfflineModel]:
    async with OfflineModel() as offline_model:
        yield offline_model


async def test_streamed_text_reply_sends_events_in_messages_api_order(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        response = await conn.request("/v1/messages?beta=true", body(user("say hello there")))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.events()
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert (start["role"], start["model"], start["content"]) == ("assistant", "claude-test", [])
    assert start["usage"]["input_tokens"] > 0
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert [data["delta"]["text"] for _, data in events[2:4]] == ["hello ", "there"]
    assert events[5][1]["delta"]["stop_reason"] == "end_turn"
    assert events[5][1]["usage"]["output_tokens"] > 0


async def test_streamed_tool_reply_sends_a_tool_use_block_with_its_input_as_json_delta(
    model: OfflineModel,
) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        response = await conn.request("/v1/messages", body(user('tool Bash {"command": "ls"}')))
    events = dict(response.events()[1:5])
    block = events["content_block_start"]["content_block"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "Bash", {})
    assert block["id"].startswith("toolu_")
    delta = events["content_block_delta"]["delta"]
    assert delta["type"] == "input_json_delta"
    assert json.loads(delta["partial_json"]) == {"command": "ls"}
    assert events["message_delta"]["delta"]["stop_reason"] == "tool_use"


async def test_slow_reply_waits_before_each_chunk(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        started = time.monotonic()
        response = await conn.request("/v1/messages", body(user("slow 3 40")))
        elapsed = time.monotonic() - started
    texts = [data["delta"]["text"] for name, data in response.events() if name == "content_block_delta"]
    assert texts == ["chunk 1 ", "chunk 2 ", "chunk 3 "]
    assert elapsed >= 0.1


async def test_one_keep_alive_connection_carries_several_requests(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        first = await conn.request("/v1/messages", body(user("say one")))
        second = await conn.request("/v1/messages", body(user("say two"), stream=False))
        third = await conn.request("/v1/messages", body(user("say three")))
    assert (first.status, second.status, third.status) == (200, 200, 200)
    assert first.headers["transfer-encoding"] == "chunked"
    assert second.json()["content"][0]["text"] == "two"
    assert [len(model.requests), model.requests[1]["messages"][0]["content"][0]["text"]] == [3, "say two"]


async def test_connection_close_gets_a_close_delimited_stream(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        response = await conn.request("/v1/messages", body(user("say bye")), {"Connection": "close"})
        assert await conn.reader.read() == b""
    assert response.headers["connection"] == "close"
    assert "transfer-encoding" not in response.headers
    assert response.events()[-1][0] == "message_stop"


async def test_non_streaming_request_gets_one_json_message(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        text_reply = await conn.request("/v1/messages", body(user("hi"), stream=False))
        tool_reply = await conn.request("/v1/messages", {"messages": [user("tool Read {}")]})
    message = text_reply.json()
    assert (message["type"], message["role"], message["stop_reason"]) == ("message", "assistant", "end_turn")
    assert message["content"] == [{"type": "text", "text": "echo: hi"}]
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] > 0
    tool_message = tool_reply.json()
    assert tool_message["stop_reason"] == "tool_use"
    assert [(block["type"], block["name"]) for block in tool_message["content"]] == [("tool_use", "Read")]


async def test_count_tokens_estimates_input_tokens(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        small = await conn.request("/v1/messages/count_tokens?beta=true", body(user("hi")))
        large = await conn.request("/v1/messages/count_tokens", body(user("hi " * 1000)))
    assert small.status == 200
    assert 0 < small.json()["input_tokens"] < large.json()["input_tokens"]
    assert model.requests == []


async def test_unknown_path_gets_a_404_json_error(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        response = await conn.request("/v1/complete", {})
    assert response.status == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_scripted_error_sends_the_status_and_an_anthropic_error_body(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        retryable = await conn.request("/v1/messages", body(user("error 529")))
        final = await conn.request("/v1/messages", body(user("error 500 noretry")))
    assert retryable.status == 529
    assert retryable.json() == error_body(529)
    assert "x-should-retry" not in retryable.headers
    assert (final.status, final.headers["x-should-retry"]) == (500, "false")


async def test_body_that_is_not_json_gets_a_400(model: OfflineModel) -> None:
    async with asyncio.timeout(10), http(model) as conn:
        response = await conn.request("/v1/messages", b"{nope")
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


class LogWatcher(logging.Handler):
    """Sets an event when a log message containing a needle is emitted, so a test can wait for it."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.seen = asyncio.Event()
        self.levels: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.levels.append(record.levelno)
        if self.needle in record.getMessage():
            self.seen.set()


@contextmanager
def watch_log(name: str, needle: str) -> Iterator[LogWatcher]:
    logger = logging.getLogger(name)
    watcher, level = LogWatcher(needle), logger.level
    logger.addHandler(watcher)
    logger.setLevel(logging.DEBUG)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(level)


async def test_client_leaving_mid_stream_does_not_disturb_the_server(model: OfflineModel) -> None:
    with watch_log("iris_offline_model.server", "client went away") as watcher:
        async with asyncio.timeout(10):
            async with http(model) as conn:
                await conn.send("/v1/messages", body(user("slow 4 20")))
                status, _ = await conn.read_head()
                assert status == 200
                await conn.reader.readuntil(b"content_block_delta")
            await watcher.seen.wait()
            async with http(model) as conn:
                response = await conn.request("/v1/messages", body(user("say still here")))
    assert response.events()[2][1]["delta"]["text"] == "still "
    assert max(watcher.levels) == logging.DEBUG


async def test_aclose_ends_replies_in_flight_and_is_idempotent() -> None:
    model = OfflineModel()
    await model.start()
    with watch_log("asyncio", "") as asyncio_log:
        async with asyncio.timeout(10), http(model) as conn:
            await conn.send("/v1/messages", body(user("slow 100 1000")))
            await conn.read_head()
            await model.aclose()
            await model.aclose()
            assert b"chunk" not in await conn.reader.read()
    assert max(asyncio_log.levels, default=logging.NOTSET) < logging.WARNING
    with pytest.raises(RuntimeError):
        _ = model.base_url


async def test_requests_keeps_only_the_newest_thousand_bodies(model: OfflineModel) -> None:
    async with asyncio.timeout(30), http(model) as conn:
        for number in range(1005):
            await conn.send("/v1/messages", body(user(f"say {number}"), stream=False))
            await conn.read_response()
    assert len(model.requests) == 1000
    assert user_text(model.requests[0]) == "say 5"


async def test_requests_keeps_only_the_newest_bodies_that_fit_in_keep_bytes() -> None:
    # Claude Code's bodies carry the whole session, so they grow with every turn: a count alone is no bound.
    padding = assistant("x" * 30_000)
    async with OfflineModel(keep_bytes=100_000) as model, asyncio.timeout(30), http(model) as conn:
        for number in range(10):
            await conn.send("/v1/messages", body(padding, user(f"say {number}"), stream=False))
            await conn.read_response()
        assert [user_text(kept) for kept in model.requests] == ["say 7", "say 8", "say 9"]
        assert model.recorded_bytes == sum(len(json.dumps(kept).encode()) for kept in model.requests)
        assert model.recorded_bytes <= 100_000
        # The newest body is kept even when it alone is larger than keep_bytes.
        await conn.send("/v1/messages", body(assistant("x" * 200_000), user("say big"), stream=False))
        await conn.read_response()
        assert [user_text(kept) for kept in model.requests] == ["say big"]


def test_offline_model_env_points_claude_code_at_the_model_and_away_from_the_network() -> None:
    env = offline_model_env("http://127.0.0.1:1234")
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1234"
    assert env["ANTHROPIC_API_KEY"]
    for name in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER"):
        assert env[name] == "1"


_IGNORING_SIGINT = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "runpy.run_module('iris_offline_model', run_name='__main__')"
)
"""The entry point as a shell starts a background job: with SIGINT ignored from the start."""


@pytest.mark.parametrize(
    ("argv", "stop"),
    [
        (("-m", "iris_offline_model"), signal.SIGINT),
        (("-m", "iris_offline_model"), signal.SIGTERM),
        (("-c", _IGNORING_SIGINT), signal.SIGINT),
    ],
    ids=["sigint", "sigterm", "sigint-after-inheriting-ignore"],
)
async def test_module_entry_point_serves_until_interrupted(
    argv: tuple[str, str], stop: signal.Signals
) -> None:
    process = await asyncio.create_subprocess_exec(sys.executable, *argv, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        async with asyncio.timeout(20):
            line = await process.stderr.readline()
            while b"serving at" not in line:
                assert line, "the entry point exited before serving"
                line = await process.stderr.readline()
            url = re.search(rb"http://[\d.]+:\d+", line)
            assert url is not None
            host, port = url.group().decode().removeprefix("http://").rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            conn = HttpConnection(reader, writer)
            assert (await conn.request("/nowhere", {})).status == 404
            writer.close()
            await writer.wait_closed()
            process.send_signal(stop)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# --- real Claude Code against the server ---


@asynccontextmanager
async def claude(model: OfflineModel, home: Path, **options: Any) -> AsyncIterator[ClaudeSDKClient]:
    env = {**offline_model_env(model.base_url), "HOME": str(home), **options.pop("env", {})}
    client = ClaudeSDKClient(ClaudeAgentOptions(cwd=home, env=env, **options))
    try:
        async with asyncio.timeout(30):
            await client.connect()
        yield client
    finally:
        async with asyncio.timeout(30):
            await client.disconnect()


async def turn(client: ClaudeSDKClient, prompt: str) -> tuple[ResultMessage, list[object]]:
    seen: list[object] = []
    async with asyncio.timeout(30):
        await client.query(prompt)
        async for message in client.receive_response():
            seen.append(message)
            if isinstance(message, ResultMessage):
                return message, seen
    raise AssertionError(f"no ResultMessage for {prompt!r}")


async def test_claude_code_gets_an_echo_of_plain_text(model: OfflineModel, tmp_path: Path) -> None:
    async with claude(model, tmp_path) as client:
        result, _ = await turn(client, "hello")
    assert (result.result, result.is_error) == ("echo: hello", False)
    assert result.total_cost_usd is not None and result.total_cost_usd > 0
    assert model.requests[-1]["stream"] is True


async def test_claude_code_streams_chunks_in_order_as_text_deltas(
    model: OfflineModel, tmp_path: Path
) -> None:
    async with claude(model, tmp_path, include_partial_messages=True) as client:
        result, seen = await turn(client, "chunks a|b|c")
    deltas = [
        message.event["delta"]["text"]
        for message in seen
        if isinstance(message, StreamEvent)
        and message.event["type"] == "content_block_delta"
        and message.event["delta"]["type"] == "text_delta"
    ]
    assert deltas == ["a", "b", "c"]
    assert result.result == "abc"


async def test_recall_lists_words_remembered_in_earlier_turns_of_one_client(
    model: OfflineModel, tmp_path: Path
) -> None:
    async with claude(model, tmp_path) as client:
        assert (await turn(client, "remember apple"))[0].result == "ok, remembering apple"
        assert (await turn(client, "remember pear"))[0].result == "ok, remembering pear"
        result, _ = await turn(client, "recall")
    assert result.result == "you told me: apple, pear"


async def test_claude_code_runs_a_scripted_tool_call_and_reports_its_result(
    model: OfflineModel, tmp_path: Path
) -> None:
    async with claude(
        model, tmp_path, permission_mode="bypassPermissions", env={"IS_SANDBOX": "1"}
    ) as client:
        result, seen = await turn(
            client, 'tool Bash {"command": "echo hi-from-bash", "description": "say hi"}'
        )
    tool_uses = [
        block
        for message in seen
        if isinstance(message, AssistantMessage)
        for block in message.content
        if isinstance(block, ToolUseBlock)
    ]
    assert [(block.name, block.input["command"]) for block in tool_uses] == [("Bash", "echo hi-from-bash")]
    assert result.result is not None and result.result.startswith("tool result:")
    assert "hi-from-bash" in result.result
    assert not result.is_error


async def test_scripted_errors_end_the_turn_as_an_error_and_the_process_lives_on(
    model: OfflineModel, tmp_path: Path
) -> None:
    async with claude(model, tmp_path) as client:
        bad_request, _ = await turn(client, "error 400")
        overloaded, _ = await turn(client, "error 529 noretry")
        after, _ = await turn(client, "say still alive")
    assert (bad_request.is_error, bad_request.api_error_status) == (True, 400)
    assert (overloaded.is_error, overloaded.api_error_status) == (True, 529)
    assert (after.result, after.is_error) == ("still alive", False)


async def test_claude_code_can_interrupt_a_slow_reply_mid_stream(model: OfflineModel, tmp_path: Path) -> None:
    async with claude(model, tmp_path, include_partial_messages=True) as client:
        seen: list[object] = []
        async with asyncio.timeout(30):
            await client.query("slow 50 100")
            async for message in client.receive_response():
                seen.append(message)
                if isinstance(message, StreamEvent) and message.event["type"] == "content_block_delta":
                    await client.interrupt()
        after, _ = await turn(client, "say ok")
    interrupted = seen[-1]
    assert isinstance(interrupted, ResultMessage)
    assert (interrupted.is_error, interrupted.terminal_reason) == (True, "aborted_streaming")
    assert (after.result, after.is_error) == ("ok", False)
