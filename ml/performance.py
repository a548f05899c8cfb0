"""`MlModel.performance`: a version's predictions over a window, read back from
`ml_prediction_stat` (see ml/monitoring.py), its accuracy on outcomes that became known since
it went into service, and alerts against the workspace's ML config thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ml.metrics import auc
from ml.monitoring import BUCKETS, LatencySummary, latency_summary, minute_of, minutes_in
from models.ml_models import MlConfig, MlDriftCheck, latest_check

_STATS = sa.text(
    """
WITH s AS (
  SELECT * FROM ml_prediction_stat
  WHERE workspace_id = :ws AND model_id = :model AND minute >= :since AND minute < :until
)
SELECT coalesce(sum(count), 0) AS count, coalesce(sum(errors), 0) AS errors,
       coalesce(sum(timeouts), 0) AS timeouts, coalesce(sum(latency_sum_ms), 0) AS latency_sum,
       (SELECT array_agg(total ORDER BY i) FROM (
          SELECT i, sum(b) AS total FROM s, unnest(s.latency_buckets) WITH ORDINALITY AS t(b, i)
          GROUP BY i) AS per_bucket) AS buckets
FROM s
"""
)

_DAILY = sa.text(
    """
SELECT date_trunc('day', minute, 'UTC') AS day, sum(count) AS count, sum(errors) AS errors,
       sum(timeouts) AS timeouts, sum(latency_sum_ms) AS latency_sum,
       sum((SELECT coalesce(sum(b), 0) FROM unnest(latency_buckets) AS b)) AS calls
FROM ml_prediction_stat
WHERE workspace_id = :ws AND model_id = :model AND minute >= :since AND minute < :until
GROUP BY 1 ORDER BY 1
"""
)

# leads whose outcome (their last stage change, to WON or LOST) fell in the window, each with
# the newest score this version gave it before that change
_OUTCOMES = sa.text(
    """
SELECT o.lead_id, (o.to_stage = 'WON') AS won, s.probability
FROM lead_event o
JOIN LATERAL (
  SELECT ls.probability FROM lead_score ls
  WHERE ls.workspace_id = o.workspace_id AND ls.lead_id = o.lead_id AND ls.model_id = :model
    AND ls.scored_at < o.occurred_at
  ORDER BY ls.scored_at DESC, ls.id DESC LIMIT 1
) s ON true
WHERE o.workspace_id = :ws AND o.type = 'STAGE_CHANGE' AND o.to_stage IN ('WON', 'LOST')
  AND o.occurred_at >= :since AND o.occurred_at < :until
  AND NOT EXISTS (
    SELECT 1 FROM lead_event later
    WHERE later.workspace_id = o.workspace_id AND later.lead_id = o.lead_id
      AND later.type = 'STAGE_CHANGE'
      AND (later.occurred_at, later.id) > (o.occurred_at, o.id))
"""
)


@dataclass(frozen=True, slots=True)
class DailyPerformance:
    day: datetime
    prediction_count: int
    error_rate: float | None
    average_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # ACCURACY_DROP, LATENCY_INCREASE, DRIFT
    severity: str  # WARNING; CRITICAL at twice the threshold
    message: str
    value: float
    threshold: float
    # the observations behind it: outcomes (accuracy), the fewer of the two periods' predict
    # calls (latency), the month's leads measured (drift)
    samples: int


@dataclass(frozen=True, slots=True)
class ModelPerformance:
    since: datetime
    until: datetime
    prediction_count: int
    error_count: int
    timeout_count: int
    latency: LatencySummary
    # predictions per minute over the whole window
    throughput_per_minute: float
    accuracy_since: datetime
    evaluated_count: int
    accuracy: float | None
    auc: float | None
    threshold: float
    daily: list[DailyPerformance]
    # the window of the same length just before `since`, for the latency comparison
    previous_latency: LatencySummary
    alerts: list[Alert]

    @property
    def error_rate(self) -> float | None:
        return self.error_count / self.prediction_count if self.prediction_count else None

    @property
    def timeout_rate(self) -> float | None:
        return self.timeout_count / self.prediction_count if self.prediction_count else None


async def model_performance(
    session: AsyncSession,
    workspace_id: int,
    model_id: int,
    *,
    since: datetime,
    until: datetime,
    accuracy_since: datetime,
    threshold: float,
    test_accuracy: float | None,
    config: MlConfig,
) -> ModelPerformance:
    """Counts and latency of [since, until) from `ml_prediction_stat`; accuracy and AUC of the
        version's stored scores on leads whose outcome became known in [accuracy_since, until)
        (predicted to convert when probability >= threshold); alerts against `config`. Four
    statements."""
    # minutes that started in the window (the first one may straddle its start)
    params = {"ws": workspace_id, "model": model_id, "since": minute_of(since), "until": until}
    row = (await session.execute(_STATS, params)).mappings().one()
    buckets = _buckets(row["buckets"])
    daily = [
        DailyPerformance(
            day=d["day"],
            prediction_count=int(d["count"]),
            error_rate=int(d["errors"]) / int(d["count"]) if d["count"] else None,
            average_latency_ms=float(d["latency_sum"]) / int(d["calls"]) if d["calls"] else None,
        )
        for d in (await session.execute(_DAILY, params)).mappings().all()
    ]
    live = await live_accuracy(
        session, workspace_id, model_id, since=accuracy_since, until=until, threshold=threshold
    )
    before = {**params, "since": minute_of(since - (until - since)), "until": minute_of(since)}
    previous = (await session.execute(_STATS, before)).mappings().one()
    count = int(row["count"])
    latency = latency_summary(buckets, float(row["latency_sum"]))
    previous_latency = latency_summary(
        _buckets(previous["buckets"]), float(previous["latency_sum"])
    )
    # the newest drift measurement of the period (the server's ML check takes them)
    measured = (
        await latest_check(session, workspace_id, model_id, since=since)
        if config.drift_detection
        else None
    )
    if measured is not None and measured.checked_at >= until:
        measured = None
    return ModelPerformance(
        since=since,
        until=until,
        prediction_count=count,
        error_count=int(row["errors"]),
        timeout_count=int(row["timeouts"]),
        latency=latency,
        throughput_per_minute=count / minutes_in(until - since),
        accuracy_since=accuracy_since,
        evaluated_count=live.outcomes,
        accuracy=live.accuracy,
        auc=live.auc,
        threshold=threshold,
        daily=daily,
        previous_latency=previous_latency,
        alerts=alerts(live, test_accuracy, latency, previous_latency, config, measured),
    )


# outcomes before a live accuracy drop acts on its own (automatic retrain and rollback)
TRUSTED_OUTCOMES = 50


@dataclass(frozen=True, slots=True)
class LiveAccuracy:
    outcomes: int  # leads the version had scored whose outcome became known in the window
    accuracy: float | None
    auc: float | None


async def live_accuracy(
    session: AsyncSession,
    workspace_id: int,
    model_id: int,
    *,
    since: datetime,
    until: datetime,
    threshold: float,
) -> LiveAccuracy:
    """Accuracy and AUC of the version's stored scores (its newest before each outcome) on
    leads whose outcome became known in [since, until); one statement."""
    params = {"ws": workspace_id, "model": model_id, "since": since, "until": until}
    outcomes = (await session.execute(_OUTCOMES, params)).all()
    won = np.array([bool(o.won) for o in outcomes], dtype=bool)
    probability = np.array([float(o.probability) for o in outcomes], dtype=np.float64)
    accuracy = float(np.mean((probability >= threshold) == won)) if won.size else None
    area = auc(won, probability) if won.size else float("nan")
    return LiveAccuracy(int(won.size), accuracy, None if area != area else area)


def _buckets(raw: list[int] | None) -> list[int]:
    found = [int(b) for b in (raw or [])]
    return (found + [0] * BUCKETS)[:BUCKETS]


def alerts(
    live: LiveAccuracy,
    test_accuracy: float | None,
    latency: LatencySummary,
    previous: LatencySummary,
    config: MlConfig,
    drift: MlDriftCheck | None = None,
) -> list[Alert]:
    """Seed 003 monitoring alerts, from the ML config's thresholds only: live accuracy below
    the test split's by more than `alert_accuracy_drop`; p95 latency above the previous
    window's by more than `alert_latency_increase_ms`; the period's newest drift measurement
    with a feature PSI above `alert_drift_psi`. Nothing to compare: no alert."""
    found: list[Alert] = []
    accuracy = live.accuracy
    if accuracy is not None and test_accuracy is not None:
        drop = test_accuracy - accuracy
        if drop > config.alert_accuracy_drop:
            found.append(
                Alert(
                    kind="ACCURACY_DROP",
                    severity=_severity(drop, config.alert_accuracy_drop),
                    message=f"Accuracy on new outcomes is {accuracy:.1%}, {drop:.1%} below "
                    f"the test split's {test_accuracy:.1%}",
                    value=drop,
                    threshold=config.alert_accuracy_drop,
                    samples=live.outcomes,
                )
            )
    if latency.p95_ms is not None and previous.p95_ms is not None:
        increase = latency.p95_ms - previous.p95_ms
        if increase > config.alert_latency_increase_ms:
            found.append(
                Alert(
                    kind="LATENCY_INCREASE",
                    severity=_severity(increase, config.alert_latency_increase_ms),
                    message=f"p95 latency is {latency.p95_ms:.1f} ms, up {increase:.1f} ms "
                    "on the previous period",
                    value=increase,
                    threshold=config.alert_latency_increase_ms,
                    samples=min(latency.calls, previous.calls),
                )
            )
    if drift is not None and drift.max_psi is not None and drift.max_psi > config.alert_drift_psi:
        found.append(
            Alert(
                kind="DRIFT",
                severity=_severity(drift.max_psi, config.alert_drift_psi),
                message=f"Data drift detected in {drift.feature}: PSI {drift.max_psi:.2f} over "
                "the last month's leads",
                value=drift.max_psi,
                threshold=config.alert_drift_psi,
                samples=drift.current_rows,
            )
        )
    return found


def _severity(value: float, threshold: float) -> str:
    return "CRITICAL" if value > 2 * threshold else "WARNING"
