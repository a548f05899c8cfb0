"""ML models: the registry's types, `models` / `model`, retraining and status mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

import strawberry
from strawberry.scalars import JSON

from ml import registry
from ml.features import ALL_LEADS, DataSource
from models.db import utcnow
from models.errors import BadUserInput
from models.jobs import JobPriority
from models.ml_models import CHALLENGER, ModelStatus, ModelType
from models.ml_models import MlModel as MlModelRow
from resolvers import ml_explain, ml_performance
from resolvers.context import Info
from resolvers.enums import Period
from resolvers.ids import parse_id
from resolvers.jobs import Job
from resolvers.leads import LeadFilter
from resolvers.ml_drift import ModelDrift, model_drift
from resolvers.ml_explain import FeatureImportance
from resolvers.ml_performance import ModelPerformance


@strawberry.type(description="Classification metrics on one split (the newest leads: test)")
class ModelMetrics:
    accuracy: float
    precision: float
    recall: float
    f1_score: float
    auc: float | None = strawberry.field(description="null when the split has only one class")
    threshold: float | None = strawberry.field(
        description="Decision threshold of accuracy/precision/recall/F1 (predict convert when "
        "probability >= it): the best-F1 cut-off on the validation split, the same for every "
        "split; null on versions trained before it was recorded (they used 0.5)"
    )
    lift_top_decile: float | None = strawberry.field(
        description="Conversion rate of the 10% highest scored leads over the split's overall "
        "rate (1 = no better than random)"
    )

    @classmethod
    def from_split(cls, split: dict[str, Any]) -> Self:
        return cls(
            accuracy=float(split["accuracy"]),
            precision=float(split["precision"]),
            recall=float(split["recall"]),
            f1_score=float(split["f1_score"]),
            auc=_number(split.get("auc")),
            threshold=_number(split.get("threshold")),
            lift_top_decile=_number(split.get("lift_top_decile")),
        )


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


@strawberry.type(description="Metrics per time-ordered split: oldest leads train, newest test")
class SplitMetrics:
    train: ModelMetrics | None
    validation: ModelMetrics | None
    test: ModelMetrics | None


@strawberry.type(
    description="A champion's rollback plan (deployModel rollbackPlan): until monitorUntil, an "
    "alert of its performance since deployment rolls it back to previousModelId"
)
class ModelRollbackPlan:
    previous_model_id: strawberry.ID
    monitor_until: datetime

    @strawberry.field(description="Still watched: monitorUntil has not passed")
    def monitoring(self) -> bool:
        return self.monitor_until > utcnow()


@strawberry.type(description="The leads a version learned from, by creation time")
class TrainingDataSource:
    created_from: datetime | None = strawberry.field(description="Inclusive; null: the first")
    created_before: datetime | None = strawberry.field(description="Exclusive; null: now")


@strawberry.input(
    description="Learn from the labelled leads created in [createdFrom, createdBefore) (seed 003 "
    "dataSource); either end may be left open; a time without a zone is UTC"
)
class DataSourceInput:
    created_from: datetime | None = None
    created_before: datetime | None = None

    def source(self) -> DataSource:
        return DataSource.of(self.created_from, self.created_before)


@strawberry.type(description="The labelled leads a version learned from (seed 003 trainingData)")
class TrainingData:
    total_samples: int
    train_samples: int
    validation_samples: int
    test_samples: int
    feature_count: int
    conversions: int = strawberry.field(description="Converted (WON) leads over all splits")
    data_source: TrainingDataSource | None = strawberry.field(
        description="The creation window it was given; null: every labelled lead"
    )

    @classmethod
    def from_row(cls, row: MlModelRow) -> Self | None:
        sizes = row.training_sizes
        if not sizes:
            return None

        def rows(split: str) -> int:
            return int(sizes.get(split, {}).get("rows", 0))

        given = sizes.get("dataSource")
        source = None if given is None else DataSource.from_payload(given)
        return cls(
            total_samples=sum(rows(s) for s in ("train", "validation", "test")),
            train_samples=rows("train"),
            validation_samples=rows("validation"),
            test_samples=rows("test"),
            feature_count=len(row.feature_importance),
            conversions=sum(
                int(sizes.get(split, {}).get("conversions", 0))
                for split in ("train", "validation", "test")
            ),
            data_source=None
            if source is None
            else TrainingDataSource(
                created_from=source.created_from, created_before=source.created_before
            ),
        )


@strawberry.type
class MlModel:
    id: strawberry.ID
    name: str
    version: int
    status: ModelStatus
    type: ModelType
    description: str | None
    algorithm: str

    @strawberry.field(
        description="The library serving it (seed 003 framework): catboost and the version this "
        "server runs"
    )
    def framework(self) -> str:
        return registry.FRAMEWORK

    alias: str | None = strawberry.field(
        description="`champion` (serves every lead not in an A/B test) or `challenger` (ACTIVE, "
        "serves `trafficPercent` % of leads while its A/B test runs)"
    )
    metrics: ModelMetrics | None = strawberry.field(description="On the test split")
    split_metrics: SplitMetrics = strawberry.field(
        description="train / validation / test (seed: trainAccuracy, validationAccuracy, ...)"
    )
    training_data: TrainingData | None
    training_samples: int | None
    hyperparameters: JSON
    traffic_percent: int | None = strawberry.field(
        description="A/B test: the challenger's share of leads, 1..99 (kept after the test)"
    )
    deployed_at: datetime | None = strawberry.field(
        description="When it last became champion or challenger"
    )
    ab_ends_at: datetime | None = strawberry.field(
        description="When its A/B test ends (or ended, if stopped early)"
    )
    rollback_plan: ModelRollbackPlan | None = strawberry.field(
        description="While it is the champion deployed with one"
    )
    created_at: datetime
    trained_at: datetime | None
    importance: strawberry.Private[dict[str, float]]
    workspace_id: strawberry.Private[int]

    @strawberry.field(description="A challenger whose A/B test is still running")
    def ab_test_running(self) -> bool:
        return (
            self.alias == CHALLENGER
            and bool(self.traffic_percent)
            and (self.ab_ends_at is None or self.ab_ends_at > utcnow())
        )

    @strawberry.field(
        description="Global importance per feature, largest first; with `leadIds` (at most "
        "100 of the workspace's leads) also each lead's SHAP value and the mean |SHAP|"
    )
    async def feature_importance(
        self, info: Info, lead_ids: list[strawberry.ID] | None = None
    ) -> list[FeatureImportance]:
        return await ml_explain.feature_importance(
            info, self.workspace_id, int(self.id), self.importance, lead_ids
        )

    @strawberry.field(
        description="Data drift (PSI) of the leads created in the `windowDays` (1..365) days "
        "before the last 14, against this version's training data, and concept drift"
    )
    async def drift(self, info: Info, window_days: int = 30) -> ModelDrift:
        return await model_drift(info, self.workspace_id, int(self.id), window_days)

    @strawberry.field(
        description="Predictions, errors, timeouts, latency percentiles, throughput and "
        "accuracy on outcomes known since deployment, over the period ending now"
    )
    async def performance(self, info: Info, period: Period = Period.H24) -> ModelPerformance:
        return await ml_performance.model_performance(
            info,
            self.workspace_id,
            int(self.id),
            period,
            in_service_since=self.deployed_at or self.trained_at or self.created_at,
            threshold=self.metrics.threshold if self.metrics else None,
            test_accuracy=self.metrics.accuracy if self.metrics else None,
        )

    @classmethod
    def from_row(cls, row: MlModelRow) -> Self:
        splits = {
            name: ModelMetrics.from_split(part) if part else None
            for name in ("train", "validation", "test")
            for part in [row.metrics.get(name)]
        }
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            version=row.version,
            status=ModelStatus(row.status),
            type=ModelType(row.type),
            description=row.description,
            algorithm=row.algorithm,
            alias=row.alias,
            metrics=splits["test"],
            split_metrics=SplitMetrics(**splits),
            training_data=TrainingData.from_row(row),
            training_samples=row.training_samples,
            hyperparameters=JSON({k: v for k, v in row.hyperparameters.items() if k != "reason"}),
            traffic_percent=row.traffic_percent,
            deployed_at=row.deployed_at,
            ab_ends_at=row.ab_ends_at,
            rollback_plan=None
            if row.rollback_to_id is None or row.monitor_until is None
            else ModelRollbackPlan(
                previous_model_id=strawberry.ID(str(row.rollback_to_id)),
                monitor_until=row.monitor_until,
            ),
            created_at=row.created_at,
            trained_at=row.trained_at,
            importance={k: float(v) for k, v in row.feature_importance.items()},
            workspace_id=row.workspace_id,
        )


@strawberry.input
class RetrainInput:
    reason: str | None = None
    priority: JobPriority = strawberry.field(
        default=JobPriority.NORMAL, description="Workers take HIGH jobs first, LOW last"
    )
    iterations: int | None = None
    depth: int | None = None
    learning_rate: float | None = None
    l2_leaf_reg: float | None = None
    early_stopping_rounds: int | None = strawberry.field(
        default=None,
        description="1..1000: stop once the validation loss has not improved for this many "
        "iterations (default: the base version's, else none)",
    )
    validation_split: float | None = strawberry.field(
        default=None,
        description="Share held out for validation, and again for test (default: the ML "
        "config's training.validationSplit)",
    )
    hyperparameter_tuning: bool = strawberry.field(
        default=False,
        description="Compare depth -2/0/+2 x learning rate x0.5/1/2 on the validation split "
        "first and keep the best (its parameters are in the version's hyperparameters.tuning)",
    )
    data_source: DataSourceInput | None = strawberry.field(
        default=None,
        description="Which labelled leads to learn from (default: all; not inherited)",
    )


@strawberry.type
class MlQueries:
    @strawberry.field(description="The workspace's model versions, newest first")
    async def models(
        self,
        info: Info,
        status: ModelStatus | None = None,
        workspace_id: strawberry.ID | None = None,
        type: ModelType | None = None,
    ) -> list[MlModel]:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.session() as session:
            rows = await registry.list_models(session, scope, status, type)
        return [MlModel.from_row(row) for row in rows]

    @strawberry.field
    async def model(
        self, info: Info, id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> MlModel:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.session() as session:
            row = await registry.get_model(session, scope, parse_id(id, "id"))
        return MlModel.from_row(row)


@strawberry.type
class MlMutations:
    @strawberry.mutation(
        description="Train a new version (of `id`, else of the champion) as a job; it becomes "
        "the champion if there is none or it beats the champion's test AUC"
    )
    async def retrain_model(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        input: RetrainInput | None = None,
        workspace_id: strawberry.ID | None = None,
    ) -> Job:
        scope = await info.context.scope(workspace_id)
        given = input or RetrainInput()
        overrides = {
            "iterations": given.iterations,
            "depth": given.depth,
            "learningRate": given.learning_rate,
            "l2LeafReg": given.l2_leaf_reg,
            "earlyStoppingRounds": given.early_stopping_rounds,
            "validationSplit": given.validation_split,
            "hyperparameterTuning": given.hyperparameter_tuning,
        }
        model_id = None if id is None else parse_id(id, "id")
        async with info.context.db.transaction() as session:
            row = await registry.request_retrain(
                session,
                scope,
                model_id,
                reason=given.reason,
                overrides=overrides,
                priority=given.priority,
                source=ALL_LEADS if given.data_source is None else given.data_source.source(),
            )
        info.context.wake_workers()
        await info.context.publish(scope.workspace_id, "job", [row.id])
        return Job.from_row(row)

    @strawberry.mutation(
        description="Score leads with `model` (null: the champion) as a job: `leadIds` (at most "
        "the ML config's maxBatchSize), or a `filter`, or neither (all the viewer may see). "
        "Its result: total, successful, failed, averageScore, averageConfidence, and for at "
        "most 1,000 named leads `results` [{leadId, score, confidence, error}]"
    )
    async def score_leads(
        self,
        info: Info,
        lead_ids: list[strawberry.ID] | None = None,
        model: strawberry.ID | None = None,
        workspace_id: strawberry.ID | None = None,
        filter: Annotated[
            LeadFilter | None,
            strawberry.argument(
                description="Score the leads matching this filter when the job runs (not "
                "with leadIds)"
            ),
        ] = None,
        priority: Annotated[
            JobPriority, strawberry.argument(description="Workers take HIGH jobs first, LOW last")
        ] = JobPriority.NORMAL,
    ) -> Job:
        scope = await info.context.scope(workspace_id)
        await info.context.services.limits.hit("batchScoring", info.context.client_key())
        if lead_ids is not None and len(lead_ids) > registry.MAX_SCORE_IDS:
            raise BadUserInput(
                "Invalid input", fields={"leadIds": f"at most {registry.MAX_SCORE_IDS} ids"}
            )
        ids = None if lead_ids is None else [parse_id(i, "leadIds") for i in lead_ids]
        model_id = None if model is None else parse_id(model, "model")
        lead_filter = None if filter is None else filter.to_model()
        async with info.context.db.transaction() as session:
            row = await registry.request_scoring(
                session, scope, ids, model_id, lead_filter, priority=priority
            )
        info.context.wake_workers()
        await info.context.publish(scope.workspace_id, "job", [row.id])
        return Job.from_row(row)

    @strawberry.mutation(description="ACTIVE promotes (the previous champion retires); audited")
    async def set_model_status(
        self,
        info: Info,
        id: strawberry.ID,
        status: ModelStatus,
        reason: str | None = None,
        workspace_id: strawberry.ID | None = None,
    ) -> MlModel:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.transaction() as session:
            row = await registry.set_status(session, scope, parse_id(id, "id"), status, reason)
        await info.context.publish(scope.workspace_id, "ml_model", [row.id])
        return MlModel.from_row(row)

    @strawberry.mutation(description="Delete a version; the ACTIVE one is refused")
    async def delete_model(
        self, info: Info, id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> strawberry.ID:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.transaction() as session:
            row = await registry.delete_model(session, scope, parse_id(id, "id"))
        await info.context.publish(scope.workspace_id, "ml_model", [row.id])
        return strawberry.ID(str(row.id))
