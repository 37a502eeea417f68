"""The spans of a turn: ``iris.turn``, and under it admission, process spawn and model time.

A turn is accepted by one call (its task) and run later by its pair's driver (another task, which outlives
many turns and inherited the context of whichever call started it). So the context cannot simply flow: the
accepting call's context is captured on the turn (``TurnTrace``, made where the ``Turn`` is), and the driver
makes the turn's own span current while it admits and runs that turn (``turn_span_current``).

- ``iris.turn`` spans the turn's life, from acceptance to its end (``Turn.end`` ends it, whichever way the
  turn ends, so a turn cancelled in its queue has one too); it is a child of the accepting call's span, or,
  for an Execute job, which may run hours later, the root of a trace of its own linked to that call.
- ``iris.turn.admission`` is the wait from acceptance (or from going back to the queue) until the turn has a
  process: behind the pair's earlier turns, in the job queue, in the fair line for a slot.
- ``iris.process.spawn`` is the start of a Claude Code process (``traced_launcher``), under the turn that
  needed it; the claude-agent-sdk hands its context to the CLI as ``TRACEPARENT``, which the CLI reads once,
  at start, so Claude Code's own spans of that process hang under this span, for every turn it runs.
- ``iris.turn.model`` is the turn on its process: prompt sent, Claude Code's answer, its result.

Only the OpenTelemetry API is used: without an SDK (``pip install iris[otel]``) every span is a no-op, and
Iris decides nothing by them. No prompt or answer text is put on a span: only ids, teams, status and cost.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode

if TYPE_CHECKING:
    from .claude_process import LaunchSpec
    from .placement import TeamProcess
    from .turns import Turn

__all__ = ["TurnTrace", "model_time", "traced_launcher", "turn_span_current"]

_tracer = trace.get_tracer("iris_core")

_WAITING: ContextVar[TurnTrace | None] = ContextVar("iris_turn_waiting", default=None)
"""The trace of the turn the current driver is admitting (a spawn under it ends its admission wait)."""

_SPAWNED: weakref.WeakKeyDictionary[TeamProcess, SpanContext] = weakref.WeakKeyDictionary()
"""Each live process's ``iris.process.spawn`` span: where Claude Code's own spans of it are (see above)."""


def _ns(ms: int) -> int:
    return ms * 1_000_000


class TurnTrace:
    """Where a turn's spans belong, and the ones open now. Lives on the ``Turn`` (its ``trace`` field)."""

    __slots__ = ("_admission", "_links", "_model", "_parent", "_span")

    def __init__(self, parent: otel_context.Context, links: tuple[Link, ...] = ()) -> None:
        self._parent = parent
        self._links = links
        self._span: Span | None = None
        self._admission: Span | None = None
        self._model: Span | None = None

    @classmethod
    def accepted(cls, *, later: bool = False) -> TurnTrace:
        """Capture the accepting call's context: as the turn's parent, or (``later``: a job) as a link.

        A job may run long after the call that accepted it ended; a new trace linked to that call keeps the
        call's trace short and whole, and still leads from one to the other.
        """
        if not later:
            return cls(otel_context.get_current())
        accepting = trace.get_current_span().get_span_context()
        links = (Link(accepting, {"iris.link": "accepted_by"}),) if accepting.is_valid else ()
        return cls(otel_context.Context(), links)

    @classmethod
    def new_trace(cls) -> TurnTrace:
        """Return a trace for a turn no call waits on (re-queued by a restart): a root of its own."""
        return cls(otel_context.Context())

    def span(self, turn: Turn) -> Span:
        """Return the turn's ``iris.turn`` span, starting it (at the turn's acceptance) the first time."""
        if self._span is None:
            attributes: dict[str, str | int] = {
                "iris.team": turn.pair.to_team,
                "iris.from_team": turn.pair.from_team,
                "iris.message_id": turn.message_id,
                "iris.session_id": turn.session_id,
            }
            if turn.job is not None and turn.job.job_id:
                attributes["iris.job_id"] = turn.job.job_id
            self._span = _tracer.start_span(
                "iris.turn",
                context=self._parent,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=self._links,
                start_time=_ns(turn.created_at),
            )
        return self._span

    def _child(self, turn: Turn, name: str, start_ns: int | None = None) -> Span:
        parent = trace.set_span_in_context(self.span(turn))
        return _tracer.start_span(name, context=parent, start_time=start_ns)

    def open_admission(self, turn: Turn) -> None:
        """Start the admission wait (from acceptance the first time, from now after a requeue)."""
        if self._admission is None and self._model is None and not turn.done:
            first = turn.attempts == turn.recovered_attempts  # not yet run in this run of Iris
            self._admission = self._child(
                turn, "iris.turn.admission", _ns(turn.created_at) if first else None
            )

    def admitted(self) -> None:
        """End the admission wait (a process is being started for the turn, or it has one)."""
        if self._admission is not None:
            self._admission.end()
            self._admission = None

    def open_model(self, turn: Turn, process: TeamProcess) -> None:
        """Start the model time: the turn runs on ``process``.

        A process started by an earlier turn has Claude Code's spans of this turn too, under that turn's
        spawn span (the CLI reads ``TRACEPARENT`` once): the model span links to it, so they can be found.
        """
        self.admitted()
        turn_span = self.span(turn)
        spawned = _SPAWNED.get(process)
        links: list[Link] = []
        if spawned is not None and spawned.is_valid:
            if spawned.trace_id != turn_span.get_span_context().trace_id:
                links.append(Link(spawned, {"iris.link": "claude_code_spans"}))
        parent = trace.set_span_in_context(turn_span)
        self._model = _tracer.start_span("iris.turn.model", context=parent, links=links)
        self._model.set_attribute("process.pid", process.pid)
        self._model.set_attribute("iris.attempt", turn.attempts + 1)

    def close_model(self, turn: Turn) -> None:
        """End the model time (the turn ended, or goes back to the queue for a new process)."""
        if self._model is not None:
            usage = turn.usage
            if usage.input_tokens or usage.output_tokens:
                self._model.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
                self._model.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            self._model.end()
            self._model = None

    def end(self, turn: Turn) -> None:
        """End every open span of the turn, the turn's last, with how it ended."""
        self.admitted()
        self.close_model(turn)
        span = self.span(turn)
        span.set_attribute("iris.status", turn.status.value)
        span.set_attribute("iris.cost_usd", turn.cost_usd)
        span.set_attribute("iris.attempts", turn.attempts)
        if turn.status.value == "error":
            span.set_status(StatusCode.ERROR, turn.failure.reason if turn.failure is not None else "error")
        span.end()  # now: the turn has just ended (``completed_at`` is in whole milliseconds)


@contextlib.contextmanager
def turn_span_current(turn: Turn) -> Iterator[None]:
    """Make the turn's span current while its driver admits and runs it (its spawn and model spans nest).

    The driver task inherited some earlier call's context; this replaces it for the length of the turn, so
    nothing of one turn lands in another's trace.
    """
    turn.trace.open_admission(turn)
    token = otel_context.attach(trace.set_span_in_context(turn.trace.span(turn)))
    waiting = _WAITING.set(turn.trace)
    try:
        yield
    finally:
        _WAITING.reset(waiting)
        otel_context.detach(token)


@contextlib.contextmanager
def model_time(turn: Turn, process: TeamProcess) -> Iterator[None]:
    """Time the turn on its process as ``iris.turn.model`` (ended by the turn's end, or here)."""
    turn.trace.open_model(turn, process)
    try:
        yield
    finally:
        turn.trace.close_model(turn)


Launch = Callable[["LaunchSpec", float], Awaitable["TeamProcess"]]


def traced_launcher(launch: Launch) -> Launch:
    """Wrap a launcher so each start is an ``iris.process.spawn`` span (ending the waiting turn's admission).

    The span is current while the process starts, so the claude-agent-sdk hands it to Claude Code as
    ``TRACEPARENT``.
    """

    async def traced(spec: LaunchSpec, timeout_s: float) -> TeamProcess:
        waiting = _WAITING.get()
        if waiting is not None:
            waiting.admitted()
        attributes: dict[str, str | bool] = {
            "iris.pair": spec.pair,
            "iris.resume": spec.resume,
            "iris.run_as": spec.run_as is not None,
        }
        with _tracer.start_as_current_span("iris.process.spawn", attributes=attributes) as span:
            if span.is_recording():
                process = await launch(spec, timeout_s)
            else:  # tracing off: hand Claude Code no caller's trace context, which it would keep for life
                token = otel_context.attach(otel_context.Context())
                try:
                    process = await launch(spec, timeout_s)
                finally:
                    otel_context.detach(token)
            span.set_attribute("process.pid", process.pid)
            _SPAWNED[process] = span.get_span_context()
            return process

    return traced
