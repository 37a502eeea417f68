"""Prometheus metrics of one running Iris: its families, in a registry it owns, and the hooks that feed them.

Why a registry of its own (not prometheus-client's global one): two Irises in one process (tests, a bench)
must not count into each other or refuse to register the same names twice. The transports expose
``IrisMetrics.registry``; the domain calls the ``IrisMetrics`` methods, each a label lookup and an increment,
with no lock held across an await. Gauges of the pool are read when scraped (``PoolCollector``), so nothing
is counted twice and nothing drifts.

Labels stay bounded: RPC names come from the contract, teams from the config, key names from the key store,
statuses and outcomes from fixed sets. No message id, session id or free text is ever a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from iris_client.generated.iris.v1 import iris_pb2 as pb

__all__ = ["IrisMetrics", "PoolReadings"]

_CALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Seconds: a status read takes a millisecond, a SendMessage a turn, a stream as long as its watcher."""
_TURN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Seconds: from an offline-model turn (~0.1 s) to ``settings.turnTimeout``'s default (an hour)."""
_SPAWN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60)
"""Seconds: Claude Code starts in about a second; ``settings.spawnTimeout`` bounds it."""

FINAL_STATUSES = ("completed", "error", "cancelled")
"""A turn's final statuses in this run (a persisted turn cut off by a shutdown is not counted: it runs
again at the next start)."""
RATE_LIMITS = ("key", "pair_queue", "job_queue")
"""What refused a call with RESOURCE_EXHAUSTED: the key's request bucket (``api.rateLimit``), the pair's
queue (``settings.maxQueuedMessages``), the job queue (``settings.maxQueuedJobs``)."""
API_RATE_LIMIT_STATUSES = frozenset({"allowed", "allowed_warning", "rejected"})
"""What Claude Code reports of the API's rate limit; anything else is counted as ``other``."""
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")
"""How one delivery attempt ended: delivered, failed and to be tried again, failed for good."""


class PoolReadings:
    """What the pool gauges read at scrape time; callables, so the collector holds no pool state itself."""

    def __init__(
        self,
        census: Callable[[], tuple[int, int, frozenset[object]]],
        queued_turns: Callable[[], int],
        queued_jobs: Callable[[], int],
        max_processes: int,
    ) -> None:
        self.census = census
        """(slots in use, processes running a turn, pairs with a live process): ``ProcessPool.census``."""
        self.queued_turns = queued_turns
        self.queued_jobs = queued_jobs
        self.max_processes = max_processes


class PoolCollector(Collector):
    """Gauges of the pool, read from it when scraped (on the event loop: /metrics is served there)."""

    def __init__(self, readings: PoolReadings) -> None:
        self._readings = readings

    def collect(self) -> Iterator[Metric]:
        """Yield the pool's gauges as they are now."""
        slots, busy, live = self._readings.census()
        yield GaugeMetricFamily(
            "iris_processes_alive", "Claude Code processes alive (started and not yet stopped)", len(live)
        )
        yield GaugeMetricFamily("iris_processes_busy", "Claude Code processes running a turn", busy)
        yield GaugeMetricFamily(
            "iris_processes_spare",
            "Warm spare Claude Code processes waiting for a pair; always 0: Iris keeps no spares yet",
            0,
        )
        yield GaugeMetricFamily(
            "iris_process_slots_used", "Process slots in use (starting, alive or not yet reaped)", slots
        )
        yield GaugeMetricFamily(
            "iris_process_slots_max", "Process slots (settings.maxProcesses)", self._readings.max_processes
        )
        yield GaugeMetricFamily(
            "iris_pair_queue_depth",
            "Turns waiting on their pair (behind a turn, or for a process)",
            self._readings.queued_turns(),
        )
        yield GaugeMetricFamily(
            "iris_job_queue_depth",
            "Jobs waiting in the job queue for a running slot",
            self._readings.queued_jobs(),
        )


class IrisMetrics:
    """The metric families of one Iris and the calls that feed them (cheap: a label lookup and an add)."""

    def __init__(self, teams: Iterable[str] = ()) -> None:
        """Create every family in a new registry; label sets known up front start at 0 (``teams``)."""
        self.registry = CollectorRegistry()
        registry = self.registry
        self._calls = Counter(
            "iris_grpc_calls",
            "gRPC calls of iris.v1.Iris handled, by RPC and status code",
            ("method", "code"),
            registry=registry,
        )
        self._call_seconds = Histogram(
            "iris_grpc_call_duration_seconds",
            "Time from a call's arrival to its status (a stream: its end)",
            ("method",),
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self._turns = Counter(
            "iris_turns",
            "Turns ended, by target team and final status",
            ("team", "status"),
            registry=registry,
        )
        self._turn_seconds = Histogram(
            "iris_turn_duration_seconds",
            "Time from a turn's acceptance to its end, by target team",
            ("team",),
            buckets=_TURN_BUCKETS,
            registry=registry,
        )
        self._first_chunk_seconds = Histogram(
            "iris_turn_first_chunk_seconds",
            "Time from a turn's acceptance to its first chunk of text, by target team",
            ("team",),
            buckets=_TURN_BUCKETS,
            registry=registry,
        )
        self._spawn_seconds = Histogram(
            "iris_process_spawn_duration_seconds",
            "Time to start a Claude Code process and complete its handshake, by team (failed starts too)",
            ("team",),
            buckets=_SPAWN_BUCKETS,
            registry=registry,
        )
        self._cost = Counter(
            "iris_cost_usd",
            "Cost of turns in US dollars as Claude Code reports it, by team and API key name "
            "(key empty where the turn does not know its key yet)",
            ("team", "key"),
            registry=registry,
        )
        self._tokens = Counter(
            "iris_tokens",
            "Tokens of turns as Claude Code reports them, by team, API key name and kind "
            "(input, output, cache_read, cache_write)",
            ("team", "key", "kind"),
            registry=registry,
        )
        self._rate_limited = Counter(
            "iris_rate_limit_refusals",
            "Calls refused with RESOURCE_EXHAUSTED, by the limit that refused them "
            "(key: api.rateLimit; pair_queue: settings.maxQueuedMessages; job_queue: settings.maxQueuedJobs)",
            ("limit",),
            registry=registry,
        )
        self._budget_refused = Counter(
            "iris_budget_refusals",
            "Calls refused because a cost budget was spent, by scope and period",
            ("scope", "period"),
            registry=registry,
        )
        self._api_rate_limits = Counter(
            "iris_api_rate_limit_events",
            "Rate-limit status changes the Anthropic API reported to Claude Code, by team and new status "
            "(allowed, allowed_warning, rejected)",
            ("team", "status"),
            registry=registry,
        )
        self._webhooks = Counter(
            "iris_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, retried, failed)",
            ("outcome",),
            registry=registry,
        )
        for team in teams:
            for status in FINAL_STATUSES:
                self._turns.labels(team, status)
        for limit in RATE_LIMITS:
            self._rate_limited.labels(limit)
        for outcome in WEBHOOK_OUTCOMES:
            self._webhooks.labels(outcome)

    def watch_pool(self, readings: PoolReadings) -> None:
        """Expose the pool's gauges, read from ``readings`` at each scrape."""
        self.registry.register(PoolCollector(readings))

    # --- calls -----------------------------------------------------------------------------------------

    def call_ended(self, method: str, code: str, seconds: float) -> None:
        """Count one gRPC call (``method`` the RPC's name, ``code`` its status code's name) and its time."""
        self._calls.labels(method, code).inc()
        self._call_seconds.labels(method).observe(seconds)

    def rate_limited(self, limit: str) -> None:
        """Count a refusal by one of ``RATE_LIMITS``."""
        self._rate_limited.labels(limit).inc()

    def budget_refused(self, scope: str, period: str) -> None:
        """Count a message refused because a budget was spent (scope: key or team; period: daily, monthly)."""
        self._budget_refused.labels(scope, period).inc()

    # --- turns and processes ---------------------------------------------------------------------------

    def turn_ended(self, team: str, status: str, seconds: float) -> None:
        """Count a turn of ``team`` that ended with ``status`` after ``seconds`` since its acceptance."""
        self._turns.labels(team, status).inc()
        self._turn_seconds.labels(team).observe(seconds)

    def first_chunk(self, team: str, seconds: float) -> None:
        """Observe the time from a turn's acceptance to its first chunk of text."""
        self._first_chunk_seconds.labels(team).observe(seconds)

    def observe_turn_cost(self, team: str, key: str, cost_usd: float, usage: pb.TokenUsage) -> None:
        """Add a turn's cost and tokens to ``team`` and the API key named ``key`` (empty: not known)."""
        if cost_usd > 0:
            self._cost.labels(team, key).inc(cost_usd)
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_input_tokens),
            ("cache_write", usage.cache_creation_input_tokens),
        ):
            if count > 0:
                self._tokens.labels(team, key, kind).inc(count)

    def process_spawned(self, team: str, seconds: float) -> None:
        """Observe how long a Claude Code process of ``team`` took to start (or to fail to)."""
        self._spawn_seconds.labels(team).observe(seconds)

    def api_rate_limit(self, team: str, status: str) -> None:
        """Count a rate-limit status change the API reported to a Claude Code process of ``team``."""
        self._api_rate_limits.labels(team, status if status in API_RATE_LIMIT_STATUSES else "other").inc()

    # --- webhooks --------------------------------------------------------------------------------------

    def webhook_attempt(self, outcome: str) -> None:
        """Count a delivery attempt by one of ``WEBHOOK_OUTCOMES``."""
        self._webhooks.labels(outcome).inc()
