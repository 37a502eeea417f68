"""The cost ledger: every turn's cost and tokens, per model, with its team, caller, key and day.

A turn that ends having reached the model is written here (usage.db, its own file, so the ledger can be
kept, copied or pruned apart from the conversations). GetUsage totals it over a time range, grouped as the
caller asks; the budgets read the same sums. Days and months are UTC.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Sequence
from pathlib import Path

from iris_client.generated.iris.v1 import iris_pb2 as pb

from .access import ADMIN, Caller, grants
from .clock import now_ms
from .errors import ForbiddenError, ValidationError
from .spend import ModelSpend
from .sqlite_file import SqliteFile
from .store import WriteBehind
from .turns import Turn, TurnStatus

__all__ = ["DEFAULT_RANGE_MS", "GROUPS", "CostLedger", "utc_day"]

DEFAULT_RANGE_MS = 30 * 86_400_000
"""GetUsage's range when the request names no ``since``: the 30 days before ``until``."""

GROUPS = ("team", "from_team", "key", "day", "model")
"""What GetUsage may group by (its ``group_by`` values), in the order rows are sorted."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    message_id TEXT NOT NULL,
    model      TEXT NOT NULL,
    ended_at   INTEGER NOT NULL,
    day        TEXT NOT NULL,
    team       TEXT NOT NULL,
    from_team  TEXT NOT NULL,
    key        TEXT NOT NULL,
    cost_usd   REAL NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    cache_read_input_tokens     INTEGER NOT NULL,
    PRIMARY KEY (message_id, model)
);
CREATE INDEX IF NOT EXISTS spend_by_time ON spend (ended_at);
CREATE INDEX IF NOT EXISTS spend_by_team ON spend (team, ended_at);
CREATE INDEX IF NOT EXISTS spend_by_key ON spend (key, ended_at);
"""

_SUMS = (
    "COUNT(DISTINCT message_id), SUM(cost_usd), SUM(input_tokens), SUM(output_tokens), "
    "SUM(cache_creation_input_tokens), SUM(cache_read_input_tokens)"
)


def utc_day(at_ms: int) -> str:
    """Return the UTC day of a Unix time in milliseconds, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(at_ms / 1000))


def _spends(turn: Turn) -> Sequence[ModelSpend]:
    """Return the turn's spend per model; a result that named no model gives one row of model ""."""
    if turn.spend:
        return turn.spend
    if turn.cost_usd or turn.usage.input_tokens or turn.usage.output_tokens:
        return (ModelSpend(model="", cost_usd=turn.cost_usd, usage=turn.usage),)
    return ()


Row = tuple[str, str, int, str, str, str, str, float, int, int, int, int]
"""One row of the spend table: a turn's spend on one model."""


ESTIMATED_MODEL = "estimated"
"""The model of a row estimating a turn whose cost Claude Code never reported (``CostLedger.note``)."""

_NOTED_KEPT = 10_000

RECENT_TURNS = 20
"""How many of a team's recent turn costs its estimate averages."""


def _rows(turn: Turn, spends: Sequence[ModelSpend]) -> list[Row]:
    ended = turn.completed_at or now_ms()
    return [
        (
            turn.message_id,
            spend.model,
            ended,
            utc_day(ended),
            turn.pair.to_team,
            turn.pair.from_team,
            turn.key_name,
            spend.cost_usd,
            spend.usage.input_tokens,
            spend.usage.output_tokens,
            spend.usage.cache_creation_input_tokens,
            spend.usage.cache_read_input_tokens,
        )
        for spend in spends
    ]


class CostLedger(SqliteFile):
    """usage.db: what every turn cost, and the totals GetUsage and the budgets read."""

    schema = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._pending: list[Row] = []
        """Rows of turns that have ended but whose record is not written yet (``note``)."""
        self._recent: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=RECENT_TURNS))
        """Per team, the costs of its latest reported turns: the estimate of a turn that reported none."""
        self._noted: OrderedDict[str, None] = OrderedDict()
        """The latest turns noted (bounded), so the record's ``add`` notes only a turn never noted."""
        self._writes = WriteBehind("the cost ledger (usage.db)", lambda: self._conn)
        """Writes the noted rows soon after, off the reply's path; GetUsage and the budgets flush first."""

    async def open(self) -> None:
        """Open usage.db and learn each team's recent turn costs (for estimates)."""
        await super().open()
        self._writes.start()
        # Only the newest rows, read by the time index: start-up does not grow with the ledger.
        query = (
            "SELECT team, SUM(cost_usd) FROM (SELECT * FROM spend ORDER BY ended_at DESC LIMIT 5000) "
            "WHERE model != ? GROUP BY message_id ORDER BY MAX(ended_at) DESC"
        )
        async with self._conn.execute(query, (ESTIMATED_MODEL,)) as cursor:
            for team, cost in reversed(list(await cursor.fetchall())):
                self._recent[str(team)].append(float(cost))

    def note(self, turn: Turn) -> None:
        """Hold an ended turn's spend until it is written: told as the turn ends, before its waiters wake.

        The record of a turn is written just after its callers are answered; a caller that asks GetUsage,
        or sends its next message, at once must still see this turn's cost.

        A turn that reached Claude Code but ended without its report (the process died, a timeout retired
        it) did cost something nobody was told: it is charged the team's recent average, as model
        ``estimated``, so a turn that kills its own process cannot run past every budget for free.
        """
        self._noted[turn.message_id] = None
        if len(self._noted) > _NOTED_KEPT:
            self._noted.popitem(last=False)
        spends = _spends(turn)
        if spends:
            self._recent[turn.pair.to_team].append(sum(spend.cost_usd for spend in spends))
        self._pending += _rows(turn, spends or self._estimate(turn))

    def _estimate(self, turn: Turn) -> tuple[ModelSpend, ...]:
        recent = self._recent.get(turn.pair.to_team)
        if turn.status is not TurnStatus.ERROR or not turn.sent or not recent:
            return ()
        return (ModelSpend(model=ESTIMATED_MODEL, cost_usd=sum(recent) / len(recent), usage=pb.TokenUsage()),)

    async def aclose(self) -> None:
        """Write the rows still held, then close."""
        if self._db is not None:
            self._queue()
            await self._writes.aclose()
        await super().aclose()

    async def add(self, turn: Turn) -> None:
        """Queue what ``note`` holds for writing soon after (noted as the turn ends)."""
        if turn.message_id not in self._noted:
            self.note(turn)  # a turn that ended before the ledger heard of it
        self._queue()

    def _queue(self) -> None:
        rows, self._pending = self._pending, []
        for row in rows:
            self._writes.add("INSERT OR REPLACE INTO spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    async def _flush(self) -> None:
        self._queue()
        await self._writes.settle()  # for a reader: a failed write is logged, the read goes on

    async def spent(self, column: str, name: str, since_ms: int) -> float:
        """Return the USD spent by one team (``column`` "team") or key ("key") since a time."""
        if column not in ("team", "key"):
            raise ValueError(column)
        await self._flush()
        query = f"SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE {column} = ? AND ended_at >= ?"
        async with self._conn.execute(query, (name, since_ms)) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row is not None else 0.0

    async def get_usage(self, request: pb.GetUsageRequest, caller: Caller) -> pb.GetUsageResponse:
        """Total the ledger over a range, filtered and grouped as asked (GetUsage).

        A key without ``admin`` sees only its own turns: asking for another key's is refused.

        Raises:
            ValidationError: an unknown ``group_by`` value, or a range that ends before it starts.
            ForbiddenError: a key without admin asked for another key's usage.

        """
        groups = list(dict.fromkeys(request.group_by))
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ValidationError(
                f"groupBy takes {', '.join(GROUPS)}; not {', '.join(unknown)}", details={"field": "groupBy"}
            )
        until = request.until or now_ms()
        since = request.since or max(until - DEFAULT_RANGE_MS, 0)
        if since >= until:
            raise ValidationError("since must be before until", details={"field": "since"})
        key = request.key
        if caller.key is not None and not grants(caller.key.permissions, ADMIN):
            if key and key != caller.key.name:
                raise ForbiddenError(
                    "Only an admin key may read another key's usage", details={"field": "key"}
                )
            key = caller.key.name
        where: list[str] = ["ended_at >= ?", "ended_at < ?"]
        params: list[object] = [since, until]
        if request.team:
            where.append("team = ?")
            params.append(request.team)
        if key:
            where.append("key = ?")
            params.append(key)
        condition = " AND ".join(where)
        await self._flush()
        ordered = sorted(groups, key=GROUPS.index)
        rows: list[pb.UsageRow] = []
        if ordered:
            columns = ", ".join(ordered)
            grouped = f"GROUP BY {columns} ORDER BY {columns}"
            query = f"SELECT {columns}, {_SUMS} FROM spend WHERE {condition} {grouped}"
            async with self._conn.execute(query, params) as cursor:
                async for row in cursor:
                    named = {group: row[i] for i, group in enumerate(ordered)}
                    rows.append(_usage_row(named, tuple(row)[len(ordered) :]))
        async with self._conn.execute(f"SELECT {_SUMS} FROM spend WHERE {condition}", params) as cursor:
            total = await cursor.fetchone()
        return pb.GetUsageResponse(
            rows=rows, total=_usage_row({}, tuple(total) if total else ()), since=since, until=until
        )


def _usage_row(named: dict[str, str], sums: tuple[object, ...]) -> pb.UsageRow:
    """Return a row of totals from the SQL sums (turns, cost, then the four token counts; NULL when none)."""
    turns, cost, tokens_in, tokens_out, cache_write, cache_read = (*sums, 0, 0, 0, 0, 0, 0)[:6]
    return pb.UsageRow(
        **named,
        turns=_int(turns),
        cost_usd=float(cost) if isinstance(cost, int | float) else 0.0,
        usage=pb.TokenUsage(
            input_tokens=_int(tokens_in),
            output_tokens=_int(tokens_out),
            cache_creation_input_tokens=_int(cache_write),
            cache_read_input_tokens=_int(cache_read),
        ),
    )


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0
