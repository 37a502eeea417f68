"""One real Claude Code process, driven through claude-agent-sdk's ``ClaudeSDKClient``.

This is the seam where a process is started: ``launch_claude`` is the only place that knows a Claude Code
process is a local child. Everything above it (pool, sessions, records, servicer) sees a ``ClaudeProcess``
with ``run_turn``, ``interrupt``, ``stop``, ``pid`` and ``exited``, so placing processes elsewhere later
(SSH, Ray actors) means another launcher, not another pool.

Starting is ``connect()``, which spawns the CLI and completes the initialize handshake; no model turn is
spent on a "ping".

The seam relies on one thing the SDK does not promise: the child process behind a connected client (its pid
is part of the contract, and killing and reaping it is how Iris guarantees no orphan). ``check_sdk_seam``
verifies it at start-up, so an SDK that changed refuses to start Iris with a message naming its version,
instead of every live process looking dead to the reaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import math
import os
import signal
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    CanUseTool,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    RateLimitEvent,
    ResultMessage,
    StreamEvent,
    ToolUseBlock,
)
from claude_agent_sdk.types import CanUseToolShadowedWarning, McpServerConfig, SessionStore

from .children import MARKER_ENV, ChildRegistry
from .config import RayPlacement, SshRemote
from .deathsig import LAUNCHER_MESSAGE_PREFIX, PARENT_ENV, TARGET_ENV, real_cli
from .errors import ConfigurationError, ProcessError, ProcessGoneError, RewindRefusedError
from .rewind import REFUSAL
from .run_as import KEEP_ENV, RUN_AS_ENV, Identity
from .spend import ModelSpend, ModelTotals, spend_since

# A team's allowedTools is a deliberate "approve without asking"; the SDK warns that such tools skip
# can_use_tool, which is exactly what the config means.
warnings.filterwarnings("ignore", category=CanUseToolShadowedWarning)

__all__ = [
    "ApiRateLimit",
    "ClaudeProcess",
    "LaunchSpec",
    "TextDelta",
    "ToolCall",
    "TurnResult",
    "check_sdk_seam",
    "launch_claude",
]

logger = logging.getLogger(__name__)

# A large tool output (a file read, a long Bash output) arrives as one JSON line; the SDK's 1 MiB default
# would kill the turn.
_MAX_BUFFER_BYTES = 32 * 1024 * 1024
_INTERRUPT_TIMEOUT_S = 5.0
"""Claude Code answers an interrupt within milliseconds; past this it is not going to."""
_EXIT_POLL_S = 0.05
"""How often an interrupt in flight checks that the child is still alive to answer it."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything needed to start the Claude Code process of one pair."""

    cwd: Path
    """The target team's project folder."""
    env: Mapping[str, str]
    """Environment added to the server's own (the server's environment is inherited)."""
    session_id: str
    """The pair's Claude session id."""
    resume: bool
    """True to resume an existing conversation, False to start the session under ``session_id``."""
    can_use_tool: CanUseTool | None = None
    """Permission callback (grantPermission), asked when Claude Code's rules say "ask"."""
    model: str | None = None
    """Model name, or Claude Code's default."""
    tools: Sequence[str] | None = None
    """The built-in tools the process has at all: None for Claude Code's own set, empty for none."""
    allowed_tools: Sequence[str] = ()
    """Tools allowed without asking."""
    disallowed_tools: Sequence[str] = ()
    """Tools never allowed."""
    mcp_servers: Mapping[str, McpServerConfig] = field(default_factory=dict)
    """MCP servers given to the process."""
    pair: str = ""
    """The pair it serves (``from->to``), for the record of started processes and the logs."""
    run_as: Identity | None = None
    """The unprivileged user the process runs as (the team's ``runAs``); None for Iris's own user."""
    resume_at: str | None = None
    """With ``resume``: load the conversation only up to this transcript entry (a rewind, see ``rewind``)."""
    drops_turn: str | None = None
    """With ``resume_at``: the prompt uuid of the attempt the rewind drops, which Claude Code checks."""
    rewound_for: str = ""
    """The message id of the cut-off turn this process was started for (rewound or not), if any."""
    max_budget_usd: float | None = None
    """The most one turn may cost (the team's ``maxTurnBudgetUsd``); Claude Code stops a turn there."""
    remote: SshRemote | None = None
    """The host the process runs on over SSH (the team's ``remote``); ``cwd`` is a folder there."""
    ray: RayPlacement | None = None
    """The Ray cluster the process runs on (the team's ``placement``); None with ``remote`` None: here."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Claude decided to use a tool."""

    name: str
    input: dict[str, Any]
    tool_use_id: str


@dataclass(frozen=True, slots=True)
class TurnResult:
    """The end of a turn as Claude Code reports it."""

    text: str
    is_error: bool
    session_id: str
    cost_usd: float
    """This turn's cost (Claude Code reports a total over the process's life; this is the difference)."""
    errors: tuple[str, ...] = ()
    usage: Mapping[str, Any] = field(default_factory=dict)
    """Claude Code's token count of this turn (its result's ``usage``; per turn, not cumulative)."""
    spend: tuple[ModelSpend, ...] = ()
    """This turn's cost and tokens per model (Claude Code reports totals over the process; these are the
    differences), cache tokens included."""


@dataclass(frozen=True, slots=True)
class ApiRateLimit:
    """The Anthropic API's rate-limit status changed for this process (Claude Code's ``rate_limit_event``)."""

    status: str
    """``allowed``, ``allowed_warning`` or ``rejected``."""


TurnEvent = TextDelta | ToolCall | ApiRateLimit | TurnResult


class ClaudeProcess:
    """A connected Claude Code CLI. One turn at a time: the pool guarantees it, this class assumes it."""

    def __init__(
        self,
        client: ClaudeSDKClient,
        spec: LaunchSpec,
        on_reaped: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self.spec = spec
        self._on_reaped = on_reaped
        process = _child_of(client)
        if process is None:
            raise ProcessError(f"{_sdk()} started Claude Code but does not expose its child process")
        self._process = process
        self.pid: int = process.pid
        self._closing: asyncio.Future[None] | None = None
        self._cost_total = 0.0
        self._model_totals: ModelTotals = {}

    @property
    def exited(self) -> bool:
        """True once the child has exited (killed, crashed, or stopped), reaped or not yet.

        The returncode is set only once the event loop's child watcher has reaped the child, a moment after
        it died; the kernel knows at once, and asking it without reaping (``WNOWAIT``) costs one syscall.
        """
        return self._process.returncode is not None or _waitable_or_reaped(self.pid)

    @property
    def gone(self) -> bool:
        """True once the child has exited or is exiting: asked before a turn is sent to it.

        A multi-threaded child (Claude Code is one) killed by a signal is neither waitable nor reaped for a
        moment, its main thread already a zombie while the other threads end; /proc tells. Read only where a
        turn would otherwise be written to a dying child, not on every status check.
        """
        return self.exited or _exiting(self.pid)

    async def wait_exited(self) -> None:
        """Return once the child has exited and been reaped (a Ray actor reports its process's end so)."""
        await self._process.wait()

    async def run_turn(
        self,
        prompt: str,
        *,
        prompt_uuid: str | None = None,
        on_sent: Callable[[], Awaitable[None]] | None = None,
        on_started: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Send ``prompt`` and yield text deltas, tool calls and rate-limit changes, then one ``TurnResult``.

        ``prompt_uuid`` becomes the prompt's transcript entry's uuid, so a rewind can find it (``rewind``).
        ``on_sent`` runs once the prompt is written, before any reply is read; ``on_started`` once the first
        message of the turn arrives, when Claude Code is surely working on it (an interrupt that reached it
        between the two may have found no turn to stop).

        Raises:
            ProcessGoneError: the child was gone before the prompt could reach it (the turn may run again).
            ProcessError: the process died or the stream broke before a result arrived. Raised as soon as
                the child's output closes (no watchdog), so a killed process fails its turn at once.

        """
        await self._send(prompt, prompt_uuid)
        started = False
        try:
            if on_sent is not None:
                await on_sent()
            async for message in self._client.receive_response():
                if not started:
                    started = True
                    if on_started is not None:
                        await on_started()
                if isinstance(message, StreamEvent):
                    delta = _text_delta(message)
                    if delta:
                        yield TextDelta(delta)
                elif isinstance(message, AssistantMessage) and message.parent_tool_use_id is None:
                    for block in message.content:
                        if isinstance(block, ToolUseBlock):
                            yield ToolCall(block.name, dict(block.input), block.id)
                elif isinstance(message, RateLimitEvent):
                    yield ApiRateLimit(str(message.rate_limit_info.status))
                elif isinstance(message, ResultMessage):
                    total = message.total_cost_usd or 0.0
                    if not math.isfinite(total):  # a broken or hostile CLI must not poison the ledger
                        total = self._cost_total
                    cost, self._cost_total = max(total - self._cost_total, 0.0), total
                    spend, self._model_totals = spend_since(self._model_totals, message.model_usage or {})
                    yield TurnResult(
                        text=message.result or "",
                        is_error=message.is_error,
                        session_id=message.session_id,
                        cost_usd=cost,
                        errors=tuple(message.errors or ()),
                        usage=dict(message.usage or {}),
                        spend=spend,
                    )
                    return
        except ProcessError:
            raise
        except Exception as exc:  # noqa: BLE001 - any SDK failure mid-turn is the process failing
            raise ProcessError(f"Claude Code process failed during the turn: {_describe(exc, self)}") from exc
        raise ProcessError(f"Claude Code process ended the turn without a result ({self._exit_text()})")

    async def _send(self, prompt: str, prompt_uuid: str | None) -> None:
        """Write the prompt, unless the child is already gone (then nothing of the turn reached Claude).

        Raises:
            ProcessGoneError: the child had exited before the prompt could be written.
            ProcessError: writing failed otherwise.

        """
        if self.gone:
            raise ProcessGoneError(f"Claude Code process had exited ({self._exit_text()})")
        message: dict[str, Any] = {
            "type": "user",
            "message": {"role": "user", "content": prompt},
            "parent_tool_use_id": None,
            "session_id": self.spec.session_id,
        }
        if prompt_uuid is not None:
            message["uuid"] = prompt_uuid
        try:
            await self._client.query(_one(message), session_id=self.spec.session_id)
        except Exception as exc:  # noqa: BLE001 - a failed write is the process failing
            if self.gone:
                raise ProcessGoneError(f"Claude Code process had exited ({self._exit_text()})") from exc
            raise ProcessError(f"Claude Code process failed during the turn: {_describe(exc, self)}") from exc

    async def interrupt(self) -> None:
        """Stop the running turn; the process stays usable (Claude Code answers within milliseconds).

        Bounded by 5 s, and by the child's life: a child being stopped, or one that exits meanwhile (killed
        by a reboot, say), can never answer, so the wait ends at once instead of running out its time.

        Raises:
            ProcessError: the interrupt could not be delivered (the process is gone).

        """
        if self._closing is not None or self.exited:
            raise ProcessError(
                f"Could not interrupt the Claude Code process: it is stopping ({self._exit_text()})"
            )
        sending = asyncio.ensure_future(self._client.interrupt())
        try:
            async with asyncio.timeout(_INTERRUPT_TIMEOUT_S):
                while not sending.done() and not self.exited:
                    await asyncio.wait({sending}, timeout=_EXIT_POLL_S)
            if not sending.done():
                raise ProcessError(
                    f"Could not interrupt the Claude Code process: it exited ({self._exit_text()})"
                )
            sending.result()
        except ProcessError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the caller as a ProcessError
            raise ProcessError(
                f"Could not interrupt the Claude Code process: {_describe(exc, self)}"
            ) from exc
        finally:
            if not sending.done():
                sending.cancel()
                await asyncio.wait({sending})

    def kill(self) -> None:
        """Send SIGKILL now (force sleep, shutdown escalation); ``stop`` still has to reap."""
        if self._process.returncode is None:
            try:
                os.kill(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def stop(self, *, force: bool = False, grace_s: float = 5.0) -> None:
        """Stop and reap the child: stdin EOF (Claude Code flushes its transcript and exits), else SIGKILL.

        The disconnect runs as its own task behind a shield, so a caller cancelled mid-stop (shutdown, a
        cancelled RPC) does not abandon the child half-closed: the SDK's close, bounded by itself, still ends.

        Args:
            force: SIGKILL at once instead of a graceful stop.
            grace_s: how long a graceful stop may take before SIGKILL.

        """
        if force:
            self.kill()
        if self._closing is None:  # one disconnect, however many stoppers (idle reaper and shutdown, say)
            self._closing = asyncio.ensure_future(self._client.disconnect())
        closing = self._closing
        try:
            await asyncio.wait_for(asyncio.shield(closing), grace_s)
        except TimeoutError:
            self.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(closing), 10)
        except Exception as exc:  # noqa: BLE001 - a failed disconnect must still leave no child behind
            logger.warning("Claude Code process %s did not disconnect cleanly: %s", self.pid, exc)
        if not closing.done():  # its owner gives up on a disconnect that outlived SIGKILL and 10 s more
            closing.cancel()
        if self._process.returncode is None:
            self.kill()
            await _reap_pid(self._process)
        await self._reaped()

    async def _reaped(self) -> None:
        """Once the child is reaped: kill what it left running (its tools) and drop its record. Once."""
        on_reaped, self._on_reaped = self._on_reaped, None
        if on_reaped is not None and self._process.returncode is not None:
            try:
                await on_reaped()
            except Exception as exc:  # noqa: BLE001 - the record is a safety net; a failure must not fail a stop
                logger.error("cleaning up after Claude Code process %s failed: %r", self.pid, exc)

    def _exit_text(self) -> str:
        code = self._process.returncode
        return "still running" if code is None else f"exit code {code}"


async def _one(message: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Yield ``message`` alone: the SDK takes a message with fields of its own (a uuid) only as a stream."""
    yield message


def _waitable_or_reaped(pid: int) -> bool:
    """Return True if the child ``pid`` has exited, without reaping it (its watcher still will)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _exiting(pid: int) -> bool:
    """Return True if ``pid`` is gone from /proc or its main thread is a zombie (the process is ending).

    Also covers the moment while the watcher thread reaps the child, when it is neither waitable nor listed.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


async def _reap_pid(process: Any) -> None:
    try:
        async with asyncio.timeout(5):
            await process.wait()
    except Exception as exc:  # noqa: BLE001 - logged; nothing more can be done for a child ignoring SIGKILL
        logger.error("Claude Code process %s could not be reaped: %s", process.pid, exc)


def _child_of(client: ClaudeSDKClient) -> Any:
    """Return the anyio Process behind a connected client, or None if the SDK no longer has it there.

    The SDK does not expose its child; the pid is part of the contract (TeamWake) and the kill switch
    (force sleep, shutdown) needs the process itself, so this one accessor reads the private attribute,
    and ``check_sdk_seam`` proves at start-up that it is still there.
    """
    transport = getattr(client, "_transport", None)
    process = getattr(transport, "_process", None)
    return process if process is not None and hasattr(process, "pid") else None


def _sdk() -> str:
    try:
        return f"claude-agent-sdk {importlib.metadata.version('claude-agent-sdk')}"
    except importlib.metadata.PackageNotFoundError:
        return "claude-agent-sdk (version unknown)"


def check_sdk_seam() -> None:
    """Verify that the installed SDK still keeps its child where ``_child_of`` reads it.

    Checked on the SDK's own classes, without starting a process: a client has ``_transport`` and the
    subprocess transport has ``_process``.

    Raises:
        ConfigurationError: the SDK changed; the message names its version and the range Iris supports.

    """
    try:
        from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport

        options = ClaudeAgentOptions()
        client = ClaudeSDKClient(options)
        transport = SubprocessCLITransport(prompt="", options=options)
        ok = hasattr(client, "_transport") and hasattr(transport, "_process")
    except Exception as exc:  # noqa: BLE001 - any failure here means the seam is gone
        logger.debug("SDK seam check failed: %r", exc)
        ok = False
    if not ok:
        raise ConfigurationError(
            f"{_sdk()} no longer exposes the Claude Code child process that Iris kills and reaps; "
            "install a claude-agent-sdk version Iris supports (see pyproject.toml)"
        )


def _text_delta(message: StreamEvent) -> str:
    if message.parent_tool_use_id is not None:
        return ""
    event = message.event
    if event.get("type") != "content_block_delta":
        return ""
    delta = event.get("delta") or {}
    if delta.get("type") != "text_delta":
        return ""
    text = delta.get("text")
    return text if isinstance(text, str) else ""


def _describe(exc: BaseException, proc: ClaudeProcess) -> str:
    return f"{type(exc).__name__} ({proc._exit_text()})"


async def launch_claude(
    spec: LaunchSpec,
    *,
    timeout_s: float,
    children: ChildRegistry | None = None,
    launcher: Path | None = None,
    program: str | None = None,
    cwd: Path | None = None,
    session_store: SessionStore | None = None,
) -> ClaudeProcess:
    """Start the Claude Code process of one pair and wait until it has completed its handshake.

    Args:
        spec: what to start.
        timeout_s: how long the start and handshake may take.
        children: the record of started processes; the process is recorded before it starts and forgotten
            once reaped (``ClaudeProcess.stop``), and carries its marker, so a crash's leftovers are reaped
            at the next start.
        launcher: the parent-death launcher (``deathsig.write_launcher``), started in place of the CLI,
            which it execs, so the process dies with Iris.
        program: what the launcher execs instead of the bundled CLI (a remote team's ``ssh``, which runs
            Claude Code on its host); the SDK speaks to it exactly as to a local CLI.
        cwd: the local working folder, when ``spec.cwd`` is not a folder here (a remote team's).
        session_store: where the SDK mirrors the transcript and, with ``spec.resume``, resumes it from (a Ray
            actor's, so the conversation does not depend on the node's disk); None for the local files only.

    Raises:
        ProcessError: the CLI failed to start or was not ready within ``timeout_s``; the child is reaped.

    """
    env = dict(spec.env)
    cli_path: str | None = None
    if spec.run_as is not None:
        if launcher is None:
            raise ProcessError("runAs needs the launcher, which switches users (Linux only)")
        env[RUN_AS_ENV] = spec.run_as.launcher_value()
    if launcher is not None:
        try:
            env[TARGET_ENV] = program or real_cli()
        except Exception as exc:  # noqa: BLE001 - CLINotFoundError and the like: the CLI cannot start
            raise ProcessError(f"Claude Code failed to start: {type(exc).__name__}: {exc}") from exc
        env[PARENT_ENV] = str(os.getpid())
        cli_path = str(launcher)
    elif program is not None:
        cli_path = program
    marker = children.new(spec.pair) if children is not None else None
    if marker is not None:
        env[MARKER_ENV] = marker
    if spec.run_as is not None:
        env[KEEP_ENV] = ",".join(sorted(env))
    options = ClaudeAgentOptions(
        cwd=str(cwd or spec.cwd),
        env=env,
        cli_path=cli_path,
        include_partial_messages=True,
        max_buffer_size=_MAX_BUFFER_BYTES,
        can_use_tool=spec.can_use_tool,
        model=spec.model,
        tools=list(spec.tools) if spec.tools is not None else None,
        allowed_tools=list(spec.allowed_tools),
        disallowed_tools=list(spec.disallowed_tools),
        mcp_servers=dict(spec.mcp_servers),
        resume=spec.session_id if spec.resume else None,
        session_id=None if spec.resume else spec.session_id,
        resume_session_at=spec.resume_at if spec.resume else None,
        resume_drops_turn=spec.drops_turn if spec.resume and spec.resume_at else None,
        max_budget_usd=spec.max_budget_usd,
        stderr=_log_stderr,
        session_store=session_store,
    )
    client = ClaudeSDKClient(options)

    async def reaped() -> None:
        if children is not None and marker is not None:
            await children.release(marker)

    try:
        async with asyncio.timeout(timeout_s):
            await client.connect()
        process = ClaudeProcess(client, spec, reaped)
        if children is not None and marker is not None:
            children.started(marker, process.pid)
    except BaseException as exc:
        await _disconnect_quietly(client)
        await reaped()
        if isinstance(exc, ProcessError):
            raise
        if spec.resume_at and REFUSAL in str(exc):
            raise RewindRefusedError(f"Claude Code refused the rewind of the session: {exc}") from exc
        if isinstance(exc, TimeoutError):
            raise ProcessError(f"Claude Code was not ready within {timeout_s:g}s") from exc
        if isinstance(exc, Exception):
            raise ProcessError(f"Claude Code failed to start: {type(exc).__name__}") from exc
        raise
    logger.info("Claude Code process %s started in %s", process.pid, spec.cwd.name)
    return process


async def _disconnect_quietly(client: ClaudeSDKClient) -> None:
    try:
        async with asyncio.timeout(15):
            await asyncio.shield(client.disconnect())
    except Exception as exc:  # noqa: BLE001 - cleanup after a failed start; the start error is what matters
        logger.debug("disconnect after failed start: %s", exc)


def _log_stderr(line: str) -> None:
    # The launcher's own refusals (a user who cannot run the CLI, say) are the one line that explains a
    # failed start; the CLI's chatter stays at debug.
    level = logging.WARNING if line.startswith(LAUNCHER_MESSAGE_PREFIX) else logging.DEBUG
    logger.log(level, "claude stderr: %s", line.rstrip())
