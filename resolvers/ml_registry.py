"""Registry operations beyond the list: createModel, deployModel (A/B test, rollback),
compareModels, and the workspace's ML config (`mlConfig`, `updateMlConfig`)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry.types.unset import UNSET

from ml import comparison, config, deployment, registry
from ml.features import ALL_LEADS
from models.db import utcnow
from models.ml_models import ModelType
from models.periods import PERIODS
from resolvers.context import Info
from resolvers.enums import Period
from resolvers.ids import parse_id
from resolvers.jobs import Job
from resolvers.ml_models import DataSourceInput, MlModel


@strawberry.input(description="CatBoost parameters (validated like a retrain's)")
class HyperparametersInput:
    iterations: int | None = strawberry.field(default=None, description="10..5000")
    depth: int | None = strawberry.field(default=None, description="1..10")
    learning_rate: float | None = strawberry.field(default=None, description="(0, 1]")
    l2_leaf_reg: float | None = strawberry.field(default=None, description="0..100")
    early_stopping_rounds: int | None = strawberry.field(
        default=None,
        description="1..1000: stop once the validation loss has not improved for this many "
        "iterations (early stopping, its patience); default none",
    )


@strawberry.input
class CreateModelInput:
    name: str = strawberry.field(description="New in the workspace; 1..120 characters")
    description: str | None = None
    type: ModelType = ModelType.SCORING
    algorithm: str = strawberry.field(default="catboost", description="Only `catboost`")
    hyperparameters: HyperparametersInput | None = None
    validation_split: float | None = strawberry.field(
        default=None, description="0.05..0.4 (default: the ML config's)"
    )
    hyperparameter_tuning: bool = False
    data_source: DataSourceInput | None = strawberry.field(
        default=None, description="Which labelled leads to learn from (default: all)"
    )


@strawberry.input(description="Serve the version to a share of leads next to the champion")
class AbTestInput:
    traffic_percent: int = strawberry.field(description="1..99 % of leads, by lead id")
    duration: str | None = strawberry.field(
        default=None,
        description='How long, as the seed writes it: "7d", "24h", "90m" (at most 90d); or '
        "durationHours",
    )
    duration_hours: float | None = strawberry.field(
        default=None, description="Above 0, at most 2160 (90 days); or duration"
    )


@strawberry.input(
    description="Minimums the version's test-split metrics must meet (seed 003 "
    "validationResults), 0..1; a deployment short of one is refused naming it"
)
class ValidationResultsInput:
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1_score: float | None = None
    auc: float | None = None

    def required(self) -> dict[str, float]:
        given = {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1Score": self.f1_score,
            "auc": self.auc,
        }
        return {k: v for k, v in given.items() if v is not None}


@strawberry.input(
    description="Watch the new champion (seed 003 rollbackPlan): for `monitoringPeriod`, an "
    "alert of its performance since deployment rolls it back to `previousModel` at once"
)
class RollbackPlanInput:
    previous_model: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the champion it replaces"
    )
    monitoring_period: str = strawberry.field(
        description='How long, as the seed writes it: "24h", "7d", "90m" (at most 90d)'
    )


@strawberry.type(description="Who serves leads after a deployment")
class Deployment:
    champion: MlModel | None
    challenger: MlModel | None = strawberry.field(
        description="The A/B challenger, if a test was started and not ended by this change"
    )


@strawberry.type
class ModelMetricValue:
    model: MlModel
    value: float | None = strawberry.field(
        description="On the test split (latency: over the period); null: not measured"
    )
    difference_to_best: float | None = strawberry.field(
        description="value - best (<= 0 when higher is better)"
    )


@strawberry.type
class MetricComparison:
    metric: str
    higher_is_better: bool
    values: list[ModelMetricValue]
    best: float | None
    winner: MlModel | None = strawberry.field(description="null when the best value is shared")
    difference: float | None = strawberry.field(description="How much the winner wins by")

    @classmethod
    def from_row(cls, row: comparison.MetricComparison) -> Self:
        return cls(
            metric=row.metric.slug,
            higher_is_better=row.metric.higher_is_better,
            values=[
                ModelMetricValue(
                    model=MlModel.from_row(model),
                    value=value,
                    difference_to_best=None
                    if value is None or row.best is None
                    else value - row.best,
                )
                for model, value in row.values
            ],
            best=row.best,
            winner=None if row.winner is None else MlModel.from_row(row.winner),
            difference=row.margin,
        )


@strawberry.type(description="What to do with a compared version (seed 003 recommendations)")
class ModelRecommendation:
    type: str = strawberry.field(
        description="KEEP (the champion wins), PROMOTE (the challenger wins), AB_TEST (another "
        "version beats the champion: test it on a share of leads first), DEPLOY (no champion)"
    )
    model: MlModel
    reason: str
    confidence: float = strawberry.field(
        description="The share of the compared metrics the version wins, 0..1"
    )


@strawberry.type
class ModelComparison:
    models: list[MlModel]
    metrics: list[MetricComparison]
    winner: MlModel | None = strawberry.field(
        description="Wins the most metrics (ties: the first metric, then the champion)"
    )
    winner_metric_count: int
    recommendation: str
    recommendations: list[ModelRecommendation] = strawberry.field(
        description="The winner's, with its type and confidence; empty without a winner"
    )


@strawberry.type
class ScoringCacheConfig:
    enabled: bool
    ttl_seconds: int
    max_size: int


@strawberry.type
class ScoringConfig:
    max_batch_size: int
    timeout_ms: int
    cache: ScoringCacheConfig


@strawberry.type
class TrainingConfig:
    auto_retrain: bool = strawberry.field(
        description="The server retrains the champion once (a job, reason `auto: ...`) when its "
        "accuracy on 50+ new outcomes falls more than retrainThreshold below its test split's, "
        "or (driftDetection) a feature's PSI passes driftPsi"
    )
    retrain_threshold: float = strawberry.field(description="Accuracy drop that triggers it")
    auto_promote: bool = strawberry.field(
        description="A finished training becomes champion if it beats it on test AUC"
    )
    max_training_time_ms: int = strawberry.field(description="Longer trainings fail")
    validation_split: float


@strawberry.type
class AlertThresholds:
    accuracy_drop: float
    latency_increase_ms: float
    drift_psi: float


@strawberry.type
class MonitoringConfig:
    drift_detection: bool = strawberry.field(
        description="Drift past alertThresholds.driftPsi also triggers autoRetrain"
    )
    alert_thresholds: AlertThresholds


@strawberry.type(description="The workspace's ML settings (defaults until first updated)")
class MlConfig:
    active_model: MlModel | None = strawberry.field(description="The champion")
    fallback_model: MlModel | None
    scoring: ScoringConfig
    training: TrainingConfig
    monitoring: MonitoringConfig
    updated_at: datetime | None

    @classmethod
    def from_settings(cls, settings: config.MlSettings) -> Self:
        c = settings.config

        def model(row: Any) -> MlModel | None:
            return None if row is None else MlModel.from_row(row)

        return cls(
            active_model=model(settings.active_model),
            fallback_model=model(settings.fallback_model),
            scoring=ScoringConfig(
                max_batch_size=c.max_batch_size,
                timeout_ms=c.timeout_ms,
                cache=ScoringCacheConfig(
                    enabled=c.cache_enabled,
                    ttl_seconds=c.cache_ttl_seconds,
                    max_size=c.cache_max_size,
                ),
            ),
            training=TrainingConfig(
                auto_retrain=c.auto_retrain,
                retrain_threshold=c.retrain_threshold,
                auto_promote=c.auto_promote,
                max_training_time_ms=c.max_training_time_ms,
                validation_split=c.validation_split,
            ),
            monitoring=MonitoringConfig(
                drift_detection=c.drift_detection,
                alert_thresholds=AlertThresholds(
                    accuracy_drop=c.alert_accuracy_drop,
                    latency_increase_ms=c.alert_latency_increase_ms,
                    drift_psi=c.alert_drift_psi,
                ),
            ),
            # a workspace without a row shows the defaults, never updated
            updated_at=c.updated_at if c.updated_by is not None else None,
        )


@strawberry.input
class ScoringCacheConfigInput:
    enabled: bool | None = UNSET
    ttl_seconds: int | None = strawberry.field(default=UNSET, description="0..604800")
    max_size: int | None = strawberry.field(default=UNSET, description="0..10000000")


@strawberry.input
class ScoringConfigInput:
    max_batch_size: int | None = strawberry.field(default=UNSET, description="1..10000")
    timeout_ms: int | None = strawberry.field(default=UNSET, description="100..300000")
    cache: ScoringCacheConfigInput | None = UNSET


@strawberry.input
class TrainingConfigInput:
    auto_retrain: bool | None = UNSET
    retrain_threshold: float | None = strawberry.field(default=UNSET, description="(0, 1]")
    auto_promote: bool | None = UNSET
    max_training_time_ms: int | None = strawberry.field(default=UNSET, description="1000..86400000")
    validation_split: float | None = strawberry.field(default=UNSET, description="0.05..0.4")


@strawberry.input
class AlertThresholdsInput:
    accuracy_drop: float | None = strawberry.field(default=UNSET, description="(0, 1]")
    latency_increase_ms: float | None = strawberry.field(default=UNSET, description="(0, 60000]")
    drift_psi: float | None = strawberry.field(default=UNSET, description="(0, 10]")


@strawberry.input
class MonitoringConfigInput:
    drift_detection: bool | None = UNSET
    alert_thresholds: AlertThresholdsInput | None = UNSET


@strawberry.input(description="Only the given fields change; each is validated")
class MlConfigInput:
    fallback_model: strawberry.ID | None = strawberry.field(
        default=UNSET, description="A model of the workspace; null clears it"
    )
    scoring: ScoringConfigInput | None = UNSET
    training: TrainingConfigInput | None = UNSET
    monitoring: MonitoringConfigInput | None = UNSET


_GROUPS = {"scoring", "scoring.cache", "training", "monitoring", "monitoring.alertThresholds"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config input as {"scoring.timeoutMs": 45000, ...}, given fields only."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if item is UNSET:
            continue
        path = prefix + _camel(f.name)
        if dataclasses.is_dataclass(item):
            changes.update(_flatten(item, path + "."))
        elif item is not None or path not in _GROUPS:  # an explicit null group changes nothing
            changes[path] = item
    return changes


@strawberry.type
class MlRegistryQueries:
    @strawberry.field(
        description="2..10 versions side by side (metrics: auc, accuracy, precision, recall, "
        "f1Score, liftTopDecile on their test split; latency: p50 ms of their predictions in "
        "`period`, lower is better, null without any; default all) with winners and a "
        "recommendation"
    )
    async def compare_models(
        self,
        info: Info,
        ids: list[strawberry.ID],
        metrics: list[str] | None = None,
        period: Period = Period.D30,
        workspace_id: strawberry.ID | None = None,
    ) -> ModelComparison:
        scope = await info.context.scope(workspace_id)
        model_ids = [parse_id(i, "ids") for i in ids]
        until = utcnow()
        async with info.context.db.session() as session:
            report = await comparison.compare_models(
                session,
                scope,
                model_ids,
                metrics,
                since=until - PERIODS[period.value],
                until=until,
            )
        return ModelComparison(
            models=[MlModel.from_row(m) for m in report.models],
            metrics=[MetricComparison.from_row(m) for m in report.metrics],
            winner=None if report.winner is None else MlModel.from_row(report.winner),
            winner_metric_count=0
            if report.winner is None or report.winner.id is None
            else report.wins[report.winner.id],
            recommendation=report.recommendation,
            recommendations=[]
            if report.winner is None or report.confidence is None
            else [
                ModelRecommendation(
                    type=report.action,
                    model=MlModel.from_row(report.winner),
                    reason=report.recommendation,
                    confidence=report.confidence,
                )
            ],
        )

    @strawberry.field(description="The workspace's ML config; any member may read it")
    async def ml_config(self, info: Info, workspace_id: strawberry.ID | None = None) -> MlConfig:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.session() as session:
            settings = await config.ml_settings(session, scope)
        return MlConfig.from_settings(settings)


@strawberry.type
class MlRegistryMutations:
    @strawberry.mutation(
        description="Train version 1 of a new model as a job (like retrainModel); ADMIN only"
    )
    async def create_model(
        self, info: Info, input: CreateModelInput, workspace_id: strawberry.ID | None = None
    ) -> Job:
        scope = await info.context.scope(workspace_id)
        given = input.hyperparameters or HyperparametersInput()
        hyperparameters = {
            "iterations": given.iterations,
            "depth": given.depth,
            "learningRate": given.learning_rate,
            "l2LeafReg": given.l2_leaf_reg,
            "earlyStoppingRounds": given.early_stopping_rounds,
            "validationSplit": input.validation_split,
            "hyperparameterTuning": input.hyperparameter_tuning,
        }
        async with info.context.db.transaction() as session:
            row = await registry.request_create(
                session,
                scope,
                name=input.name,
                description=input.description,
                model_type=input.type,
                algorithm=input.algorithm,
                hyperparameters={k: v for k, v in hyperparameters.items() if v is not None},
                source=ALL_LEADS if input.data_source is None else input.data_source.source(),
            )
        info.context.wake_workers()
        await info.context.publish(scope.workspace_id, "job", [row.id])
        return Job.from_row(row)

    @strawberry.mutation(
        description="Make `id` the champion (ending any A/B test; deploying the challenger "
        "promotes it), or with `abTest` the challenger for a share of leads, or with "
        "`rollbackTo` move the champion back to that version (`id`: the champion or challenger "
        "being rolled back). The replaced champion is RETIRED, not deleted. "
        "`validationResults`: minimum test metrics; `rollbackPlan`: roll a new champion back "
        "automatically if it alerts within the monitoring period. ADMIN only; audited"
    )
    async def deploy_model(
        self,
        info: Info,
        id: strawberry.ID,
        ab_test: AbTestInput | None = None,
        rollback_to: strawberry.ID | None = None,
        reason: str | None = None,
        workspace_id: strawberry.ID | None = None,
        validation_results: ValidationResultsInput | None = None,
        rollback_plan: RollbackPlanInput | None = None,
    ) -> Deployment:
        scope = await info.context.scope(workspace_id)
        model_id = parse_id(id, "id")
        target = None if rollback_to is None else parse_id(rollback_to, "rollbackTo")
        ab = (
            None
            if ab_test is None
            else deployment.ab_test(
                ab_test.traffic_percent, ab_test.duration, ab_test.duration_hours
            )
        )
        plan = (
            None
            if rollback_plan is None
            else deployment.RollbackPlan(
                None
                if rollback_plan.previous_model is None
                else parse_id(rollback_plan.previous_model, "rollbackPlan.previousModel"),
                rollback_plan.monitoring_period,
            )
        )
        async with info.context.db.transaction() as session:
            result = await deployment.deploy(
                session,
                scope,
                model_id,
                ab_test=ab,
                rollback_to=target,
                reason=reason,
                required=None if validation_results is None else validation_results.required(),
                rollback_plan=plan,
            )
        if result.changed:
            await info.context.publish(scope.workspace_id, "ml_model", result.changed)
        return Deployment(
            champion=None if result.champion is None else MlModel.from_row(result.champion),
            challenger=None if result.challenger is None else MlModel.from_row(result.challenger),
        )

    @strawberry.mutation(description="Change the given settings (validated); ADMIN only; audited")
    async def update_ml_config(
        self, info: Info, input: MlConfigInput, workspace_id: strawberry.ID | None = None
    ) -> MlConfig:
        scope = await info.context.scope(workspace_id)
        changes = _flatten(input)
        if changes.get(config.FALLBACK) is not None:
            changes[config.FALLBACK] = parse_id(changes[config.FALLBACK], config.FALLBACK)
        async with info.context.db.transaction() as session:
            settings = await config.update_ml_settings(session, scope, changes)
        await info.context.publish(scope.workspace_id, "ml_config", [scope.workspace_id])
        return MlConfig.from_settings(settings)
