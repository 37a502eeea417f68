"""The stdio adapter's own JSON-RPC server against a hostile or buggy client: it answers, or refuses, and
goes on; nothing a client sends crashes it or leaves a request unanswered.

Over a real pipe, to an adapter whose Iris is unreachable (connecting is lazy, so every call it makes fails
fast with a tool error). The SDK's server refuses the same input with a JSON-RPC error.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
from collections.abc import Iterable
from typing import Any

from tests.mcp.test_stdio_wire import INITIALIZE, NO_IRIS, REPO, adapter_argv, exchange, request


async def converse(lines: Iterable[bytes], answered: set[Any], timeout_s: float = 30) -> list[dict[str, Any]]:
    """Send ``lines`` to a fresh adapter, keep its stdin open until every id in ``answered`` has its answer,
    then close it; return every message it wrote (and check that it exited cleanly)."""
    adapter = await asyncio.create_subprocess_exec(
        *adapter_argv(NO_IRIS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=os.environ,
    )
    assert adapter.stdin is not None and adapter.stdout is not None
    messages: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout_s):
            adapter.stdin.write(b"".join(lines))
            waiting = set(answered)
            while waiting:
                line = await adapter.stdout.readline()
                assert line, f"the adapter ended without answering {waiting}"
                messages.append(json.loads(line))
                if "result" in messages[-1] or "error" in messages[-1]:
                    waiting.discard(messages[-1]["id"])
            adapter.stdin.close()
            messages += [json.loads(line) for line in (await adapter.stdout.read()).splitlines()]
            assert await adapter.wait() == 0
    finally:
        if adapter.returncode is None:
            adapter.kill()
            await adapter.wait()
    return messages


def test_json_nested_too_deep_to_parse_is_a_parse_error_not_a_crash() -> None:
    """``json.loads`` raises RecursionError (not ValueError) past ~1000 levels; the SDK refuses past 200."""
    answers = exchange([b"[" * 100_000 + b"\n", b'{"a":' * 5000 + b"\n", request(7, "ping")])
    assert answers == [
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
        {"jsonrpc": "2.0", "id": 7, "result": {}},
    ]


def test_a_lone_surrogate_echoed_back_is_written_as_its_escape_not_a_crash() -> None:
    """A ``\\ud800`` escape parses to a str that UTF-8 cannot encode; echoed in an id or an error, it must
    go back out as the same escape (the client reads back what it sent)."""
    answers = exchange(
        [
            INITIALIZE,
            b'{"jsonrpc": "2.0", "id": "\\ud800\\\\", "method": "ping"}\n',
            b'{"jsonrpc": "2.0", "id": 3, "method": "no/such/\\udc00"}\n',
            request(4, "ping"),
        ]
    )
    assert answers[1:] == [
        {"jsonrpc": "2.0", "id": "\ud800\\", "result": {}},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "error": {"code": -32601, "message": "Method not found", "data": "no/such/\udc00"},
        },
        {"jsonrpc": "2.0", "id": 4, "result": {}},
    ]


async def test_a_call_to_a_tool_named_with_a_lone_surrogate_is_answered() -> None:
    """Its NotFoundError names the tool: it used to fail to encode, and the call was never answered."""
    call = b'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "no\\ud800"}}\n'
    answers = await converse([INITIALIZE, call], {1, 2})
    result = next(a for a in answers if a.get("id") == 2)["result"]
    assert result["isError"] and result["structuredContent"]["error"] == "NotFoundError"
    assert result["structuredContent"]["details"] == {"tool": "no\ud800"}


def test_bytes_that_are_not_utf8_read_as_replacement_characters_and_the_request_is_answered() -> None:
    """As the SDK reads them (stdin as UTF-8, ``errors="replace"``): not a parse error without an id."""
    answers = exchange([b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/\xff"}\n', request(2, "ping")])
    assert answers == [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32601, "message": "Method not found", "data": "no/such/\ufffd"},
        },
        {"jsonrpc": "2.0", "id": 2, "result": {}},
    ]


async def test_a_cancel_naming_request_true_does_not_cancel_request_1() -> None:
    """``true`` is no request id (the SDK drops such a cancel); in Python it equals 1 as a dict key."""
    call = request(1, "tools/call", name="list_teams")
    cancel = b'{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": true}}\n'
    initialize = INITIALIZE.replace(b'"id": 1', b'"id": 0')
    answers = await converse([initialize, call + cancel], {0, 1})
    assert next(a for a in answers if a.get("id") == 1)["result"]["isError"]  # Iris is unreachable


async def test_a_call_whose_meta_carries_trace_headers_of_the_wrong_type_is_answered() -> None:
    """OpenTelemetry's baggage propagator raised AttributeError on a non-string ``baggage``, and the call was
    never answered; a header that is not a string (or too long for one) is not a trace header."""
    initialize = INITIALIZE.replace(b'"id": 1', b'"id": 0')
    metas: list[dict[str, Any]] = [
        {"baggage": 5},
        {"baggage": [1]},
        {"traceparent": {"a": 1}},
        {"tracestate": 5, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"baggage": "k=v," * 10_000},
    ]
    calls = [request(i, "tools/call", name="list_teams", _meta=meta) for i, meta in enumerate(metas, 1)]
    answers = await converse([initialize, *calls], set(range(len(metas) + 1)))
    for i in range(1, len(metas) + 1):
        assert next(a for a in answers if a.get("id") == i)["result"]["isError"]  # Iris is unreachable


def test_run_in_a_terminal_the_adapter_leaves_it_blocking() -> None:
    """asyncio makes stdin and stdout non-blocking, and a terminal's are shared with its shell: left so,
    the next program there reads EAGAIN. (The SDK reads them blocking, in threads.)"""
    controller, terminal = pty.openpty()
    try:
        adapter = subprocess.Popen(
            adapter_argv(NO_IRIS), stdin=terminal, stdout=terminal, stderr=subprocess.DEVNULL, cwd=REPO
        )
        os.write(controller, b"\x04")  # Ctrl-D: the end of its input (the terminal keeps it until read)
        assert adapter.wait(timeout=30) == 0
        assert os.get_blocking(terminal)
    finally:
        os.close(controller)
        os.close(terminal)
