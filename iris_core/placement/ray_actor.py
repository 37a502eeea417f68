"""The Ray actor that owns one pair's Claude Code process on a node of the cluster.

It runs on the node, in a Ray worker: it starts Claude Code with the same ``launch_claude`` as a local pair
(through the parent-death launcher, so Claude Code dies with the actor's worker however the worker dies),
runs turns and streams their events back as a Ray streaming generator, interrupts, and stops. Nothing in it
holds a reference to Iris: what Iris must decide or keep travels in the turn's stream (``ray_wire``):

- **permissions**: the ``can_use_tool`` callback puts a ``PermissionAsk`` into the running turn's stream and
  waits for Iris's ``answer``; a turn that ends first denies what is still open, so no ask outlives its turn;
- **the transcript**: the SDK mirrors every entry Claude Code writes to the actor's session store, which puts
  it into the stream as a ``TranscriptBatch`` (or keeps it for ``stop`` between turns). The SDK flushes the
  mirror before it hands over a turn's result, so the batch is ahead of the result in the stream, and Iris
  keeps it before it reports the turn. A new actor, on any node, gets the entries back and resumes from them.

Importing it needs Ray only on the node (``ray.get_runtime_context`` for the node's id); Iris imports it
lazily, when a team is placed on Ray. The class is made a Ray actor by ``ray.remote(ClaudeActor)`` in Iris
(``ray.RayPlacementLauncher``), so Ray pickles it by reference: Iris must be installed on every node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from claude_agent_sdk import PermissionResult, PermissionResultDeny, ToolPermissionContext
from claude_agent_sdk.types import SessionKey, SessionListSubkeysKey, SessionStore, SessionStoreEntry

from ..claude_process import ClaudeProcess, LaunchSpec, TurnResult, launch_claude
from ..deathsig import write_launcher
from ..errors import ProcessError, ProcessGoneError
from ..transcripts import claude_config_dir, find_transcripts
from .ray_wire import (
    ActorStarted,
    PermissionAsk,
    ResultOnWire,
    Sent,
    Started,
    StartFailure,
    TranscriptBatch,
    TurnFailure,
)

__all__ = ["ClaudeActor"]

logger = logging.getLogger(__name__)

_DONE = object()
"""Ends a turn's outbox."""
_FOLDER_PREFIX = "iris-claude-"
"""The actors' temporary folders: ``iris-claude-<worker pid>-<random>`` in the node's temporary folder."""


class ClaudeActor:
    """One pair's Claude Code process, owned by a Ray actor on a node (see the module's docstring).

    Its methods are called by ``ray_process.RayProcess`` in Iris, one turn at a time, with ``interrupt``,
    ``answer`` and ``watch`` alongside (an async actor runs them concurrently on its event loop).
    """

    def __init__(self) -> None:
        self._process: ClaudeProcess | None = None
        self._folder: Path | None = None
        self._outbox: asyncio.Queue[object] | None = None
        """The running turn's stream; None between turns."""
        self._held: list[TranscriptBatch] = []
        """Transcript mirrored while no turn streams (the final flush of a stop), handed over by ``stop``."""
        self._asks: dict[str, asyncio.Future[PermissionResult]] = {}

    async def start(
        self,
        spec: LaunchSpec,
        transcript: Mapping[str, Sequence[SessionStoreEntry]],
        asks_permission: bool,
        timeout_s: float,
    ) -> ActorStarted | StartFailure:
        """Start Claude Code for ``spec`` on this node; resume from ``transcript`` (Iris's copy) if any.

        ``asks_permission``: Iris has a ``can_use_tool`` callback for the pair (which cannot travel), so
        Claude Code's questions are bridged to it through the turn's stream.
        """
        ray = importlib.import_module("ray")  # run inside a Ray worker only; a module object, untyped

        self._folder = _own_folder()
        env = dict(spec.env)
        # The SDK finds mirrored entries by the projects folder the CLI writes to; it must know that folder,
        # which it reads from CLAUDE_CONFIG_DIR only (a HOME of the team's would otherwise be missed).
        env.setdefault("CLAUDE_CONFIG_DIR", str(claude_config_dir({**os.environ, **env})))
        resume = spec.resume or bool(find_transcripts({**os.environ, **env}, spec.session_id))
        spec = dataclasses.replace(
            spec, env=env, resume=resume, can_use_tool=self._ask if asks_permission else None
        )
        try:
            self._process = await launch_claude(
                spec,
                timeout_s=timeout_s,
                launcher=write_launcher(self._folder),
                # Duck-typed as the SDK allows (it probes for the optional methods before using them).
                session_store=cast(SessionStore, _MirrorToIris(self, transcript)),
            )
        except ProcessError as exc:
            self._remove_folder()
            return StartFailure(exc.message)
        context = ray.get_runtime_context()
        node_ip = ray.util.get_node_ip_address()
        return ActorStarted(self._process.pid, context.get_node_id(), node_ip)

    async def turn(self, prompt: str, prompt_uuid: str | None) -> AsyncIterator[object]:
        """Run one turn; yield its markers, transcript batches, permission asks and events, in order.

        Never raises for the turn's own failure: it ends with a ``TurnFailure`` instead, so Iris tells a
        failed turn (the process is there) from a dead actor (a Ray error).
        """
        process = self._process
        if process is None:
            yield TurnFailure("the actor has no Claude Code process", gone=True)
            return
        outbox: asyncio.Queue[object] = asyncio.Queue()
        for batch in self._held:
            outbox.put_nowait(batch)
        self._held.clear()
        self._outbox = outbox

        async def on_sent() -> None:
            outbox.put_nowait(Sent())

        async def on_started() -> None:
            outbox.put_nowait(Started())

        async def pump() -> None:
            try:
                events = process.run_turn(
                    prompt, prompt_uuid=prompt_uuid, on_sent=on_sent, on_started=on_started
                )
                async for event in events:
                    outbox.put_nowait(ResultOnWire.of(event) if isinstance(event, TurnResult) else event)
            except ProcessGoneError as exc:
                outbox.put_nowait(TurnFailure(exc.message, gone=True))
            except ProcessError as exc:
                outbox.put_nowait(TurnFailure(exc.message, gone=False))
            except Exception as exc:  # noqa: BLE001 - reported to Iris as the turn's failure
                outbox.put_nowait(TurnFailure(f"the actor failed during the turn: {exc!r}", gone=False))
            finally:
                outbox.put_nowait(_DONE)

        running = asyncio.create_task(pump(), name="claude-turn")
        try:
            while (item := await outbox.get()) is not _DONE:
                yield item
        finally:
            self._outbox = None
            if not running.done():  # Iris cancelled the stream (a turn past its deadline, a shutdown)
                running.cancel()
            await asyncio.wait({running})
            while not outbox.empty():  # mirrored after the result: kept for the next turn or the stop
                if isinstance(left := outbox.get_nowait(), TranscriptBatch):
                    self._held.append(left)
            for request_id, future in list(self._asks.items()):
                if not future.done():
                    future.set_result(PermissionResultDeny(message="the turn ended before a decision"))
                self._asks.pop(request_id, None)

    async def interrupt(self) -> str | None:
        """Interrupt the running turn (bounded, see ``ClaudeProcess.interrupt``); why it failed, or None."""
        if self._process is None:
            return "the actor has no Claude Code process"
        try:
            await self._process.interrupt()
        except ProcessError as exc:
            return exc.message
        return None

    async def answer(self, request_id: str, result: PermissionResult) -> None:
        """Iris's decision on a ``PermissionAsk`` (ignored once its turn has ended)."""
        future = self._asks.get(request_id)
        if future is not None and not future.done():
            future.set_result(result)

    async def watch(self) -> int:
        """Return once Claude Code has exited (its pid), so Iris learns it without asking on every check.

        Iris keeps this call pending for the process's life; when the actor dies instead, the call fails,
        which Iris reads the same way. Bounded by the actor's life, which ends with the pair.
        """
        process = self._process
        if process is None:
            return 0
        await process.wait_exited()
        return process.pid

    async def stop(self, grace_s: float) -> list[TranscriptBatch]:
        """Stop Claude Code gracefully (last entries flushed), else kill it; return the entries to keep."""
        if self._process is not None:
            await self._process.stop(grace_s=grace_s)
        self._remove_folder()
        held, self._held = self._held, []
        return held

    # --- the bridges ---------------------------------------------------------------------------------

    async def _ask(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """``can_use_tool`` on the node: ask Iris through the running turn's stream; wait for its answer."""
        outbox = self._outbox
        if outbox is None:
            return PermissionResultDeny(message="no turn is running to ask in")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[PermissionResult] = asyncio.get_running_loop().create_future()
        self._asks[request_id] = future
        try:
            outbox.put_nowait(
                PermissionAsk(request_id, tool_name, tool_input, dataclasses.replace(context, signal=None))
            )
            return await future  # answered by Iris, or denied when the turn ends (``turn``'s finally)
        finally:
            self._asks.pop(request_id, None)

    def mirrored(self, subpath: str, entries: list[SessionStoreEntry]) -> None:
        """Hand entries the SDK mirrored to Iris: into the running turn's stream, else held for ``stop``."""
        batch = TranscriptBatch(subpath, [dict(entry) for entry in entries])
        if self._outbox is not None:
            self._outbox.put_nowait(batch)
        else:
            self._held.append(batch)

    def _remove_folder(self) -> None:
        folder, self._folder = self._folder, None
        if folder is not None:
            tempfile.tempdir = None
            shutil.rmtree(folder, ignore_errors=True)


class _MirrorToIris:
    """The SDK's session store on the node: appends go to Iris (``ClaudeActor.mirrored``).

    Loads come from the copy Iris sent at start, whatever project key the node's folder gives (a session id
    is unique).
    """

    def __init__(self, actor: ClaudeActor, transcript: Mapping[str, Sequence[SessionStoreEntry]]) -> None:
        self._actor = actor
        self._transcript = transcript

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        """Forward entries just written on the node."""
        self._actor.mirrored(key.get("subpath") or "", entries)

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        """Return Iris's copy of a transcript (None if Iris has none: a new session)."""
        entries = self._transcript.get(key.get("subpath") or "")
        return list(entries) if entries else None

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        """Name the subagent transcripts Iris holds, so a resume brings them along."""
        return [subpath for subpath in self._transcript if subpath]


def _own_folder() -> Path:
    """Make this actor's temporary folder, the worker's temporary folder too; sweep dead actors' folders.

    It holds the parent-death launcher and what the SDK writes for a resume (a copy of the transcript, and of
    Claude Code's credentials): a Ray worker hosts one actor, so the SDK's temporary files go here too, and
    an actor killed with its node (which cleans nothing) leaves one folder, removed by the next actor that
    starts on the node.
    """
    base = Path(tempfile.gettempdir())
    for stale in base.glob(f"{_FOLDER_PREFIX}*"):
        owner = stale.name.removeprefix(_FOLDER_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-", dir=base))
    tempfile.tempdir = str(folder)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
