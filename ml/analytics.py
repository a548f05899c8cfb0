"""The ML analytics dashboard (seed 003 "Get ML Performance Dashboard", seed 000 "ML Model
Performance Dashboard"): models by status, the champion, predictions and their confidence over
a period, per-model usage, latency and error rate, the serving versions' alerts (ml/performance.py,
against the ML config's thresholds), job queue depth and trends, all from the registry,
`lead_score`, `ml_prediction_stat` and `job` rows.

Batch predictions are `lead_score` rows (one per lead scored by a job); online predictions are
the counts of `ml_prediction_stat` (see ml/monitoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ml import monitoring, performance, registry
from ml.metrics import DEFAULT_THRESHOLD
from models.db import utcnow
from models.errors import ModelNotFound
from models.jobs import Job, JobStatus
from models.leads import CurrentScore, LeadScore
from models.ml_models import MlModel, MlPredictionStat, ModelStatus, load_config
from models.periods import PERIODS
from models.scope import Scope

# trend buckets: hours for the short periods, days for the rest
HOURLY = ("H1", "H24")


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: MlModel
    batch_predictions: int
    average_score: float | None
    average_confidence: float | None
    online_predictions: int
    online_errors: int
    latency: monitoring.LatencySummary

    @property
    def error_rate(self) -> float | None:
        return self.online_errors / self.online_predictions if self.online_predictions else None


@dataclass(frozen=True, slots=True)
class QueueDepth:
    kind: str
    queued: int
    running: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    period_start: datetime
    predictions: int  # batch: lead_score rows
    average_score: float | None
    average_confidence: float | None
    online_predictions: int = 0
    average_latency_ms: float | None = None  # of the bucket's online predict calls


@dataclass(frozen=True, slots=True)
class ModelAlert:
    model: MlModel
    alert: performance.Alert
    recommendation: str


# what to do about each alert kind of ml/performance.py
RECOMMENDATIONS = {
    "ACCURACY_DROP": "Retrain {name} on the recent outcomes (retrainModel) and compare the "
    "candidate with it (compareModels) before deploying it",
    "LATENCY_INCREASE": "Check the scoring load and the score cache of {name} (mlConfig "
    "scoring.cache); a smaller model (fewer or shallower trees) predicts faster",
    "DRIFT": "Schedule a retrain of {name} on recent leads (retrainModel) and check the drifting "
    "feature's source data (model drift)",
}


@dataclass(frozen=True, slots=True)
class MlAnalytics:
    period_start: datetime
    period_end: datetime
    granularity: str  # HOUR or DAY
    models_by_status: dict[str, int]
    champion: MlModel | None
    batch_predictions: int
    online_predictions: int
    online_errors: int
    average_confidence: float | None
    leads_scored: int  # distinct leads scored in the period
    leads_with_score: int  # leads holding a current score (any time)
    total_leads: int
    models: list[ModelUsage]
    queue: list[QueueDepth]
    queue_depth_all: int  # queued jobs of every workspace: the shared workers' backlog
    trends: list[TrendPoint]
    average_latency_ms: float | None  # every online predict call of the period
    # mean test-split accuracy of the ACTIVE versions (the ones serving)
    average_accuracy: float | None
    alerts: list[ModelAlert]  # of the ACTIVE versions over the period

    @property
    def error_rate(self) -> float | None:
        return self.online_errors / self.online_predictions if self.online_predictions else None


async def ml_analytics(
    session: AsyncSession,
    scope: Scope,
    period: str,
    *,
    now: datetime | None = None,
    model_ids: list[int] | None = None,
) -> MlAnalytics:
    """Every number of the dashboard for one workspace (callers check the role); `model_ids`:
    the versions whose usage to list (default: the ACTIVE and CANDIDATE ones; unknown ids
    raise MODEL_NOT_FOUND)."""
    end = now or utcnow()
    start = end - PERIODS[period]
    ws = scope.workspace_id
    granularity = "HOUR" if period in HOURLY else "DAY"

    statuses = await session.execute(
        sa.select(col(MlModel.status), sa.func.count())
        .where(col(MlModel.workspace_id) == ws)
        .group_by(col(MlModel.status))
    )
    by_status = {str(s): int(n) for s, n in statuses.all()}
    rows = await registry.list_models(session, scope)
    if model_ids is None:
        live = [m for m in rows if m.status in (ModelStatus.ACTIVE, ModelStatus.CANDIDATE)]
    else:
        by_id = {m.id: m for m in rows}
        missing = [str(i) for i in model_ids if i not in by_id]
        if missing:
            raise ModelNotFound("Models not found", modelIds=missing)
        live = [by_id[i] for i in dict.fromkeys(model_ids)]
    serving = [m for m in rows if m.status == ModelStatus.ACTIVE]
    champion = await registry.champion(session, ws)

    in_period = sa.and_(
        col(LeadScore.workspace_id) == ws,
        col(LeadScore.scored_at) >= start,
        col(LeadScore.scored_at) < end,
    )
    # per model: batch predictions, score and confidence sums; distinct leads separately
    per_model = await session.execute(
        sa.select(
            col(LeadScore.model_id),
            sa.func.count(),
            sa.func.sum(col(LeadScore.value)),
            sa.func.sum(col(LeadScore.confidence)),
            sa.func.count(col(LeadScore.confidence)),
        )
        .where(in_period)
        .group_by(col(LeadScore.model_id))
    )
    batch: dict[int | None, tuple[int, float, float, int]] = {
        m: (int(n), float(v or 0), float(c or 0), int(nc)) for m, n, v, c, nc in per_model.all()
    }
    leads_scored = int(
        (
            await session.execute(
                sa.select(sa.func.count(sa.distinct(col(LeadScore.lead_id)))).where(in_period)
            )
        ).scalar_one()
    )
    lead_counts = (
        await session.execute(
            # one CurrentScore row per lead
            sa.select(sa.func.count(), sa.func.count(col(CurrentScore.value))).where(
                col(CurrentScore.workspace_id) == ws
            )
        )
    ).one()

    bucket = sa.func.date_trunc(granularity.lower(), col(LeadScore.scored_at))
    trend_rows = await session.execute(
        sa.select(
            bucket,
            sa.func.count(),
            sa.func.avg(col(LeadScore.value)),
            sa.func.avg(col(LeadScore.confidence)),
        )
        .where(in_period)
        .group_by(bucket)
        .order_by(bucket)
    )
    batch_trend = {
        at: (int(n), None if v is None else float(v), None if c is None else float(c))
        for at, n, v, c in trend_rows.all()
    }
    online_trend = await _online_trend(session, ws, granularity, start, end)
    trends = [
        TrendPoint(
            at,
            *batch_trend.get(at, (0, None, None)),
            online_predictions=online_trend.get(at, (0, None))[0],
            average_latency_ms=online_trend.get(at, (0, None))[1],
        )
        for at in sorted(batch_trend.keys() | online_trend.keys())
    ]

    online = await _online_stats(session, ws, start, end)
    usage = []
    for m in live:
        n, value_sum, conf_sum, conf_n = batch.get(m.id, (0, 0.0, 0.0, 0))
        count, errors, latency_sum, buckets = online.get(
            m.id or 0, (0, 0, 0.0, [0] * monitoring.BUCKETS)
        )
        usage.append(
            ModelUsage(
                model=m,
                batch_predictions=n,
                average_score=value_sum / n if n else None,
                average_confidence=conf_sum / conf_n if conf_n else None,
                online_predictions=count,
                online_errors=errors,
                latency=monitoring.latency_summary(buckets, latency_sum),
            )
        )

    jobs = await session.execute(
        sa.select(col(Job.kind), col(Job.status), sa.func.count())
        .where(
            col(Job.workspace_id) == ws,
            col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
        .group_by(col(Job.kind), col(Job.status))
    )
    queue: dict[str, dict[str, int]] = {}
    for kind, status, n in jobs.all():
        queue.setdefault(kind, {})[status] = int(n)
    depth_all = int(
        (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(Job)
                .where(col(Job.status) == JobStatus.QUEUED)
            )
        ).scalar_one()
    )

    total_batch = sum(v[0] for v in batch.values())
    conf_n = sum(v[3] for v in batch.values())
    calls = sum(sum(v[3]) for v in online.values())
    accuracies = [a for m in serving if (a := registry.test_metric(m, "accuracy")) is not None]
    alerts = await serving_alerts(session, ws, serving, start, end)
    return MlAnalytics(
        period_start=start,
        period_end=end,
        granularity=granularity,
        models_by_status=by_status,
        champion=champion,
        batch_predictions=total_batch,
        online_predictions=sum(v[0] for v in online.values()),
        online_errors=sum(v[1] for v in online.values()),
        average_confidence=sum(v[2] for v in batch.values()) / conf_n if conf_n else None,
        leads_scored=leads_scored,
        leads_with_score=int(lead_counts[1]),
        total_leads=int(lead_counts[0]),
        models=usage,
        queue=[
            QueueDepth(kind, s.get(JobStatus.QUEUED, 0), s.get(JobStatus.RUNNING, 0))
            for kind, s in sorted(queue.items())
        ],
        queue_depth_all=depth_all,
        trends=trends,
        average_latency_ms=sum(v[2] for v in online.values()) / calls if calls else None,
        average_accuracy=sum(accuracies) / len(accuracies) if accuracies else None,
        alerts=alerts,
    )


async def serving_alerts(
    session: AsyncSession, workspace_id: int, serving: list[MlModel], start: datetime, end: datetime
) -> list[ModelAlert]:
    """The serving versions' `MlModel.performance` alerts over [start, end), as that field
    computes them (accuracy since each one went into service)."""
    if not serving:
        return []
    config = await load_config(session, workspace_id)
    found = []
    for model in serving:
        assert model.id is not None
        in_service = model.deployed_at or model.trained_at or model.created_at
        threshold = registry.test_metric(model, "threshold")
        result = await performance.model_performance(
            session,
            workspace_id,
            model.id,
            since=start,
            until=end,
            accuracy_since=max(start, in_service),
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            test_accuracy=registry.test_metric(model, "accuracy"),
            config=config,
        )
        for alert in result.alerts:
            advice = RECOMMENDATIONS[alert.kind].format(name=f"{model.name} v{model.version}")
            found.append(ModelAlert(model, alert, advice))
    return found


async def _online_trend(
    session: AsyncSession, workspace_id: int, granularity: str, start: datetime, end: datetime
) -> dict[datetime, tuple[int, float | None]]:
    """Per bucket: online predictions and the mean latency of their predict calls."""
    stat: Any = MlPredictionStat
    bucket = sa.func.date_trunc(granularity.lower(), stat.minute)
    calls = sa.func.coalesce(
        sa.func.sum(
            sa.select(sa.func.sum(sa.column("b")))
            .select_from(sa.func.unnest(stat.latency_buckets).alias("b"))
            .scalar_subquery()
        ),
        0,
    )
    rows = await session.execute(
        sa.select(bucket, sa.func.sum(stat.count), sa.func.sum(stat.latency_sum_ms), calls)
        .where(
            stat.workspace_id == workspace_id,
            stat.minute >= monitoring.minute_of(start),
            stat.minute < end,
        )
        .group_by(bucket)
    )
    return {at: (int(n), float(total) / int(c) if c else None) for at, n, total, c in rows.all()}


async def _online_stats(
    session: AsyncSession, workspace_id: int, start: datetime, end: datetime
) -> dict[int, tuple[int, int, float, list[int]]]:
    """Per model: (count, errors, latency sum, histogram) of the minutes in [start, end)."""
    stat: Any = MlPredictionStat
    rows = await session.execute(
        sa.select(
            stat.model_id, stat.count, stat.errors, stat.latency_sum_ms, stat.latency_buckets
        ).where(
            stat.workspace_id == workspace_id,
            stat.minute >= monitoring.minute_of(start),
            stat.minute < end,
        )
    )
    out: dict[int, tuple[int, int, float, list[int]]] = {}
    for model_id, count, errors, latency_sum, buckets in rows.all():
        n, e, s, b = out.get(model_id, (0, 0, 0.0, [0] * monitoring.BUCKETS))
        padded = (list(buckets or []) + [0] * monitoring.BUCKETS)[: monitoring.BUCKETS]
        merged = [x + y for x, y in zip(b, padded, strict=True)]
        out[model_id] = (n + int(count), e + int(errors), s + float(latency_sum), merged)
    return out
