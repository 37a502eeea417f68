"""A pair's Claude Code process on a Ray node as the pool sees it: the Iris side of ``ray_actor.ClaudeActor``.

``RayProcess`` is a ``TeamProcess`` like a local child: ``run_turn`` reads the actor's streaming generator
and yields its turn events as they come, while acting on what travels with them (``ray_wire``): the prompt's
``Sent`` and the turn's ``Started`` run the pool's callbacks, a ``TranscriptBatch`` is written to Iris's
store before the stream is read further (so before the result behind it is reported), and a
``PermissionAsk`` is put to the pair's ``can_use_tool`` in a task the turn owns, whose decision goes back to
the actor.

Whether the process has ended is known without a remote call: the actor's ``watch`` call stays pending for
the process's life, and its (thread-safe) future is done once Claude Code exited or the actor died (its node
died, or it was killed). A Ray error on the stream is the process failing: before ``Sent`` the prompt never
reached Claude Code (``ProcessGoneError``: the pool runs it again on a new actor), after it the turn fails
(``ProcessError``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from claude_agent_sdk import PermissionResult, PermissionResultDeny

from ..claude_process import LaunchSpec, TurnEvent
from ..errors import ProcessError, ProcessGoneError
from .ray_store import TranscriptStore
from .ray_wire import PermissionAsk, ResultOnWire, Sent, Started, TranscriptBatch, TurnFailure

__all__ = ["RayProcess"]

logger = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 15.0
"""A small call to the actor (an interrupt, a permission's answer) that takes longer finds it gone."""
_INTERRUPT_TIMEOUT_S = 10.0
"""The actor's interrupt is bounded by 5 s on the node (``ClaudeProcess.interrupt``); the rest is Ray's."""
_STOP_MARGIN_S = 15.0
"""Past a stop's grace: the SIGKILL, the reap and the hand-over of the last transcript entries."""
_DEATH_WAIT_S = 10.0
"""How long a killed actor may take to be seen dead (Ray reports it in milliseconds)."""


class RayProcess:
    """One pair's Claude Code process, owned by a Ray actor on some node (see the module's docstring).

    One turn at a time (the pool guarantees it). ``pid`` is Claude Code's pid on its node.
    """

    def __init__(
        self,
        actor: Any,
        spec: LaunchSpec,
        pid: int,
        node: str,
        transcripts: TranscriptStore,
        kill_actor: Callable[[Any], None],
        cancel_stream: Callable[[Any], None],
        ray_error: type[Exception],
    ) -> None:
        self.spec = spec
        self.pid = pid
        self.node = node
        """The node's id and address, for the logs."""
        self._actor = actor
        self._transcripts = transcripts
        self._kill_actor = kill_actor
        self._cancel_stream = cancel_stream
        self._ray_error = ray_error
        self._watch: concurrent.futures.Future[Any] = actor.watch.remote().future()
        self._stopping: asyncio.Future[None] | None = None

    @property
    def exited(self) -> bool:
        """True once Claude Code exited or its actor died (a done future: no call to the cluster)."""
        return self._watch.done()

    @property
    def gone(self) -> bool:
        """True once it has ended or is being stopped: no turn is sent to it then."""
        return self.exited or self._stopping is not None

    async def run_turn(
        self,
        prompt: str,
        *,
        prompt_uuid: str | None = None,
        on_sent: Callable[[], Awaitable[None]] | None = None,
        on_started: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[TurnEvent]:
        """Run one turn on the actor and yield its events as they arrive (see ``TeamProcess.run_turn``).

        Raises:
            ProcessGoneError: the prompt never reached Claude Code (the process or its actor was gone).
            ProcessError: the process, its actor or its node failed during the turn.

        """
        if self.gone:
            raise ProcessGoneError(f"Claude Code on Ray had exited ({self.node})")
        stream = self._actor.turn.options(num_returns="streaming").remote(prompt, prompt_uuid)
        sent = finished = False
        asks: set[asyncio.Task[None]] = set()
        try:
            try:
                async for ref in stream:
                    item = await ref
                    if isinstance(item, TranscriptBatch):
                        await self._keep(item)
                    elif isinstance(item, Sent):
                        sent = True
                        if on_sent is not None:
                            await on_sent()
                    elif isinstance(item, Started):
                        if on_started is not None:
                            await on_started()
                    elif isinstance(item, PermissionAsk):
                        asks.add(
                            asyncio.create_task(self._decide(item), name=f"permission-{item.request_id}")
                        )
                    elif isinstance(item, TurnFailure):
                        finished = True
                        raise (ProcessGoneError if item.gone else ProcessError)(item.message)
                    elif isinstance(item, ResultOnWire):
                        finished = True
                        yield item.unwrap()
                        return
                    else:
                        yield item
            except self._ray_error as exc:
                finished = True
                failure = f"Claude Code on Ray failed during the turn: {_named(exc)} ({self.node})"
                if not sent:
                    raise ProcessGoneError(failure) from exc
                raise ProcessError(failure) from exc
            finished = True
            raise ProcessError(f"Claude Code on Ray ended the turn without a result ({self.node})")
        finally:
            for task in asks:
                task.cancel()
            if asks:
                await asyncio.wait(asks)
            if (
                not finished
            ):  # the reader left mid-turn (the turn's deadline, a shutdown): stop the actor's side
                with contextlib.suppress(Exception):
                    self._cancel_stream(stream)

    async def _keep(self, batch: TranscriptBatch) -> None:
        """Write mirrored entries to Iris's store; a failure is logged (the turn itself is not lost)."""
        try:
            await self._transcripts.append(self.spec.session_id, batch.subpath, batch.entries)
        except Exception as exc:  # noqa: BLE001 - the conversation goes on; a later resume may miss these
            logger.error("keeping the transcript of %s failed: %r", self.spec.pair, exc)

    async def _decide(self, ask: PermissionAsk) -> None:
        """Put Claude Code's question to the pair's ``can_use_tool`` and send the decision to the actor."""
        callback = self.spec.can_use_tool
        result: PermissionResult
        if callback is None:
            result = PermissionResultDeny(message="no permission callback")
        else:
            try:
                result = await callback(ask.tool_name, ask.tool_input, ask.context)
            except Exception as exc:  # noqa: BLE001 - a failed decision denies, as a local one would
                logger.error("permission decision for %s failed: %r", self.spec.pair, exc)
                result = PermissionResultDeny(message="the permission decision failed")
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                await self._actor.answer.remote(ask.request_id, result)
        except (TimeoutError, self._ray_error) as exc:
            logger.warning("could not answer a permission request of %s: %r", self.spec.pair, exc)

    async def interrupt(self) -> None:
        """Interrupt the running turn on the node (bounded).

        Raises:
            ProcessError: the interrupt could not be delivered (the process or its actor is gone).

        """
        if self.gone:
            raise ProcessError(f"Could not interrupt Claude Code on Ray: it is stopping ({self.node})")
        try:
            async with asyncio.timeout(_INTERRUPT_TIMEOUT_S):
                failure = await self._actor.interrupt.remote()
        except (TimeoutError, self._ray_error) as exc:
            raise ProcessError(f"Could not interrupt Claude Code on Ray: {type(exc).__name__}") from exc
        if failure is not None:
            raise ProcessError(str(failure))

    def kill(self) -> None:
        """Kill the actor now; its worker's death takes Claude Code with it (the parent-death signal)."""
        try:
            self._kill_actor(self._actor)
        except Exception as exc:  # noqa: BLE001 - an actor already gone is what a kill wants
            logger.debug("killing the actor of %s: %r", self.spec.pair, exc)

    async def stop(self, *, force: bool = False, grace_s: float = 5.0) -> None:
        """Stop Claude Code (its last entries kept), then the actor; wait until the process has ended.

        One stop however many stoppers; it runs behind a shield, so a stopper cancelled half-way does not
        leave the actor alive. Never raises for a process already gone.
        """
        if force:
            self.kill()
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(force=force, grace_s=grace_s))
        await asyncio.shield(self._stopping)

    async def _stop(self, *, force: bool, grace_s: float) -> None:
        if not force and not self.exited:
            try:
                async with asyncio.timeout(grace_s + _STOP_MARGIN_S):
                    held = await self._actor.stop.remote(grace_s)
                for batch in held:
                    await self._keep(batch)
            except (TimeoutError, self._ray_error) as exc:
                logger.warning("Claude Code on Ray of %s did not stop cleanly: %r", self.spec.pair, exc)
        self.kill()  # the actor dies with its pair
        ended = asyncio.wrap_future(self._watch)
        ended.add_done_callback(_retrieve)
        done, _ = await asyncio.wait({ended}, timeout=_DEATH_WAIT_S)
        if not done:
            logger.error("the actor of %s was not seen dead within %gs", self.spec.pair, _DEATH_WAIT_S)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Read a watch's outcome (a dead actor's error is the expected end), so asyncio does not report it."""
    if not future.cancelled():
        future.exception()


def _named(exc: BaseException) -> str:
    """Name a Ray error with the last line of its text (a remote error's own type and words), bounded."""
    lines = str(exc).strip().splitlines()
    last = lines[-1].strip() if lines else ""
    return f"{type(exc).__name__}: {last[:200]}" if last else type(exc).__name__
