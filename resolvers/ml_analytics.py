"""`mlAnalytics` (seed 003 "Get ML Performance Dashboard"): models, predictions, the answering
process's health, the job queue and scoring trends of a workspace, for its admins."""

from __future__ import annotations

from datetime import datetime

import psutil  # type: ignore[import-untyped]
import strawberry

from ml import analytics, registry
from models.errors import Forbidden
from models.ml_models import MlModel as MlModelRow
from models.ml_models import ModelStatus
from resolvers.context import Context, Info
from resolvers.enums import Granularity, Period
from resolvers.ids import parse_id
from resolvers.ml_models import MlModel
from resolvers.ml_performance import ALERT_SEVERITY, ALERT_TYPE

# cpu_percent measures since its previous call: prime it once so the first answer means something
_PROCESS = psutil.Process()
_PROCESS.cpu_percent(None)


@strawberry.type
class ModelStatusCount:
    status: ModelStatus
    count: int


@strawberry.type
class MlAnalyticsSummary:
    models_by_status: list[ModelStatusCount]
    active_models: int
    champion: MlModel | None
    champion_version: int | None
    champion_test_auc: float | None
    batch_predictions: int = strawberry.field(description="lead_score rows written in the period")
    online_predictions: int = strawberry.field(description="Predictions served by requests")
    total_predictions: int
    online_errors: int
    average_confidence: float | None = strawberry.field(
        description="Mean confidence (0..1) of the scores stored in the period"
    )
    leads_scored: int = strawberry.field(description="Distinct leads scored in the period")
    leads_with_score: int = strawberry.field(description="Leads holding a current score")
    total_leads: int
    average_accuracy: float | None = strawberry.field(
        description="Mean test-split accuracy of the ACTIVE (serving) versions"
    )
    average_latency_ms: float | None = strawberry.field(
        description="Mean latency of the period's online predict calls"
    )
    alerts_count: int = strawberry.field(description="The serving versions' alerts")


@strawberry.type(description="Latency of online predict calls, ms (from the histogram)")
class PredictionLatency:
    calls: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@strawberry.type
class MlModelUsage:
    model: MlModel = strawberry.field(
        description="Its stored metrics are on the test split; its `performance(period)` adds "
        "latency percentiles and accuracy on outcomes known since"
    )
    batch_predictions: int
    average_score: float | None
    average_confidence: float | None
    online_predictions: int
    online_errors: int
    error_rate: float | None = strawberry.field(description="online errors / online predictions")
    latency: PredictionLatency


@strawberry.type
class JobQueueDepth:
    kind: str
    queued: int
    running: int


@strawberry.type(description="The answering process and the job queue")
class MlSystemHealth:
    cpu_percent: float = strawberry.field(
        description="This process's CPU use since the previous reading (100 = one core)"
    )
    memory_rss_bytes: int = strawberry.field(description="This process's resident memory")
    memory_percent: float = strawberry.field(description="The machine's memory in use, 0..100")
    queue: list[JobQueueDepth] = strawberry.field(description="This workspace's unfinished jobs")
    queue_depth: int = strawberry.field(description="Queued jobs of every workspace")
    pubsub_backend: str
    pubsub_healthy: bool
    error_rate: float | None = strawberry.field(
        description="Online prediction errors / online predictions in the period"
    )


@strawberry.type
class MlTrendPoint:
    period_start: datetime
    predictions: int = strawberry.field(description="Batch: lead_score rows written")
    average_score: float | None
    average_confidence: float | None
    online_predictions: int
    average_latency_ms: float | None = strawberry.field(
        description="Mean latency of the bucket's online predict calls"
    )


@strawberry.type(description="A serving version's alert over the period, and what to do")
class MlAnalyticsAlert:
    model: MlModel
    type: str = strawberry.field(description=ALERT_TYPE)
    severity: str = strawberry.field(description=ALERT_SEVERITY)
    message: str
    value: float
    threshold: float
    recommendation: str


@strawberry.type(description="The ML dashboard of a workspace over a period (ADMIN)")
class MlAnalytics:
    period: Period
    period_start: datetime
    period_end: datetime
    granularity: Granularity = strawberry.field(description="HOUR for H1/H24, else DAY")
    summary: MlAnalyticsSummary
    models: list[MlModelUsage] = strawberry.field(description="ACTIVE and CANDIDATE versions")
    system_health: MlSystemHealth
    trends: list[MlTrendPoint] = strawberry.field(
        description="Batch scoring and online predictions per bucket"
    )
    alerts: list[MlAnalyticsAlert] = strawberry.field(
        description="The ACTIVE versions' `performance(period)` alerts (ML config thresholds)"
    )


def _health(context: Context, a: analytics.MlAnalytics) -> MlSystemHealth:
    pubsub = context.services.pubsub
    return MlSystemHealth(
        cpu_percent=_PROCESS.cpu_percent(None),
        memory_rss_bytes=_PROCESS.memory_info().rss,
        memory_percent=psutil.virtual_memory().percent,
        queue=[JobQueueDepth(kind=q.kind, queued=q.queued, running=q.running) for q in a.queue],
        queue_depth=a.queue_depth_all,
        pubsub_backend=pubsub.backend,
        pubsub_healthy=pubsub.healthy,
        error_rate=a.error_rate,
    )


def _usage(u: analytics.ModelUsage) -> MlModelUsage:
    lat = u.latency
    return MlModelUsage(
        model=MlModel.from_row(u.model),
        batch_predictions=u.batch_predictions,
        average_score=u.average_score,
        average_confidence=u.average_confidence,
        online_predictions=u.online_predictions,
        online_errors=u.online_errors,
        error_rate=u.error_rate,
        latency=PredictionLatency(
            calls=lat.calls,
            mean_ms=lat.mean_ms,
            p50_ms=lat.p50_ms,
            p95_ms=lat.p95_ms,
            p99_ms=lat.p99_ms,
        ),
    )


@strawberry.type
class MlAnalyticsQueries:
    @strawberry.field(
        description="The ML dashboard: models, predictions, health, alerts, trends (ADMIN); "
        "`models`: the versions to list (default the ACTIVE and CANDIDATE ones)"
    )
    async def ml_analytics(
        self,
        info: Info,
        period: Period = Period.H24,
        models: list[strawberry.ID] | None = None,
        workspace_id: strawberry.ID | None = None,
    ) -> MlAnalytics:
        scope = await info.context.scope(workspace_id)
        if not scope.is_admin:
            raise Forbidden("The ML dashboard is for workspace admins")
        model_ids = None if models is None else [parse_id(i, "models") for i in models]
        async with info.context.db.custom_plans() as session:
            a = await analytics.ml_analytics(session, scope, period.value, model_ids=model_ids)
        champion = a.champion
        return MlAnalytics(
            period=period,
            period_start=a.period_start,
            period_end=a.period_end,
            granularity=Granularity(a.granularity),
            summary=MlAnalyticsSummary(
                models_by_status=[
                    ModelStatusCount(status=ModelStatus(s), count=n)
                    for s, n in sorted(a.models_by_status.items())
                ],
                active_models=a.models_by_status.get(ModelStatus.ACTIVE, 0),
                champion=None if champion is None else MlModel.from_row(champion),
                champion_version=None if champion is None else champion.version,
                champion_test_auc=None if champion is None else _auc(champion),
                batch_predictions=a.batch_predictions,
                online_predictions=a.online_predictions,
                total_predictions=a.batch_predictions + a.online_predictions,
                online_errors=a.online_errors,
                average_confidence=a.average_confidence,
                leads_scored=a.leads_scored,
                leads_with_score=a.leads_with_score,
                total_leads=a.total_leads,
                average_accuracy=a.average_accuracy,
                average_latency_ms=a.average_latency_ms,
                alerts_count=len(a.alerts),
            ),
            models=[_usage(u) for u in a.models],
            system_health=_health(info.context, a),
            trends=[
                MlTrendPoint(
                    period_start=t.period_start,
                    predictions=t.predictions,
                    average_score=t.average_score,
                    average_confidence=t.average_confidence,
                    online_predictions=t.online_predictions,
                    average_latency_ms=t.average_latency_ms,
                )
                for t in a.trends
            ],
            alerts=[
                MlAnalyticsAlert(
                    model=MlModel.from_row(x.model),
                    type=x.alert.kind,
                    severity=x.alert.severity,
                    message=x.alert.message,
                    value=x.alert.value,
                    threshold=x.alert.threshold,
                    recommendation=x.recommendation,
                )
                for x in a.alerts
            ],
        )


def _auc(model: MlModelRow) -> float | None:
    return registry.test_auc(model)
