"""The offline model's script: what it answers to a Messages API request.

Everything here is a pure function of the request body, so the script can be tested without a server and the
server stays a thin renderer. The reply is decided from the user's newest words (see :func:`user_text`); each
command is one small function, looked up by the first word of those words:

=====================  ===================================================================================
``slow N MS``          N text chunks ``"chunk 1 "`` .. ``"chunk N "``, waiting MS ms before each one.
``chunks a|b|c``       the given chunks, in order, exactly (empty pieces are dropped).
``remember WORD``      ``"ok, remembering WORD"``.
``recall``             ``"you told me: W1, W2"``: every earlier ``remember`` in the history, in order.
``tool NAME JSON``     one ``tool_use`` block calling NAME with the JSON object as input.
``error STATUS``       an HTTP error STATUS with an Anthropic error body; add ``noretry`` to forbid retries.
``say TEXT``           exactly TEXT.
anything else         ``"echo: <text>"``.
=====================  ===================================================================================

When the newest user message carries a ``tool_result`` (Claude Code ran the tool we asked for), the reply is
``"tool result: <its text>"`` so a test can see what the tool returned.

Claude Code retries HTTP 401, 429, 5xx and 529 (overloaded) replies with exponential backoff (1, 2, 4, 8 ...
seconds, ten attempts), so ``error 500`` takes minutes to surface. ``error 500 noretry`` sends
``x-should-retry: false`` and Claude Code gives up after one request. A 400 fails the turn at once, though
Claude Code first re-sends the request a few times with optional features switched off.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ScriptedReply",
    "ToolCall",
    "decide_reply",
    "error_body",
    "estimate_tokens",
    "user_text",
]

_SYSTEM_REMINDER = "<system-reminder>"
_TOOL_RESULT_LIMIT = 2000
_COMMAND = re.compile(r"(\S+)(?:\s(.*))?", re.DOTALL)
_WORD_CHUNK = re.compile(r"\s*\S+\s*|\s+")

_ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class ToolCall:
    """A tool the model asks Claude Code to run: rendered as one ``tool_use`` content block."""

    id: str
    """The ``toolu_...`` id Claude Code echoes back in its ``tool_result``."""
    name: str
    """The tool's name, e.g. ``Bash`` or ``mcp__iris__list_teams``."""
    input: Mapping[str, Any]
    """The tool's arguments."""


@dataclass(frozen=True)
class ScriptedReply:
    """What the offline model answers, independent of how it is rendered (SSE or JSON).

    Exactly one shape applies: an HTTP error when ``error_status`` is set, else the text ``chunks`` (possibly
    none) followed by ``tool`` when it is set.
    """

    chunks: tuple[str, ...] = ()
    """Text pieces, streamed as one ``text_delta`` each; the reply's text is their concatenation."""
    delay_s: float = 0.0
    """Seconds to wait before each chunk, so tests can watch, time out, cancel or kill a turn mid-stream."""
    tool: ToolCall | None = None
    """A tool call after the text; the reply then stops with ``tool_use`` instead of ``end_turn``."""
    error_status: int | None = None
    """An HTTP status (400-599) to fail the request with, instead of any content."""
    retry: bool = True
    """Whether the client may retry an error; False sends ``x-should-retry: false``."""

    @property
    def text(self) -> str:
        """The whole text of the reply."""
        return "".join(self.chunks)

    @property
    def stop_reason(self) -> str:
        """``tool_use`` when the reply calls a tool, else ``end_turn``."""
        return "end_turn" if self.tool is None else "tool_use"


def decide_reply(body: Mapping[str, Any]) -> ScriptedReply:
    """Decide the reply to a Messages API request body.

    Args:
        body: The decoded JSON body of ``POST /v1/messages``.

    Returns:
        The scripted reply; never raises for a malformed body (an unexpected shape is echoed instead), because
        a test model that crashes is harder to debug than one that answers something visible.

    """
    messages = _messages(body)
    tool_text = _newest_tool_result_text(messages)
    if tool_text is not None:
        return _text_reply(f"tool result: {tool_text[:_TOOL_RESULT_LIMIT]}")
    text = user_text(body)
    match = _COMMAND.fullmatch(text)
    if match is not None:
        handler = _COMMANDS.get(match.group(1))
        if handler is not None:
            reply = handler(match.group(2) or "", messages)
            if reply is not None:
                return reply
    return _text_reply(f"echo: {text}")


def user_text(body: Mapping[str, Any]) -> str:
    """Return the user's words: the newest user text that is not a ``<system-reminder>``.

    Claude Code wraps context (dates, file hints, reminders) in extra text blocks starting with
    ``<system-reminder>``; those are not what the user typed, so they are skipped.

    Args:
        body: The decoded JSON body of ``POST /v1/messages``.

    Returns:
        The text, or ``""`` when no user message has any.

    """
    for message in reversed(_messages(body)):
        if message.get("role") != "user":
            continue
        texts = [text for text in _texts(message.get("content")) if not text.startswith(_SYSTEM_REMINDER)]
        if texts:
            return texts[-1]
    return ""


def error_body(status: int, message: str = "offline model: scripted error") -> dict[str, Any]:
    """Return the Anthropic error body for an HTTP status, with the error type the real API would use.

    Args:
        status: The HTTP status.
        message: The human-readable message.

    Returns:
        ``{"type": "error", "error": {"type": ..., "message": ...}}``.

    """
    fallback = "invalid_request_error" if status < 500 else "api_error"
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, fallback), "message": message}}


def estimate_tokens(value: object) -> int:
    """Estimate a token count the way a rough tokenizer would: about four characters per token.

    Real-looking ``usage`` numbers let Claude Code compute a cost and context size for each turn.

    Args:
        value: A string, or any JSON-serialisable value (measured as compact JSON).

    Returns:
        At least 1.

    """
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return max(1, len(text) // 4)


def _text_reply(text: str, delay_s: float = 0.0) -> ScriptedReply:
    return ScriptedReply(chunks=tuple(_WORD_CHUNK.findall(text)), delay_s=delay_s)


def _slow(args: str, _messages: Sequence[Mapping[str, Any]]) -> ScriptedReply | None:
    parts = args.split()
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    count, delay_ms = int(parts[0]), int(parts[1])
    return ScriptedReply(chunks=tuple(f"chunk {i} " for i in range(1, count + 1)), delay_s=delay_ms / 1000)


def _chunks(args: str, _messages: Sequence[Mapping[str, Any]]) -> ScriptedReply:
    return ScriptedReply(chunks=tuple(piece for piece in args.split("|") if piece))


def _remember(args: str, _messages: Sequence[Mapping[str, Any]]) -> ScriptedReply:
    return _text_reply(f"ok, remembering {args.strip()}")


def _recall(_args: str, messages: Sequence[Mapping[str, Any]]) -> ScriptedReply:
    words = [word for text in _user_texts(messages) if (word := _remembered_word(text))]
    return _text_reply(f"you told me: {', '.join(words) if words else 'nothing'}")


def _tool(args: str, _messages: Sequence[Mapping[str, Any]]) -> ScriptedReply | None:
    name, _, raw_input = args.strip().partition(" ")
    if not name:
        return None
    try:
        tool_input = json.loads(raw_input) if raw_input.strip() else {}
    except json.JSONDecodeError as exc:
        return _text_reply(f"offline model: tool input is not JSON: {exc}")
    if not isinstance(tool_input, dict):
        return _text_reply("offline model: tool input must be a JSON object")
    return ScriptedReply(tool=ToolCall(id=f"toolu_{secrets.token_hex(12)}", name=name, input=tool_input))


def _error(args: str, _messages: Sequence[Mapping[str, Any]]) -> ScriptedReply | None:
    status, *flags = args.split() or [""]
    if not status.isdigit() or not 400 <= int(status) <= 599 or flags not in ([], ["noretry"]):
        return None
    return ScriptedReply(error_status=int(status), retry=not flags)


def _say(args: str, _messages: Sequence[Mapping[str, Any]]) -> ScriptedReply:
    return _text_reply(args)


_Handler = Callable[[str, Sequence[Mapping[str, Any]]], ScriptedReply | None]

_COMMANDS: Mapping[str, _Handler] = {
    "slow": _slow,
    "chunks": _chunks,
    "remember": _remember,
    "recall": _recall,
    "tool": _tool,
    "error": _error,
    "say": _say,
}


def _remembered_word(text: str) -> str:
    match = _COMMAND.fullmatch(text.strip())
    if match is None or match.group(1) != "remember":
        return ""
    return (match.group(2) or "").strip()


def _messages(body: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [message for message in messages if isinstance(message, dict)]


def _user_texts(messages: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    for message in messages:
        if message.get("role") == "user":
            texts = _texts(message.get("content"))
            yield from (text for text in texts if not text.startswith(_SYSTEM_REMINDER))


def _texts(content: object) -> list[str]:
    """Return the text of a message's content, which is a string or a list of content blocks."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        block["text"]
        for block in content
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    ]


def _newest_tool_result_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """Return the text of the ``tool_result`` blocks in the newest user message, or None if it has none."""
    newest_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = newest_user.get("content") if newest_user is not None else None
    if not isinstance(content, list):
        return None
    results = [block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"]
    if not results:
        return None
    return "\n".join("\n".join(_texts(block.get("content"))) for block in results)
