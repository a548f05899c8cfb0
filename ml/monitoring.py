"""Prediction monitoring: counts and a latency histogram per (workspace, model, minute), kept in
process memory and upserted into `ml_prediction_stat` by `flush` (the server calls it every
second and at shutdown; a batch scoring job at its end).

What is counted. `count`: rows asked of a model (successes and failures); `errors`: rows that
got no prediction (timeouts included); `timeouts`: rows whose predict ran past the timeout.
The histogram and `latency_sum_ms` hold one observation per predict *call* (one online
loader batch, or one batch of a scoring job), successful calls only: a timed-out call's
latency is the timeout itself and would only echo the configuration.

Recording is a dict update under a lock (no I/O); a flush writes every dirty minute of a
database in ONE statement, adding to what other processes already wrote for that minute.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from models.db import Database, utcnow
from models.ml_models import MlPredictionStat

log = logging.getLogger("dashgraph.ml")

# upper bounds (ms) of the latency buckets; one more bucket above the last holds the rest (+inf)
BOUNDS_MS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
BUCKETS = len(BOUNDS_MS) + 1

StatKey = tuple[int, int, datetime]  # (workspace id, model id, minute)


def bucket_of(latency_ms: float) -> int:
    """Index of the first bucket whose upper bound is >= latency_ms (le semantics)."""
    return bisect.bisect_left(BOUNDS_MS, latency_ms)


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@dataclass(slots=True)
class MinuteStat:
    count: int = 0
    errors: int = 0
    timeouts: int = 0
    latency_sum_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def merge(self, other: MinuteStat) -> None:
        self.count += other.count
        self.errors += other.errors
        self.timeouts += other.timeouts
        self.latency_sum_ms += other.latency_sum_ms
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


class PredictionMonitor:
    """The dirty minutes of one database, waiting for `flush`."""

    def __init__(self) -> None:
        self._stats: dict[StatKey, MinuteStat] = {}
        self._lock = threading.Lock()  # scoring threads may record too

    def record(
        self,
        workspace_id: int,
        model_id: int,
        *,
        rows: int,
        latency_ms: float | None = None,
        errors: int = 0,
        timeouts: int = 0,
        at: datetime | None = None,
    ) -> None:
        """One predict call over `rows` rows; `latency_ms` for a successful call."""
        key = (workspace_id, model_id, minute_of(at or utcnow()))
        with self._lock:
            stat = self._stats.get(key)
            if stat is None:
                stat = self._stats[key] = MinuteStat()
            stat.count += rows
            stat.errors += errors
            stat.timeouts += timeouts
            if latency_ms is not None:
                stat.latency_sum_ms += latency_ms
                stat.buckets[bucket_of(latency_ms)] += 1

    def drain(self) -> dict[StatKey, MinuteStat]:
        with self._lock:
            taken, self._stats = self._stats, {}
        return taken

    def restore(self, taken: dict[StatKey, MinuteStat]) -> None:
        """Put back what a failed flush took, so the counts are written by the next one."""
        with self._lock:
            for key, stat in taken.items():
                if key in self._stats:
                    stat.merge(self._stats[key])
                self._stats[key] = stat

    async def flush(self, db: Database) -> int:
        """Upsert the dirty minutes (one statement); the number of rows written."""
        taken = self.drain()
        if not taken:
            return 0
        try:
            async with db.transaction() as session:
                await session.execute(upsert_statement(taken))
        except BaseException:
            self.restore(taken)
            raise
        return len(taken)


def upsert_statement(stats: dict[StatKey, MinuteStat]) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE adding counts, sums and buckets element-wise."""
    table: Any = cast(Any, MlPredictionStat).__table__
    rows = [
        {
            "workspace_id": ws,
            "model_id": model_id,
            "minute": minute,
            "count": s.count,
            "errors": s.errors,
            "timeouts": s.timeouts,
            "latency_sum_ms": s.latency_sum_ms,
            "latency_buckets": s.buckets,
        }
        for (ws, model_id, minute), s in stats.items()
    ]
    statement = insert(table).values(rows)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["workspace_id", "model_id", "minute"],
        set_={
            "count": table.c.count + new.count,
            "errors": table.c.errors + new.errors,
            "timeouts": table.c.timeouts + new.timeouts,
            "latency_sum_ms": table.c.latency_sum_ms + new.latency_sum_ms,
            # unnest of two arrays zips them (the shorter padded with nulls)
            "latency_buckets": sa.literal_column(
                "ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0) FROM unnest("
                "ml_prediction_stat.latency_buckets, excluded.latency_buckets)"
                " WITH ORDINALITY AS t(a, b, i) ORDER BY i)"
            ),
        },
    )


_monitors: dict[str, PredictionMonitor] = {}
_monitors_lock = threading.Lock()


def monitor_for(db: Database) -> PredictionMonitor:
    """The process's monitor of `db` (keyed by URL: one process may serve several databases,
    and the server's and the job workers' pools over one database share it)."""
    with _monitors_lock:
        found = _monitors.get(db.url)
        if found is None:
            found = _monitors[db.url] = PredictionMonitor()
        return found


# ---- reading back -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencySummary:
    calls: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def quantile(buckets: list[int], q: float) -> float | None:
    """The q-quantile of a histogram with BOUNDS_MS, Prometheus `histogram_quantile` style:
    find the bucket holding rank q * total and interpolate linearly between its lower and
    upper bound (the first bucket starts at 0). A rank in the +inf bucket answers the last
    finite bound (nothing larger can be told). None for an empty histogram."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, in_bucket in enumerate(buckets):
        if in_bucket and seen + in_bucket >= rank:
            if index >= len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lower = 0.0 if index == 0 else float(BOUNDS_MS[index - 1])
            upper = float(BOUNDS_MS[index])
            return lower + (upper - lower) * (rank - seen) / in_bucket
        seen += in_bucket
    return float(BOUNDS_MS[-1])


def latency_summary(buckets: list[int], latency_sum_ms: float) -> LatencySummary:
    calls = sum(buckets)
    return LatencySummary(
        calls=calls,
        mean_ms=latency_sum_ms / calls if calls else None,
        p50_ms=quantile(buckets, 0.5),
        p95_ms=quantile(buckets, 0.95),
        p99_ms=quantile(buckets, 0.99),
    )


def minutes_in(window: timedelta) -> float:
    return window.total_seconds() / 60
