"""Placement on a Ray cluster (``placement: {kind: ray, address: ...}``): each pair's process in a Ray actor.

Iris is a client of an existing cluster, never its scheduler: on a team's first launch it connects
(``ray.init(address, namespace)``, once per Iris: one process can be the driver of one cluster), and each
launch creates one actor (``ray_actor.ClaudeActor``) declaring the team's ``cpus`` and ``memoryMb``, so Ray
places it on a node with room. The actor starts Claude Code there and serves the pair's turns until the pair
stops it (``ray_process.RayProcess``); the pool sees a ``TeamProcess`` like any other, so sessions, records,
auth and every transport are unchanged.

- **Portable conversations**: Claude Code's transcript is mirrored through the SDK's session store to Iris,
  which keeps it in ``$IRIS_HOME/transcripts.db`` (``ray_store``); a launch hands the stored entries to the
  new actor, which resumes from them on whatever node it lands. A pair resumes iff Iris holds entries for
  its session (or Claude Code's own files say so, for a pair that ran here before).
- **No orphans**: actors are not detached, so they belong to Iris's connection: when Iris ends, however it
  ends, Ray kills them, and each actor's Claude Code dies with its worker (the parent-death launcher).
- **Loaded lazily**: Ray is imported on the first launch of a team placed on it (``importlib``, so neither
  Iris's other entry points nor its type check load Ray), and ``ray.init`` runs in a worker thread: it
  blocks, and from a thread other than the main one Ray leaves Iris's signal handlers alone. Ray's driver
  runs beside grpc.aio in the same process without conflict (each has its own threads and sockets).
- **On the nodes**: the actor's class is pickled by reference, so Iris (this package and its dependencies,
  the same version) must be installed on every node, and each team's folder must exist there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import uuid
from pathlib import Path
from typing import Any

from ..claude_process import LaunchSpec
from ..config import RayPlacement
from ..errors import ProcessError
from .process import TeamProcess
from .ray_store import TRANSCRIPTS_FILE, TranscriptStore

__all__ = ["RayPlacementLauncher"]

logger = logging.getLogger(__name__)

_ACTOR_CONCURRENCY = 64
"""Calls an actor runs at once: a turn's stream, its interrupts, permission answers and the watch."""
_CONNECT_TIMEOUT_S = 60.0
"""How long Iris's stop waits for a connection still being made (a launch waits its own spawn timeout)."""
_RETRY_PAUSE_S = 0.5
"""Before placing again an actor whose node died under its start (the cluster learns of it in moments)."""
_DISCONNECT_TIMEOUT_S = 30.0
"""How long ``ray.shutdown`` may take at Iris's stop."""


class RayPlacementLauncher:
    """Starts a team's Claude Code processes inside Ray actors on the team's cluster (see the module)."""

    def __init__(self, home: Path) -> None:
        self._home = home
        self._opening = asyncio.Lock()
        self._ray: Any = None
        """The ``ray`` module, once a team asked for it."""
        self._cluster: RayPlacement | None = None
        """The cluster this Iris is a client of (address and namespace), once connected."""
        self._connecting: asyncio.Future[None] | None = None
        self._actor_class: Any = None
        self._transcripts: TranscriptStore | None = None

    async def launch(self, spec: LaunchSpec, timeout_s: float) -> TeamProcess:
        """Start the process of ``spec`` in a Ray actor, resuming its conversation from Iris's copy.

        Raises:
            ProcessError: no connection to the cluster, no node with room within ``timeout_s``, or Claude
                Code failed to start on its node; no actor is left behind.

        """
        from .ray_process import RayProcess
        from .ray_wire import ActorStarted

        placement = spec.ray
        if placement is None:
            raise ProcessError(f"{spec.pair} is not placed on Ray")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        transcripts = await self._open(placement, timeout_s)
        stored = await transcripts.load(spec.session_id)
        resume = spec.resume or bool(stored.get(""))
        ray = self._ray
        wire = dataclasses.replace(spec, can_use_tool=None, resume=resume)
        while True:
            actor = self._actor_class.options(
                name=f"claude:{spec.pair}:{uuid.uuid4().hex[:8]}",
                num_cpus=placement.cpus,
                memory=placement.memory_mb * 2**20,
                max_concurrency=_ACTOR_CONCURRENCY,
                max_restarts=0,
            ).remote()
            remaining = max(deadline - loop.time(), 0.001)
            try:
                async with asyncio.timeout(remaining):
                    started = await actor.start.remote(wire, stored, spec.can_use_tool is not None, remaining)
                break
            except BaseException as exc:
                _kill_quietly(ray, actor)
                if isinstance(exc, TimeoutError):
                    raise ProcessError(
                        f"Claude Code on the Ray cluster was not ready within {timeout_s:g}s (a node with "
                        f"{placement.cpus:g} CPUs and {placement.memory_mb} MB free, and a start on it)"
                    ) from exc
                if isinstance(exc, ray.exceptions.ActorDiedError) and deadline - loop.time() > _RETRY_PAUSE_S:
                    # Placed on a node that died before the cluster knew it: another node, within the time.
                    logger.info("the actor of %s died while starting; placing it again", spec.pair)
                    await asyncio.sleep(_RETRY_PAUSE_S)
                    continue
                if isinstance(exc, ray.exceptions.RayError):
                    raise ProcessError(f"Claude Code failed to start on Ray: {type(exc).__name__}") from exc
                raise
        if not isinstance(started, ActorStarted):
            _kill_quietly(ray, actor)
            raise ProcessError(started.message)
        node = f"node {started.node_id[:12]} at {started.node_ip}"
        logger.info(
            "Claude Code process %s of %s started on Ray, %s (%s)",
            started.pid,
            spec.pair,
            node,
            "resumed from Iris's transcript" if stored.get("") else "a new session",
        )
        return RayProcess(
            actor,
            dataclasses.replace(spec, resume=resume),
            started.pid,
            node,
            transcripts,
            kill_actor=lambda handle: ray.kill(handle, no_restart=True),
            cancel_stream=ray.cancel,
            ray_error=ray.exceptions.RayError,
        )

    async def _open(self, placement: RayPlacement, timeout_s: float) -> TranscriptStore:
        """Connect to the cluster (once) and open the transcript store; bounded by ``timeout_s``.

        Raises:
            ProcessError: a connection to another cluster exists, or this one could not be made in time.

        """
        async with self._opening:
            if self._transcripts is None:
                store = TranscriptStore(self._home / TRANSCRIPTS_FILE)
                await store.open()
                self._transcripts = store
            if self._cluster is not None:
                if (self._cluster.address, self._cluster.namespace) != (
                    placement.address,
                    placement.namespace,
                ):
                    raise ProcessError(
                        f"Iris is a client of the Ray cluster at {self._cluster.address} (namespace "
                        f"{self._cluster.namespace}) and one process can be the client of one cluster "
                        f"only; {placement.address} (namespace {placement.namespace}) is refused"
                    )
                return self._transcripts
            if self._connecting is None or (self._connecting.done() and self._connecting.exception()):
                self._connecting = asyncio.ensure_future(self._connect(placement))
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._connecting)
            except TimeoutError as exc:
                raise ProcessError(
                    f"Could not connect to the Ray cluster at {placement.address} within {timeout_s:g}s"
                ) from exc
            except ProcessError:
                raise
            except Exception as exc:  # noqa: BLE001 - Ray's own errors (no such cluster, a refused client)
                failure = f"{type(exc).__name__}: {exc}"
                raise ProcessError(
                    f"Could not connect to the Ray cluster at {placement.address}: {failure}"
                ) from exc
            self._cluster = placement
            return self._transcripts

    async def _connect(self, placement: RayPlacement) -> None:
        """Import Ray and connect as a client (a driver), both in a worker thread (both block)."""
        try:
            ray = await asyncio.to_thread(_import_ray)
        except ImportError as exc:
            raise ProcessError(
                "placement kind ray needs the ray package in Iris's environment: pip install 'iris[ray]'"
            ) from exc
        from .ray_actor import ClaudeActor

        def connect() -> None:
            ray.init(
                address=placement.address,
                namespace=placement.namespace,
                log_to_driver=False,  # the actors' output stays in the cluster's logs
                configure_logging=False,  # Iris's logging is Iris's
            )

        self._ray = ray  # before the connection, so a stop that comes meanwhile still shuts it down
        self._actor_class = ray.remote(ClaudeActor)
        await asyncio.to_thread(
            connect
        )  # bounded by Ray itself; a launch waits for it within its own deadline
        logger.info(
            "connected to the Ray cluster at %s (namespace %s)", placement.address, placement.namespace
        )

    async def aclose(self) -> None:
        """Disconnect from the cluster, if connected (any actor left dies with the connection)."""
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                    await asyncio.shield(connecting)
            except Exception as exc:  # noqa: BLE001 - a connection that never came needs no shutdown
                logger.debug("the Ray connection never came: %r", exc)
            if self._ray is not None and self._ray.is_initialized():
                try:
                    async with asyncio.timeout(_DISCONNECT_TIMEOUT_S):
                        await asyncio.to_thread(self._ray.shutdown)
                except Exception as exc:  # noqa: BLE001 - logged; Iris is stopping anyway
                    logger.error("disconnecting from the Ray cluster failed: %r", exc)
        self._cluster = None
        self._ray = None
        transcripts, self._transcripts = self._transcripts, None
        if transcripts is not None:
            await transcripts.aclose()


def _kill_quietly(ray: Any, actor: Any) -> None:
    """Kill an actor whose start failed; it may be gone already."""
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # noqa: BLE001 - the start's failure is what the caller needs
        logger.debug("killing an actor that failed to start: %r", exc)


def _import_ray() -> Any:
    """Import Ray, and undo what its import does to the process's logging (Iris's logging is Iris's).

    Importing ``ray`` replaces the process's log record factory (every record of every logger, Iris's too,
    would carry a ``_ray_timestamp_ns`` field into ``GetLogs``), and gives the ``ray`` logger a stderr handler
    of its own that bypasses Iris's. The factory is put back, and Ray's records go through Iris's handlers.
    """
    factory = logging.getLogRecordFactory()
    try:
        ray = importlib.import_module("ray")
    finally:
        logging.setLogRecordFactory(factory)
    ray_logger = logging.getLogger("ray")
    for handler in list(ray_logger.handlers):
        ray_logger.removeHandler(handler)
    ray_logger.propagate = True
    return ray
