"""Golden replies: the JSON Iris writes over REST and MCP, byte for byte, against a recorded fixture.

The JSON of the REST gateway and of the MCP tools is a public contract: clients parse it, compare it and
sometimes store it. It must not change when the core's own types do (the core returning protobuf messages
instead of dicts that are packed into them, say), not even in key order. This test runs one fixed script of
calls against a real Iris (offline model) that reaches every RPC over REST and every MCP tool, normalizes only
the values that differ from run to run (clocks, ids, pids, the test's temporary folder) and compares each
reply, serialized, with ``tests/golden/replies.json``; the HTTP status and content type are compared too.

``IRIS_RECORD_REPLIES=1`` rewrites the fixture from a run instead of comparing, and then fails, so a
recording run is never mistaken for a passing one. Review the fixture's diff before committing it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from iris_client.contract import IRIS_SERVICE
from mcp_adapter.tools import iris_tools
from tests.harness import MCP_TOOLS, Iris, start_iris, write_config

FIXTURE = Path(__file__).parent / "golden" / "replies.json"
RECORD_ENV = "IRIS_RECORD_REPLIES"

VARYING_TIMES = frozenset(
    {
        "timestamp",
        "estimatedCompletion",
        "since",
        "until",
        "createdAt",
        "startedAt",
        "completedAt",
        "expiresAt",
        "lastUsed",
        "lastUsedAt",
        "time",
        "uptime",
        "duration",
        "unix",
        "iso",
        "utc",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "timezone",
    }
)
"""Clock readings (and the machine's time zone): they differ on every run."""

VARYING_IDS = frozenset(
    {
        "messageId",
        "jobId",
        "sessionId",
        "oldSessionId",
        "newSessionId",
        "requestId",
        "id",
        "key",
        "prefix",
        "toolUseId",
        "pid",
    }
)
"""Random or system-given identifiers: new on every run."""

VARYING = VARYING_TIMES | VARYING_IDS

AMOUNTS = frozenset(
    {
        "costUsd",
        "inputTokens",
        "outputTokens",
        "cacheCreationInputTokens",
        "cacheReadInputTokens",
        "memoryBytes",
    }
)
"""Costs and token counts Claude Code reports, from the offline model's token estimates of request bodies that
carry the test's own paths (the tmp folder, the checkout): their digits change with the length of a path, so
only whether there was any is compared (0 stays 0.0; any other amount becomes 1.0)."""

UNORDERED = frozenset({"input", "updatedInput", "fields"})
"""google.protobuf.Struct fields (a tool's input, a log record's extra fields). A Struct is a protobuf map,
whose keys come out in the order of the run's randomized string hashes: recorded twice, a tool input
came out as {"command", "description"} and then {"description", "command"}. Their keys are sorted; the
order of every other object's keys is kept, and compared."""

ZERO_BY_CHANCE = frozenset({"duration", "uptime", "hour", "minute", "second"})
"""Clock readings that are sometimes 0: a 0 ms duration, second 0 of a minute. The JSON lists a message's
non-zero fields first and its zero fields after them, so such a key's place depends on its value: recorded
twice, GetDate ended with "second", "timezone" and then with "timezone", "second", and a TeamLaunch reply had
"duration" before "timestamp" and then after it. These keys are moved to the end of their object (in their
own order); the order of the other keys is kept, and compared."""

_LOG_CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d ")


def _placeholder(key: str, value: Any) -> Any:
    """The stand-in for a varying value: same JSON type, and an empty string stays visibly empty."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, str):
        return f"<{key}>" if value else ""
    raise AssertionError(f"unexpected {type(value).__name__} under varying key {key!r}: {value!r}")


@dataclass
class Normalizer:
    """Replaces what varies between runs, by key name, keeping key order (but see ``UNORDERED`` and
    ``ZERO_BY_CHANCE``) and every JSON type.

    A varying key's value becomes its placeholder. Texts that quote a varying value (a message naming the
    session it deleted, an error naming the model's address) get the same placeholder in its place: every id
    seen under a varying key is remembered for the rest of the run, so later texts quoting it are covered
    too. Nothing else is touched.
    """

    quoted: dict[str, str]
    """Text to replace in every string -> its placeholder (the tmp folder, local addresses, seen ids)."""
    pids: set[int] = field(default_factory=set)
    """Process ids seen so far; log messages quote them as whole words."""

    def __call__(self, value: Any) -> Any:
        self.learn(value)
        return self._replace(value)

    def learn(self, value: Any) -> None:
        """Remember the ids and pids in ``value``, so that texts quoting them are normalized too."""
        if isinstance(value, dict):
            for key, item in value.items():
                # Only ids long enough not to occur by chance in unrelated text.
                if key in VARYING_IDS and isinstance(item, str) and len(item) >= 8:
                    self.quoted[item] = f"<{key}>"
                if key == "pid" and isinstance(item, int) and not isinstance(item, bool) and item > 0:
                    self.pids.add(item)
                self.learn(item)
        elif isinstance(value, list):
            for item in value:
                self.learn(item)

    def _replace(self, value: Any) -> Any:
        if isinstance(value, dict):
            replaced = {
                k: _placeholder(k, v)
                if k in VARYING
                else _amount(v)
                if k in AMOUNTS
                else self._replace(_sorted(v) if k in UNORDERED else v)
                for k, v in value.items()
            }
            if "logger" in replaced and isinstance(replaced.get("text"), str):
                # A log record's "text" (format "parsed") opens with the record's local wall-clock time.
                replaced["text"] = _LOG_CLOCK.sub("<time> ", replaced["text"], count=1)
            last = [k for k in replaced if k in ZERO_BY_CHANCE]
            return {k: replaced[k] for k in [k for k in replaced if k not in ZERO_BY_CHANCE] + last}
        if isinstance(value, list):
            return [self._replace(item) for item in value]
        if isinstance(value, str):
            for text in sorted(self.quoted, key=len, reverse=True):
                value = value.replace(text, self.quoted[text])
            for pid in self.pids:
                value = re.sub(rf"\b{pid}\b", "<pid>", value)
            return value
        return value


def _amount(value: Any) -> Any:
    """A cost as compared: 0.0 when nothing was spent, else 1.0 (see ``AMOUNTS``)."""
    assert isinstance(value, float | int) and not isinstance(value, bool), value
    return 0.0 if value == 0 else 1.0


def _sorted(value: Any) -> Any:
    """``value`` with the keys of every object in it sorted (a Struct's nested values are Structs too)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def compact(value: Any) -> str:
    """JSON as the gateway writes it (Starlette's JSONResponse, and each stream event)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Recorder:
    """The replies of one run, in script order, already normalized."""

    normalize: Normalizer
    entries: list[dict[str, Any]] = field(default_factory=list)

    def rest(self, call: str, response: httpx.Response, text: str | None = None) -> Any:
        """Record a REST reply and return its parsed (not normalized) body.

        The raw body must be exactly what its parsed value serializes to, so comparing parsed values also
        compares the bytes on the wire.
        """
        content_type = response.headers.get("content-type", "")
        text = response.text if text is None else text
        body: Any
        if content_type.startswith("application/x-ndjson"):
            body = [json.loads(line) for line in text.splitlines()]
            assert text == "".join(compact(line) + "\n" for line in body), text
        elif content_type.startswith("text/event-stream"):
            body = [_sse_event(block) for block in text.split("\n\n") if block]
            assert text == "".join(f"event: {e['event']}\ndata: {compact(e['data'])}\n\n" for e in body), text
        else:
            body = response.json()
            assert text == compact(body), text
        self.entries.append(
            {
                "call": call,
                "status": response.status_code,
                "contentType": content_type,
                "body": self.normalize(body),
            }
        )
        return body

    def mcp(self, call: str, result: types.CallToolResult) -> dict[str, Any]:
        """Record an MCP tool result (structured content and text) and return its structured content.

        The text is the structured content as indented JSON; it is checked to be exactly that serialization
        of itself, then normalized and re-serialized the same way.
        """
        assert isinstance(result.structured_content, dict), result.content
        texts = []
        for content in result.content:
            assert isinstance(content, types.TextContent), content
            parsed = json.loads(content.text)
            assert content.text == json.dumps(parsed, indent=2), content.text
            texts.append({"type": content.type, "text": json.dumps(self.normalize(parsed), indent=2)})
        self.entries.append(
            {
                "call": call,
                "isError": result.is_error,
                "body": {
                    "structuredContent": self.normalize(result.structured_content),
                    "content": texts,
                },
            }
        )
        return result.structured_content


def _sse_event(block: str) -> dict[str, Any]:
    event, data = block.split("\n")
    assert event.startswith("event: ") and data.startswith("data: "), block
    return {"event": event.removeprefix("event: "), "data": json.loads(data.removeprefix("data: "))}


@asynccontextmanager
async def mcp_client(url: str, headers: Mapping[str, str]) -> AsyncIterator[Client]:
    """The MCP SDK's client over streamable HTTP, sending ``headers`` with every request."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def wait_for_turns(http: httpx.AsyncClient, team: str, frm: str) -> None:
    """Poll (bounded) SessionReport until no turn of the pair is queued or running."""
    async with asyncio.timeout(15):
        while True:
            report = (await http.get(f"/api/teams/{team}/report", params={"fromTeam": frm})).json()
            if report["stats"]["activeEntries"] == 0:
                return
            await asyncio.sleep(0.05)


async def tell_answering_a_permission_request(http: httpx.AsyncClient, record: Recorder) -> None:
    """Tell (SSE) to delta, whose grantPermission is "ask": answer its permission_request while the stream
    waits, then record the answer and the whole stream."""
    command = {"command": "echo asked > asked.txt", "description": "write a file"}
    request = {"fromTeam": "rest", "message": f"tool Bash {json.dumps(command)}"}
    sse = {"accept": "text/event-stream"}
    received = ""
    answered = False
    async with (
        asyncio.timeout(20),
        http.stream("POST", "/api/v1/teams/delta/stream", json=request, headers=sse) as stream,
    ):
        async for text in stream.aiter_text():
            received += text
            asked = [b for b in received.split("\n\n")[:-1] if b.startswith("event: permission_request\n")]
            if asked and not answered:
                event = _sse_event(asked[0])["data"]
                record.normalize.learn(event)  # the answer quotes the request id
                pending = event["requestId"]
                answer = {"requestId": pending, "decision": "allow", "fromTeam": "rest"}
                record.rest("PermissionsApprove", await http.post("/api/permissions/approve", json=answer))
                answered = True
    record.rest("Tell (SSE, a permission_request answered)", stream, received)


async def rest_script(http: httpx.AsyncClient, record: Recorder) -> None:
    """Every RPC over REST at least once, and the error replies, in an order that makes each reply fixed."""
    base = str(http.base_url)
    frm = {"fromTeam": "rest"}

    async def post(call: str, path: str, body: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return record.rest(call, await http.post(path, json=body, **kw))

    async def get(call: str, path: str, **kw: Any) -> Any:
        return record.rest(call, await http.get(path, **kw))

    async def delete(call: str, path: str, **kw: Any) -> Any:
        return record.rest(call, await http.delete(path, **kw))

    await get("GetHealth", "/api/health")
    await get("GetDate", "/api/date")
    await get("ListTeams", "/api/teams")
    await get("GetStatus (nothing awake)", "/api/status")
    await get("TeamStatus (all teams)", "/api/teams/status", params=frm)
    await post("TeamWake", "/api/teams/alpha/wake", frm)
    await post("TeamLaunch (already awake)", "/api/teams/alpha/launch", frm)
    await get("TeamStatus /api/teams/{team}/status", "/api/teams/alpha/status", params=frm)
    await post("SendMessage", "/api/teams/tell", {**frm, "toTeam": "alpha", "message": "say hello"})
    await post("AskMessage", "/api/teams/ask", {**frm, "toTeam": "alpha", "message": "remember apple"})
    await post("QuickMessage", "/api/teams/quick-tell", {**frm, "toTeam": "alpha", "message": "recall"})
    await wait_for_turns(http, "alpha", "rest")
    await post("Tell (NDJSON)", "/api/v1/teams/alpha/stream", {**frm, "message": "chunks a|b|c"})
    await post(
        "Tell (SSE)",
        "/api/v1/teams/alpha/stream",
        {**frm, "message": 'tool Bash {"command": "echo hi", "description": "x"}'},
        headers={"accept": "text/event-stream"},
    )
    await tell_answering_a_permission_request(http, record)
    await post(
        "SendMessage (a failing turn)",
        "/api/teams/tell",
        {**frm, "toTeam": "alpha", "message": "error 529 noretry"},
    )
    report = await get("SessionReport", "/api/teams/alpha/report", params=frm)
    session = report["sessionId"]
    await post("SessionCancel (nothing running)", "/api/teams/alpha/cancel", frm)
    await get(
        "TeamStatus (one team, busy pair idle again)", "/api/teams/status", params={**frm, "team": "alpha"}
    )
    await get("GetStatus (one awake)", "/api/status")
    await get("GetCache", f"/api/cache/{session}")
    await get("GetCache /read", f"/api/cache/{session}/read")
    await delete("ClearCache", f"/api/cache/{session}")
    await post("SessionFork (no spawn script)", "/api/teams/alpha/fork", frm)
    await post("TeamSleep", "/api/teams/alpha/sleep", frm)
    await post("TeamSleep (already asleep)", "/api/teams/alpha/sleep", frm)
    await delete("SessionReboot (asleep)", "/api/teams/alpha/reboot", params=frm)
    await post("TeamWake (after the reboot)", "/api/teams/alpha/wake", frm)
    await delete("SessionDelete (awake)", "/api/teams/alpha/delete", params=frm)
    await post("TeamWakeAll", "/api/teams/wake-all", frm)
    await get("GetLogs (store names)", "/api/logs", params={"getAllStores": "true"})
    await get("GetLogs (info, parsed)", "/api/logs", params={"level": "info"})
    await get(
        "GetLogs (info and warn, raw)",
        "/api/logs",
        params=[("level", "info"), ("level", "warn"), ("format", "raw")],
    )
    await post(
        "PermissionsApprove (policy)",
        "/api/permissions/approve",
        {"tool_name": "Bash", "input": {"command": "ls"}, "fromTeam": "rest"},
    )
    await post(
        "PermissionsApprove (unknown request)",
        "/api/permissions/approve",
        {"requestId": "perm_unknown", "decision": "allow", "fromTeam": "rest"},
    )
    created = await post("CreateApiKey", "/api/keys", {"name": "reader", "permissions": ["status:read"]})
    reader = {"authorization": f"Bearer {created['key']}"}
    await get("ListTeams as a status:read key", "/api/teams", headers=reader)
    await post(
        "SendMessage 403 (a key without team:tell)",
        "/api/teams/tell",
        {"toTeam": "alpha", "message": "say no"},
        headers=reader,
    )
    await get("ListApiKeys", "/api/keys")
    await delete("RevokeApiKey", "/api/keys/reader")
    await post(
        "SendMessage 400 (a timeout that is not a number)",
        "/api/teams/tell",
        {"toTeam": "alpha", "message": "x", "timeout": "soon"},
    )
    await post(
        "SendMessage 400 (a team name with a path separator)",
        "/api/teams/tell",
        {"toTeam": "../etc", "message": "x"},
    )
    await post("TeamWake 404 (an unknown team)", "/api/teams/nobody/wake", frm)
    read = {"file_path": "notes.txt"}
    await post(
        "Ask (the design's body, a tool used)",
        "/api/v1/teams/beta/ask",
        {
            **frm,
            "question": f"tool Read {json.dumps(read)}",
            "timeout": 30000,
            "context": {"source": "golden", "metadata": {"pr_number": 123, "author": "john.doe"}},
        },
    )
    await post(
        "Ask 408 (past its timeout)",
        "/api/v1/teams/beta/ask",
        {**frm, "question": "slow 5 100", "timeout": 50},
    )
    await wait_for_turns(http, "beta", "rest")
    await post("Ask 400 (no question)", "/api/v1/teams/beta/ask", {**frm, "question": ""})
    job = await post(
        "Execute (the design's body)",
        "/api/v1/teams/beta/execute",
        {**frm, "task": "say executed", "priority": "high", "idempotencyKey": "golden-1"},
    )
    await wait_for_turns(http, "beta", "rest")
    await post(
        "Execute (the same idempotency key: the same job)",
        "/api/v1/teams/beta/execute",
        {**frm, "task": "say executed", "priority": "high", "idempotencyKey": "golden-1"},
    )
    await get("GetMessage (by job id)", f"/api/v1/messages/{job['jobId']}")
    await post(
        "Execute 400 (an unknown priority)",
        "/api/v1/teams/beta/execute",
        {**frm, "task": "x", "priority": "asap"},
    )
    history = await get(
        "ListMessages", "/api/v1/messages/history", params={"team": "beta", "from": "rest", "limit": 1}
    )
    asked = history["messages"][0]["messageId"]
    await get("GetMessage", f"/api/v1/messages/{asked}")
    await post("CancelMessage 400 (already ended)", f"/api/v1/messages/{asked}/cancel", {})
    await get("GetMessage 404 (an unknown id)", "/api/v1/messages/msg_unknown")
    await get("WatchEvents 400 (a negative afterId)", "/api/v1/events", params={"afterId": "-1"})
    await get(
        "WatchEvents 400 (a Last-Event-ID that is no id)", "/api/v1/events", headers={"last-event-id": "x"}
    )
    await get("TeamStatus /api/v1/teams/{team}/status", "/api/v1/teams/beta/status", params=frm)
    await get("GetUsage", "/api/v1/usage", params={"groupBy": ["team", "model"], "team": "beta"})
    await get("GetUsage 400 (an unknown groupBy)", "/api/v1/usage", params={"groupBy": "week"})
    await post("Ask 404 (an unknown team)", "/api/v1/teams/nobody/ask", {**frm, "question": "hi"})
    async with httpx.AsyncClient(base_url=base, timeout=30) as keyless:
        record.rest("ListTeams 401 (no key)", await keyless.get("/api/teams"))


async def mcp_script(iris: Iris, url: str, record: Recorder) -> None:
    """Every MCP tool once (over HTTP at /mcp, as team "mcp"), a tool error and an unauthenticated call."""
    headers = {"Authorization": f"Bearer {iris.admin_key}", "X-Iris-From-Team": "mcp"}
    async with mcp_client(url, headers) as client:

        async def call(name: str, arguments: dict[str, Any], label: str = "") -> dict[str, Any]:
            return record.mcp(f"mcp {label or name}", await client.call_tool(name, arguments))

        listed = await client.list_tools()
        assert len(listed.tools) == len(MCP_TOOLS)
        await call("list_teams", {})
        await call("get_date", {})
        await call("team_status", {"team": "beta"})
        await call("team_wake", {"team": "beta"})
        await call("team_launch", {"team": "beta"})
        await call("send_message", {"toTeam": "beta", "message": "say hello"})
        await call("ask_message", {"toTeam": "beta", "message": "chunks x|y"})
        asked = await call("ask", {"team": "gamma", "question": "say hello", "context": {"source": "mcp"}})
        await call("get_message", {"messageId": asked["messageId"]})
        job = await call("execute", {"team": "gamma", "task": "say later", "priority": "low"})
        async with asyncio.timeout(15):
            while (await client.call_tool("get_message", {"messageId": job["jobId"]})).structured_content[
                "message"
            ]["status"] in ("queued", "processing"):
                await asyncio.sleep(0.05)
        await call(
            "cancel_message", {"messageId": asked["messageId"]}, "cancel_message (ended: a tool error)"
        )
        await call("quick_message", {"toTeam": "beta", "message": "say later"})
        async with asyncio.timeout(15):
            while (await client.call_tool("session_report", {"team": "beta"})).structured_content["stats"][
                "activeEntries"
            ]:
                await asyncio.sleep(0.05)
        await call("session_report", {"team": "beta"})
        await call("session_cancel", {"team": "beta"})
        await call("session_fork", {"toTeam": "beta"}, "session_fork (no spawn script)")
        await call("session_reboot", {"toTeam": "beta"})
        await call("session_delete", {"toTeam": "beta"})
        await call("team_sleep", {"team": "beta"})
        await call("team_wake_all", {})
        await call("get_logs", {"getAllStores": True})
        await call("permissions__approve", {"tool_name": "mcp__iris__list_teams", "input": {}})
        await call("team_wake", {"team": "nobody"}, "team_wake (unknown team: a tool error)")
    async with mcp_client(url, {}) as keyless:
        record.mcp("mcp list_teams (no key)", await keyless.call_tool("list_teams", {}))


IRIS_PACKAGES = frozenset(
    {"iris_core", "iris_grpc", "iris_app", "iris_client", "rest_gateway", "mcp_adapter"}
)


class _OnlyIris(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in IRIS_PACKAGES


@contextmanager
def logs_kept_by(iris: Iris) -> Iterator[None]:
    """Attach the server's log ring to the root logger, as the ``iris`` command does, so GetLogs has records
    to return; at INFO, so that the libraries' debug records cannot push Iris's own out of the ring. Only
    Iris's own records are kept: the libraries in this process (the test's HTTP clients, the SDK) log or not
    depending on what ran before in the same process, which would make the store names vary."""
    root = logging.getLogger()
    old_level = root.level
    clients = _OnlyIris()
    iris.logs.addFilter(clients)
    root.addHandler(iris.logs)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(iris.logs)
        iris.logs.removeFilter(clients)
        root.setLevel(old_level)


async def test_rest_and_mcp_replies_match_the_golden_fixture(tmp_path: Path) -> None:
    config = write_config(tmp_path, teams={"delta": {"description": "team delta", "grantPermission": "ask"}})
    async with asyncio.timeout(60), start_iris(tmp_path, config, http=True) as iris:
        assert iris.running.offline_model is not None and iris.running.http_port is not None
        # Ports are picked by the system: the texts that quote one (a failed turn names the model's
        # address) get a placeholder in its place.
        model = iris.running.offline_model.base_url.removeprefix("http://")
        addresses = [iris.target, f"127.0.0.1:{iris.running.http_port}", model]
        quoted = {str(tmp_path): "<tmp>"} | dict.fromkeys(addresses, "127.0.0.1:<port>")
        record = Recorder(Normalizer(quoted))
        base = f"http://127.0.0.1:{iris.running.http_port}"
        headers = {"authorization": f"Bearer {iris.admin_key}"}
        with logs_kept_by(iris):
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                await rest_script(http, record)
            await mcp_script(iris, f"{base}/mcp", record)

    assert_covers_the_contract(record.entries)
    if os.environ.get(RECORD_ENV) == "1":
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(record.entries, ensure_ascii=False, indent=2) + "\n")
        pytest.fail(
            f"{RECORD_ENV}=1: recorded {len(record.entries)} replies to {FIXTURE}; review, then commit"
        )
    golden = json.loads(FIXTURE.read_text())
    assert [e["call"] for e in record.entries] == [e["call"] for e in golden], "the script changed: record it"
    mismatches = [
        line for got, want in zip(record.entries, golden, strict=True) for line in differences(got, want)
    ]
    assert not mismatches, "\n".join(mismatches)


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """How one recorded reply differs from its golden entry: status, content type, and body as serialized
    (no sort_keys: key order is part of the bytes)."""
    found = []
    for part in ("status", "contentType", "isError", "body"):
        mine, golden = (
            json.dumps(got.get(part), ensure_ascii=False),
            json.dumps(want.get(part), ensure_ascii=False),
        )
        if mine != golden:
            found.append(f"{got['call']}: {part} differs\n  golden: {golden}\n  now:    {mine}")
    return found


def assert_covers_the_contract(entries: list[dict[str, Any]]) -> None:
    """Every RPC is called over REST and every tool over MCP (a call's name starts with its RPC or tool)."""
    called = {e["call"].split()[0] for e in entries if "status" in e}
    assert not {m.name for m in IRIS_SERVICE.methods} - called
    tools = {e["call"].split()[1] for e in entries if "isError" in e}
    assert not {t.name for t in iris_tools()} - tools
