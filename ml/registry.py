"""The model registry: immutable trained versions, their status, and the `champion` alias.

Like MLflow's: a version never changes once registered (artifact, metrics, parameters);
status and aliases do. One champion per workspace: ACTIVE with alias `champion`; at most one
challenger, ACTIVE with alias `challenger`, during an A/B test (see ml/deployment.py).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from catboost import CatBoostClassifier  # type: ignore[import-untyped]
from catboost import __version__ as catboost_version
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlmodel import col, select

from ml import scoring
from ml.features import ALL_LEADS, DataSource
from ml.train import TrainParams, TrainResult, check_training_data
from models import jobs
from models.audit import AuditLog
from models.db import Database, utcnow
from models.errors import BadUserInput, Forbidden, ModelNotFound, NotFound, Validator
from models.leads import Lead, LeadFilter
from models.ml_models import (
    CHALLENGER,
    CHAMPION,
    MlConfig,
    MlModel,
    ModelStatus,
    ModelType,
    ab_bucket,
    load_config,
)
from models.scope import Scope
from models.workspaces import Role

MODEL_NAME = "lead-conversion"
FRAMEWORK = f"catboost {catboost_version}"  # every version: CatBoost only (createModel)
RETRAIN_KIND = "ml.retrain"
SCORE_KIND = "ml.score"
# ids one scoreLeads request may name (null scores all the viewer may see)
MAX_SCORE_IDS = 10_000
MAX_REASON = 500
# lists and status changes never need the ~2 MB cbm bytes
_WITHOUT_ARTIFACT = defer(cast(Any, MlModel.artifact))


def require_admin(scope: Scope) -> None:
    if not scope.is_admin:
        raise Forbidden("Only workspace admins manage models")


async def list_models(
    session: AsyncSession,
    scope: Scope,
    status: ModelStatus | None = None,
    model_type: ModelType | None = None,
) -> list[MlModel]:
    """The workspace's versions, newest first, without their artifacts (~2 MB each)."""
    query = (
        select(MlModel)
        .where(scope.where(MlModel))
        .options(_WITHOUT_ARTIFACT)
        .order_by(col(MlModel.created_at).desc(), col(MlModel.id).desc())
    )
    if status is not None:
        query = query.where(col(MlModel.status) == status)
    if model_type is not None:
        query = query.where(col(MlModel.type) == model_type)
    return list((await session.execute(query)).scalars())


async def get_model(
    session: AsyncSession, scope: Scope, model_id: int, *, for_update: bool = False
) -> MlModel:
    query = (
        select(MlModel)
        .where(scope.where(MlModel), col(MlModel.id) == model_id)
        .options(_WITHOUT_ARTIFACT)
    )
    if for_update:
        query = query.with_for_update()
    found = (await session.execute(query)).scalars().first()
    if found is None:
        raise ModelNotFound("Model not found", modelId=str(model_id))
    return found


async def champion(session: AsyncSession, workspace_id: int) -> MlModel | None:
    query = (
        select(MlModel)
        .where(
            col(MlModel.workspace_id) == workspace_id,
            col(MlModel.status) == ModelStatus.ACTIVE,
            col(MlModel.alias) == CHAMPION,
        )
        .options(_WITHOUT_ARTIFACT)
        .order_by(col(MlModel.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def serving_models(
    session: AsyncSession, workspace_id: int, *, now: datetime | None = None
) -> tuple[MlModel | None, MlModel | None]:
    """(champion, challenger) of a workspace; the challenger only while its A/B test runs
    (a traffic share is set and its end, if any, is still ahead)."""
    query = (
        select(MlModel)
        .where(
            col(MlModel.workspace_id) == workspace_id,
            col(MlModel.alias).in_([CHAMPION, CHALLENGER]),
        )
        .options(_WITHOUT_ARTIFACT)
        .order_by(col(MlModel.id).desc())
    )
    rows = list((await session.execute(query)).scalars())
    return _serving(rows, now)


# what `serving_setup` reads of a version
_SERVED = ("id", "name", "version", "status", "alias", "traffic_percent", "ab_ends_at")


@functools.cache
def _serving_setup_query() -> sa.Select[Any]:
    """Built once: building and keying this select per call cost as much as running it."""
    config_table = cast(Any, MlConfig).__table__
    model_table = cast(Any, MlModel).__table__
    anchor = sa.select(sa.bindparam("ws", type_=sa.Integer).label("ws")).subquery("w")
    return (
        sa.select(
            *config_table.columns,
            *(model_table.c[name].label(f"model_{name}") for name in _SERVED),
        )
        .select_from(anchor)
        .outerjoin(config_table, config_table.c.workspace_id == anchor.c.ws)
        .outerjoin(
            model_table,
            sa.and_(
                model_table.c.workspace_id == anchor.c.ws,
                model_table.c.alias.in_([CHAMPION, CHALLENGER]),
            ),
        )
        .order_by(model_table.c.id.desc())
    )


async def serving_setup(
    session: AsyncSession, workspace_id: int, *, now: datetime | None = None
) -> tuple[MlModel | None, MlModel | None, MlConfig]:
    """`serving_models` and the workspace's ML config (defaults without a row) in one
    statement, read as plain rows: online scoring asks on every request, where loading ORM
    objects cost ~0.7 ms more. The versions returned carry what serving uses (id, name,
    version, status, alias, traffic share, A/B end) and nothing else: do not save them."""
    rows = (await session.execute(_serving_setup_query(), {"ws": workspace_id})).mappings().all()
    if rows and rows[0]["workspace_id"] is not None:
        columns = cast(Any, MlConfig).__table__.columns
        config = MlConfig(**{column.name: rows[0][column.name] for column in columns})
    else:
        config = MlConfig(workspace_id=workspace_id)
    models = [
        MlModel(workspace_id=workspace_id, **{name: row[f"model_{name}"] for name in _SERVED})
        for row in rows
        if row["model_id"] is not None
    ]
    champ, challenger = _serving(models, now)
    return champ, challenger, config


def _serving(rows: list[MlModel], now: datetime | None) -> tuple[MlModel | None, MlModel | None]:
    champ = next((m for m in rows if m.alias == CHAMPION and m.status == ModelStatus.ACTIVE), None)
    at = now or utcnow()
    challenger = next(
        (
            m
            for m in rows
            if m.alias == CHALLENGER
            and m.traffic_percent
            and (m.ab_ends_at is None or m.ab_ends_at > at)
        ),
        None,
    )
    return champ, challenger


def route(lead_id: int, champ: MlModel | None, challenger: MlModel | None) -> MlModel | None:
    """The version that scores `lead_id`: the challenger for its traffic share of leads
    (deterministic: `ab_bucket(lead_id) < traffic_percent`), the champion for the rest."""
    if challenger is not None and ab_bucket(lead_id) < (challenger.traffic_percent or 0):
        return challenger
    return champ


async def register(
    session: AsyncSession,
    workspace_id: int,
    result: TrainResult,
    *,
    name: str = MODEL_NAME,
    reason: str | None = None,
    job_id: int | None = None,
    trained_at: datetime | None = None,
    description: str | None = None,
    model_type: str = ModelType.SCORING,
) -> tuple[MlModel, bool]:
    """A new CANDIDATE version of `name`; (version, created). A job's version is made once."""
    # one registration per workspace at a time: the next version number is then free
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext('ml_model'), :ws)"), {"ws": workspace_id}
    )
    if job_id is not None:
        existing = (
            (
                await session.execute(
                    select(MlModel).where(
                        col(MlModel.workspace_id) == workspace_id, col(MlModel.job_id) == job_id
                    )
                )
            )
            .scalars()
            .first()
        )
        if existing is not None:
            return existing, False
    latest = (
        await session.execute(
            select(sa.func.max(MlModel.version)).where(
                col(MlModel.workspace_id) == workspace_id, col(MlModel.name) == name
            )
        )
    ).scalar_one()
    model = MlModel(
        workspace_id=workspace_id,
        name=name,
        version=(latest or 0) + 1,
        status=ModelStatus.CANDIDATE,
        type=model_type,
        description=description,
        metrics=result.metrics,
        hyperparameters={
            **result.params,
            "bestIteration": result.best_iteration,
            "iterationsRun": result.iterations_run,
            **({"reason": reason} if reason else {}),
        },
        feature_importance=result.feature_importance,
        training_samples=sum(part["rows"] for part in result.sizes.values()),
        training_sizes=result.sizes,
        artifact=result.model_bytes,
        job_id=job_id,
        trained_at=trained_at or utcnow(),
    )
    session.add(model)
    await session.flush()
    _audit(session, model, None, "ml_model.registered", {"version": model.version})
    return model, True


async def load_classifier(
    db: Database, workspace_id: int, model_id: int, version: int
) -> CatBoostClassifier:
    """A version's model, parsed once per process (`scoring.load_cached`, in a thread): the
    ~2 MB cbm bytes are read only on a cache miss."""
    key = (db.url, model_id, version)
    found = scoring.cached_model(key)
    if found is not None:
        return found
    async with db.session() as session:
        blob = (
            await session.execute(
                select(MlModel.artifact).where(
                    col(MlModel.workspace_id) == workspace_id, col(MlModel.id) == model_id
                )
            )
        ).scalar_one_or_none()
    if not blob:
        raise ModelNotFound("Model has no artifact", modelId=str(model_id))
    return await asyncio.to_thread(scoring.load_cached, key, bytes(blob))


def test_metric(model: MlModel, key: str) -> float | None:
    """A metric of the version's test split (`auc`, `accuracy`, `threshold`, ...); None when
    not measured."""
    value = model.metrics.get("test", {}).get(key)
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def test_auc(model: MlModel) -> float | None:
    return test_metric(model, "auc")


def beats(candidate: MlModel, incumbent: MlModel | None) -> bool:
    """Promotion rule: no champion yet, or a higher AUC on the (newest) test split."""
    if incumbent is None:
        return True
    # None also for NaN: a test split with one class says nothing
    new, old = test_auc(candidate), test_auc(incumbent)
    if new is None:
        return False
    return old is None or new > old


async def promote(
    session: AsyncSession, model: MlModel, *, actor_id: int | None = None, reason: str | None = None
) -> None:
    """Make `model` the champion; the previous champion retires. The caller's transaction.
    Either one's rollback plan ends (a deployment with a plan sets it after this)."""
    previous = await champion(session, model.workspace_id)
    if previous is not None and previous.id != model.id:
        previous.status, previous.alias = ModelStatus.RETIRED, None
        previous.monitor_until = None
        session.add(previous)
        _audit(session, previous, actor_id, "ml_model.status", _change("ACTIVE", "RETIRED", reason))
        await session.flush()  # free the alias before it moves
    before = model.status
    model.status, model.alias, model.deployed_at = ModelStatus.ACTIVE, CHAMPION, utcnow()
    model.rollback_to_id = model.monitor_until = None
    session.add(model)
    _audit(session, model, actor_id, "ml_model.status", _change(before, "ACTIVE", reason))
    await session.flush()


async def set_status(
    session: AsyncSession, scope: Scope, model_id: int, status: ModelStatus, reason: str | None
) -> MlModel:
    """An admin moves a version between CANDIDATE, ACTIVE (promote) and RETIRED; audited."""
    require_admin(scope)
    v = Validator()
    v.check(status != ModelStatus.TRAINING, "status", "TRAINING is set by training only")
    v.check(reason is None or len(reason) <= MAX_REASON, "reason", f"at most {MAX_REASON} chars")
    v.raise_if_any("Invalid status change")
    model = await get_model(session, scope, model_id, for_update=True)
    if model.status == status:
        return model
    if status == ModelStatus.ACTIVE:
        await promote(session, model, actor_id=scope.user_id, reason=reason)
        return model
    before = model.status
    model.status = status
    # a demoted champion leaves the workspace without one; a demoted challenger ends its test
    model.alias = None
    session.add(model)
    _audit(session, model, scope.user_id, "ml_model.status", _change(before, status, reason))
    await session.flush()
    return model


async def delete_model(session: AsyncSession, scope: Scope, model_id: int) -> MlModel:
    """Delete a version; the active one is refused (promote another or retire it first)."""
    require_admin(scope)
    model = await get_model(session, scope, model_id, for_update=True)
    if model.status == ModelStatus.ACTIVE:
        raise BadUserInput(
            "The active model cannot be deleted: promote another version or retire it first",
            fields={"id": "model is ACTIVE"},
        )
    _audit(session, model, scope.user_id, "ml_model.deleted", {"version": model.version})
    await session.delete(model)
    await session.flush()
    return model


def retrain_params(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> TrainParams:
    """Parameters of a retrain: the base version's, then the request's; validated."""
    merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    defaults = TrainParams()
    params = TrainParams(
        iterations=int(merged.get("iterations", defaults.iterations)),
        depth=int(merged.get("depth", defaults.depth)),
        learning_rate=float(merged.get("learningRate", defaults.learning_rate)),
        l2_leaf_reg=float(merged.get("l2LeafReg", defaults.l2_leaf_reg)),
        validation_split=float(merged.get("validationSplit", defaults.validation_split)),
        tuning=bool(merged.get("hyperparameterTuning", defaults.tuning)),
        early_stopping_rounds=None
        if merged.get("earlyStoppingRounds") is None
        else int(merged["earlyStoppingRounds"]),
    )
    params.validate()
    return params


def params_payload(params: TrainParams) -> dict[str, Any]:
    return params.payload()


def payload_params(payload: Mapping[str, Any]) -> TrainParams:
    return retrain_params({}, payload.get("params", {}))


# what a retrain inherits from its base version (tuning is asked for each time)
_INHERITED = ("iterations", "depth", "learningRate", "l2LeafReg", "earlyStoppingRounds")


async def request_retrain(
    session: AsyncSession,
    scope: Scope,
    model_id: int | None,
    *,
    reason: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    priority: jobs.JobPriority = jobs.JobPriority.NORMAL,
    source: DataSource = ALL_LEADS,
) -> jobs.Job:
    """Validate, then queue an `ml.retrain` job: a new version of `model_id` (default: the
    champion's name), starting from its parameters with `overrides` on top; the validation
    split defaults to the ML config's. It learns from `source`'s labelled leads (not
    inherited: a retrain without one learns from all of them)."""
    require_admin(scope)
    source.validate()
    if reason is not None and len(reason) > MAX_REASON:
        raise BadUserInput("Invalid input", fields={"reason": f"at most {MAX_REASON} chars"})
    base: MlModel | None
    if model_id is not None:
        base = await get_model(session, scope, model_id)
    else:
        base = await champion(session, scope.workspace_id)
    return await retrain_job(
        session,
        scope.workspace_id,
        base,
        reason=reason,
        overrides=overrides or {},
        priority=priority,
        source=source,
        created_by=scope.user_id,
    )


async def retrain_job(
    session: AsyncSession,
    workspace_id: int,
    base: MlModel | None,
    *,
    reason: str | None,
    overrides: Mapping[str, Any],
    priority: jobs.JobPriority = jobs.JobPriority.NORMAL,
    source: DataSource = ALL_LEADS,
    created_by: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> jobs.Job:
    """Queue the `ml.retrain` job of a new version of `base` (the caller checked who asks):
    its parameters with `overrides` on top, the ML config's validation split by default;
    MODEL_TRAINING_FAILED at once when `source` has too few outcomes. `extra` joins the
    payload."""
    config = await load_config(session, workspace_id)
    inherited = {k: v for k, v in (base.hyperparameters if base else {}).items() if k in _INHERITED}
    params = retrain_params({**inherited, "validationSplit": config.validation_split}, overrides)
    await check_training_data(session, workspace_id, source)
    payload = {
        "name": base.name if base else MODEL_NAME,
        "type": base.type if base else ModelType.SCORING,
        "description": base.description if base else None,
        "baseModelId": str(base.id) if base else None,
        "reason": reason,
        "priority": str(priority),
        "params": params_payload(params),
        "dataSource": source.payload(),
        **(extra or {}),
    }
    return await jobs.enqueue_in(
        session,
        workspace_id,
        RETRAIN_KIND,
        payload,
        created_by=created_by,
        max_attempts=2,
        priority=priority,
    )


async def request_create(
    session: AsyncSession,
    scope: Scope,
    *,
    name: str,
    description: str | None,
    model_type: ModelType,
    algorithm: str,
    hyperparameters: Mapping[str, Any],
    source: DataSource = ALL_LEADS,
) -> jobs.Job:
    """Validate, then queue the training of version 1 of a new model `name` (an `ml.retrain`
    job). Only CatBoost is supported; the name must be new in the workspace (also among
    trainings still queued or running)."""
    require_admin(scope)
    name = name.strip()
    v = Validator()
    v.check(1 <= len(name) <= 120, "name", "1 to 120 characters")
    v.check(description is None or len(description) <= 500, "description", "at most 500 chars")
    v.check(algorithm.strip().lower() == "catboost", "algorithm", "only `catboost` is supported")
    v.raise_if_any("Invalid model")
    source.validate()
    config = await load_config(session, scope.workspace_id)
    params = retrain_params({"validationSplit": config.validation_split}, hyperparameters)
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext('ml_model'), :ws)"),
        {"ws": scope.workspace_id},
    )
    taken = (
        await session.execute(
            select(sa.func.count())
            .select_from(MlModel)
            .where(scope.where(MlModel), col(MlModel.name) == name)
        )
    ).scalar_one()
    queued = (
        await session.execute(
            select(sa.func.count())
            .select_from(jobs.Job)
            .where(
                scope.where(jobs.Job),
                col(jobs.Job.kind) == RETRAIN_KIND,
                col(jobs.Job.status).in_([jobs.JobStatus.QUEUED, jobs.JobStatus.RUNNING]),
                jobs.Job.payload["name"].astext == name,
            )
        )
    ).scalar_one()
    if taken or queued:
        raise BadUserInput("A model of that name exists", fields={"name": "already used"})
    await check_training_data(session, scope.workspace_id, source)
    payload = {
        "name": name,
        "type": str(model_type),
        "description": description,
        "baseModelId": None,
        "reason": "created",
        "create": True,
        "params": params_payload(params),
        "dataSource": source.payload(),
    }
    job = await jobs.enqueue(session, scope, RETRAIN_KIND, payload, max_attempts=2)
    session.add(
        AuditLog(
            workspace_id=scope.workspace_id,
            actor_id=scope.user_id,
            action="ml_model.created",
            target_type="ml_model",
            target_id=None,
            details={"name": name, "jobId": str(job.id), "params": payload["params"]},
        )
    )
    return job


async def request_scoring(
    session: AsyncSession,
    scope: Scope,
    lead_ids: Sequence[int] | None,
    model_id: int | None,
    lead_filter: LeadFilter | None = None,
    priority: jobs.JobPriority = jobs.JobPriority.NORMAL,
) -> jobs.Job:
    """Validate, then queue an `ml.score` job (workers take higher priorities first). ADMIN
    and USER may score; a USER only the leads they can see (named ids are checked through the
    scope; a filter, or neither ids nor filter, means the matching leads of theirs when the
    job runs). Named ids: at most the ML config's `max_batch_size`."""
    if scope.role not in (Role.ADMIN, Role.USER):
        raise Forbidden("Only admins and users score leads")
    if lead_ids is not None and lead_filter is not None:
        raise BadUserInput(
            "Give leadIds or filter, not both",
            fields={"leadIds": "not with filter", "filter": "not with leadIds"},
        )
    if lead_filter is not None:
        lead_filter.validate()
    ids: list[int] | None = None
    if lead_ids is not None:
        ids = list(dict.fromkeys(lead_ids))
        limit = min(MAX_SCORE_IDS, (await load_config(session, scope.workspace_id)).max_batch_size)
        if not ids or len(ids) > limit:
            raise BadUserInput(
                "Invalid input",
                fields={"leadIds": f"between 1 and {limit} ids (ML config maxBatchSize)"},
                maxBatchSize=limit,
            )
        visible = set(
            (
                await session.execute(
                    select(col(Lead.id)).where(scope.leads(Lead), col(Lead.id).in_(ids))
                )
            ).scalars()
        )
        missing = [str(i) for i in ids if i not in visible]
        if missing:
            raise NotFound("Leads not found", leadIds=missing)
    if model_id is not None:
        await get_model(session, scope, model_id)
    elif await champion(session, scope.workspace_id) is None:
        raise ModelNotFound("No active model to score with: train one first")
    payload = {
        "leadIds": None if ids is None else [str(i) for i in ids],
        "modelId": None if model_id is None else str(model_id),
        # null ids from a USER: only the leads they own
        "ownerId": str(scope.user_id) if ids is None and not scope.is_admin else None,
        **({"filter": scoring.filter_payload(lead_filter)} if lead_filter is not None else {}),
    }
    return await jobs.enqueue(
        session, scope, SCORE_KIND, payload, max_attempts=2, priority=priority
    )


def _change(before: str, after: str, reason: str | None) -> dict[str, Any]:
    return {"from": str(before), "to": str(after), **({"reason": reason} if reason else {})}


def _audit(
    session: AsyncSession,
    model: MlModel,
    actor_id: int | None,
    action: str,
    details: dict[str, Any],
) -> None:
    session.add(
        AuditLog(
            workspace_id=model.workspace_id,
            actor_id=actor_id,
            action=action,
            target_type="ml_model",
            target_id=str(model.id),
            details={"name": model.name, **details},
        )
    )
