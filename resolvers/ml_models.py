"""ML models: the registry's types, `models` / `model`, retraining and status mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry.scalars import JSON

from ml import registry
from models.errors import BadUserInput
from models.ml_models import MlModel as MlModelRow
from models.ml_models import ModelStatus
from resolvers.context import Info
from resolvers.ids import parse_id
from resolvers.jobs import Job


@strawberry.type(description="Classification metrics on one split (the newest leads: test)")
class ModelMetrics:
    accuracy: float
    precision: float
    recall: float
    f1_score: float
    auc: float | None = strawberry.field(description="null when the split has only one class")

    @classmethod
    def from_split(cls, split: dict[str, Any]) -> Self:
        auc = split.get("auc")
        return cls(
            accuracy=float(split["accuracy"]),
            precision=float(split["precision"]),
            recall=float(split["recall"]),
            f1_score=float(split["f1_score"]),
            auc=None if auc is None or auc != auc else float(auc),
        )


@strawberry.type
class FeatureImportance:
    feature: str
    importance: float = strawberry.field(description="CatBoost's share, summing to 100")


@strawberry.type
class MlModel:
    id: strawberry.ID
    name: str
    version: int
    status: ModelStatus
    algorithm: str
    alias: str | None = strawberry.field(description="`champion` on the active version")
    metrics: ModelMetrics | None = strawberry.field(description="On the test split")
    training_samples: int | None
    hyperparameters: JSON
    created_at: datetime
    trained_at: datetime | None
    importance: strawberry.Private[dict[str, float]]

    @strawberry.field(description="Global importance per feature, largest first")
    def feature_importance(self) -> list[FeatureImportance]:
        ranked = sorted(self.importance.items(), key=lambda item: (-item[1], item[0]))
        return [FeatureImportance(feature=name, importance=value) for name, value in ranked]

    @classmethod
    def from_row(cls, row: MlModelRow) -> Self:
        test = row.metrics.get("test")
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            version=row.version,
            status=ModelStatus(row.status),
            algorithm=row.algorithm,
            alias=row.alias,
            metrics=ModelMetrics.from_split(test) if test else None,
            training_samples=row.training_samples,
            hyperparameters=JSON({k: v for k, v in row.hyperparameters.items() if k != "reason"}),
            created_at=row.created_at,
            trained_at=row.trained_at,
            importance={k: float(v) for k, v in row.feature_importance.items()},
        )


@strawberry.input
class RetrainInput:
    reason: str | None = None
    iterations: int | None = None
    depth: int | None = None
    learning_rate: float | None = None
    validation_split: float | None = strawberry.field(
        default=None, description="Share held out for validation, and again for test"
    )


@strawberry.type
class MlQueries:
    @strawberry.field(description="The workspace's model versions, newest first")
    async def models(
        self,
        info: Info,
        status: ModelStatus | None = None,
        workspace_id: strawberry.ID | None = None,
    ) -> list[MlModel]:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.session() as session:
            rows = await registry.list_models(session, scope, status)
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
            "validationSplit": given.validation_split,
        }
        model_id = None if id is None else parse_id(id, "id")
        async with info.context.db.transaction() as session:
            row = await registry.request_retrain(
                session, scope, model_id, reason=given.reason, overrides=overrides
            )
        info.context.wake_workers()
        await info.context.publish(scope.workspace_id, "job", [row.id])
        return Job.from_row(row)

    @strawberry.mutation(
        description="Score leads (at most 10,000 ids; null: all the viewer may see) with `model` "
        "(null: the champion) as a job; its result sums up the run"
    )
    async def score_leads(
        self,
        info: Info,
        lead_ids: list[strawberry.ID] | None = None,
        model: strawberry.ID | None = None,
        workspace_id: strawberry.ID | None = None,
    ) -> Job:
        scope = await info.context.scope(workspace_id)
        if lead_ids is not None and len(lead_ids) > registry.MAX_SCORE_IDS:
            raise BadUserInput(
                "Invalid input", fields={"leadIds": f"at most {registry.MAX_SCORE_IDS} ids"}
            )
        ids = None if lead_ids is None else [parse_id(i, "leadIds") for i in lead_ids]
        model_id = None if model is None else parse_id(model, "model")
        async with info.context.db.transaction() as session:
            row = await registry.request_scoring(session, scope, ids, model_id)
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
