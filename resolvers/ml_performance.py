"""`MlModel.performance(period)`: online prediction counts, latency and accuracy (seed 003
"Model Performance Metrics"), read from `ml_prediction_stat`, `lead_score` and lead outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from ml import performance
from ml.metrics import DEFAULT_THRESHOLD
from models.db import utcnow
from models.ml_models import load_config
from models.periods import PERIODS
from resolvers.context import Info
from resolvers.enums import Period
from resolvers.ml_drift import model_drift

DRIFT_WINDOW_DAYS = 30  # driftScore: MlModel.drift's default window


@strawberry.type(description="One UTC day of a model's predictions")
class DailyModelPerformance:
    day: datetime
    prediction_count: int
    error_rate: float | None
    average_latency_ms: float | None = strawberry.field(
        description="Mean milliseconds per predict call"
    )


# shared by `MlModel.performance` and `mlAnalytics` alerts
ALERT_TYPE = (
    "ACCURACY_DROP, LATENCY_INCREASE or DRIFT (the newest drift measurement of the period, "
    "taken hourly by the server where monitoring.driftDetection is on)"
)
ALERT_SEVERITY = "WARNING; CRITICAL beyond twice the threshold"


@strawberry.type(description="A threshold of the ML config crossed (seed 003 alerts)")
class ModelAlert:
    type: str = strawberry.field(description=ALERT_TYPE)
    severity: str = strawberry.field(description=ALERT_SEVERITY)
    message: str
    value: float = strawberry.field(
        description="The accuracy drop (0..1), the p95 increase (ms) or the highest PSI"
    )
    threshold: float = strawberry.field(description="The ML config's alert threshold")
    timestamp: datetime = strawberry.field(
        description="When it held: the end of the period it was computed over (now)"
    )


@strawberry.type(
    description="A version's predictions over a period. Counts: rows asked of the model "
    "(online misses and batch jobs; cache hits are no predictions). Latency: per predict call "
    "(one online batch of leads, or one job batch), successful calls only; percentiles "
    "interpolate linearly inside fixed histogram buckets (0.5, 1, 2, 5, 10, 20, 50, 100, 200, "
    "500, 1000 ms, +inf), a rank past 1000 ms reports 1000"
)
class ModelPerformance:
    period: Period
    since: datetime
    until: datetime
    prediction_count: int
    error_rate: float | None = strawberry.field(
        description="Failed rows (timeouts included) / rows, 0..1; null without predictions"
    )
    timeout_rate: float | None = strawberry.field(
        description="Rows that timed out (ML config timeoutMs) / rows, 0..1"
    )
    average_latency_ms: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    throughput: float = strawberry.field(description="Predictions per minute over the period")
    accuracy: float | None = strawberry.field(
        description="Share right (probability >= threshold predicts WON) among the leads "
        "evaluated; null when none"
    )
    auc: float | None = strawberry.field(description="null when the evaluated leads have one class")
    evaluated_count: int = strawberry.field(
        description="Leads whose outcome (last stage change, to WON or LOST) fell in the period "
        "and after the version was deployed (else trained), scored by this version before it"
    )
    accuracy_since: datetime
    threshold: float = strawberry.field(description="The version's decision threshold")
    daily: list[DailyModelPerformance]
    previous_p95_latency_ms: float | None = strawberry.field(
        description="p95 of the window of the same length just before, for LATENCY_INCREASE"
    )
    alerts: list[ModelAlert] = strawberry.field(
        description="Accuracy on new outcomes below the test split's by more than the ML "
        "config's accuracyDrop; p95 above the previous window's by more than latencyIncrease"
    )
    # (workspace id, model id): what `driftScore` computes over, when it is asked for
    version: strawberry.Private[tuple[int, int]]

    @strawberry.field(
        description="The version's data drift now: `drift(windowDays: 30).overallDrift` (the "
        "largest PSI of its features against the training data), computed only when selected"
    )
    async def drift_score(self, info: Info) -> float | None:
        return (await model_drift(info, *self.version, DRIFT_WINDOW_DAYS)).overall_drift

    @classmethod
    def from_result(
        cls, period: Period, p: performance.ModelPerformance, version: tuple[int, int]
    ) -> Self:
        return cls(
            version=version,
            period=period,
            since=p.since,
            until=p.until,
            prediction_count=p.prediction_count,
            error_rate=p.error_rate,
            timeout_rate=p.timeout_rate,
            average_latency_ms=p.latency.mean_ms,
            p50_latency_ms=p.latency.p50_ms,
            p95_latency_ms=p.latency.p95_ms,
            p99_latency_ms=p.latency.p99_ms,
            throughput=p.throughput_per_minute,
            accuracy=p.accuracy,
            auc=p.auc,
            evaluated_count=p.evaluated_count,
            accuracy_since=p.accuracy_since,
            threshold=p.threshold,
            daily=[
                DailyModelPerformance(
                    day=d.day,
                    prediction_count=d.prediction_count,
                    error_rate=d.error_rate,
                    average_latency_ms=d.average_latency_ms,
                )
                for d in p.daily
            ],
            previous_p95_latency_ms=p.previous_latency.p95_ms,
            alerts=[
                ModelAlert(
                    type=a.kind,
                    severity=a.severity,
                    message=a.message,
                    value=a.value,
                    threshold=a.threshold,
                    timestamp=p.until,
                )
                for a in p.alerts
            ],
        )


async def model_performance(
    info: Info,
    workspace_id: int,
    model_id: int,
    period: Period,
    *,
    in_service_since: datetime,
    threshold: float | None,
    test_accuracy: float | None,
) -> ModelPerformance:
    """The period ends now; accuracy counts outcomes after `in_service_since` too."""
    until = utcnow()
    since = until - PERIODS[period.value]
    async with info.context.db.session() as session:
        config = await load_config(session, workspace_id)
        result = await performance.model_performance(
            session,
            workspace_id,
            model_id,
            since=since,
            until=until,
            accuracy_since=max(since, in_service_since),
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            test_accuracy=test_accuracy,
            config=config,
        )
    return ModelPerformance.from_result(period, result, (workspace_id, model_id))
