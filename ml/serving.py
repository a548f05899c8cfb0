"""Online scoring (`Lead.score`): the serving version of each lead, a score cache, the
prediction timeout, the fallback model, and write-behind of new scores to `lead_score`.

A lead's score is a pure function of (model version, the lead's data), and the lead's data
changes only with `updated_at` / `last_activity_at` (every edit and every recorded event bumps
them). So a score is looked up, in order:
1. the in-process LRU keyed (lead, model id, version, last change), honouring the workspace's
   `ml_config` cache settings (enabled, TTL, size);
2. the newest stored `lead_score` row of the serving version scored after the last change
   (batch jobs and earlier online misses write them; valid for every replica and restart);
3. else predicted online: the page's missing leads in ONE feature build and one predict per
   serving version (champion, and the challenger for its A/B share), off the event loop,
   within `ml_config.timeout_ms`.

The LRU's TTL bounds how long one process trusts an entry; a stored row needs none (its key
is exact). Known gap: a back-dated close of *another* lead of the same agent changes this
lead's agent record without touching it; such a score stays until the lead changes or a batch
job rescores it (a batch job also drops its leads from this process's LRU, so their newer
`scoredAt` shows).

Misses are persisted, but not by the read that made them: they queue in memory and the
server's flusher (every second, and at shutdown) appends them to `lead_score` in one INSERT
and moves the current scores (`lead_current_score`) in one UPDATE, so score history keeps
every online score (scoring trends read it) while a read never waits on a write. A queued
score lost in a crash is recomputed by the next read. Fallback scores
(ml_config.fallback_model_id, used when the serving version fails to load or predict) are
neither cached nor stored: the serving version is retried next time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from catboost import CatBoostClassifier  # type: ignore[import-untyped]
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ml import registry, scoring
from ml.monitoring import monitor_for
from ml.online_features import RawFeatures, feature_rows, raw_features
from ml.score_cache import CacheKey, OnlineScore, ScoreCache, cache_for, last_change, pending_for
from models.db import Database, utcnow
from models.errors import PredictionTimeout
from models.leads import Lead, LeadScore
from models.ml_models import MlConfig, MlModel

log = logging.getLogger("dashgraph.ml")


async def flush(db: Database) -> None:
    """Write queued online scores and prediction counters of `db`."""
    await pending_for(db).flush(db)
    await monitor_for(db).flush(db)


async def flush_periodically(db: Database, every_seconds: float = 1.0) -> None:
    """The server's flusher task: runs until cancelled (then the caller flushes once more)."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await flush(db)
        except Exception:
            log.exception("flushing online scores and prediction stats failed; retrying")


# ---- the online path --------------------------------------------------------------------------


def _predict(
    classifier: CatBoostClassifier, rows: list[tuple[int, list[Any]]]
) -> tuple[dict[int, float], float]:
    """Probabilities by lead id, and the milliseconds the predict took (in the thread)."""
    if not rows:
        return {}, 0.0
    started = time.perf_counter()
    probability = classifier.predict_proba([features for _, features in rows])[:, 1]
    elapsed = (time.perf_counter() - started) * 1000
    return {lead_id: float(p) for (lead_id, _), p in zip(rows, probability, strict=True)}, elapsed


async def _fallback_model(
    session: AsyncSession, workspace_id: int, config: MlConfig, failed: MlModel
) -> MlModel | None:
    if config.fallback_model_id is None or config.fallback_model_id == failed.id:
        return None
    query = (
        select(MlModel)
        .where(
            col(MlModel.workspace_id) == workspace_id,
            col(MlModel.id) == config.fallback_model_id,
        )
        .options(registry._WITHOUT_ARTIFACT)
    )
    return (await session.execute(query)).scalars().first()


_IDS = ARRAY(sa.BigInteger)


class StoredScore(NamedTuple):
    lead_id: int
    model_id: int | None
    model_version: str
    value: int
    probability: float
    confidence: float | None
    scored_at: datetime


# the newest stored score of each (lead, model): built once (building it per call cost as
# much as running it)
_STORED = (
    sa.select(
        col(LeadScore.lead_id),
        col(LeadScore.model_id),
        col(LeadScore.model_version),
        col(LeadScore.value),
        col(LeadScore.probability),
        col(LeadScore.confidence),
        col(LeadScore.scored_at),
    )
    .where(
        col(LeadScore.workspace_id) == sa.bindparam("ws"),
        col(LeadScore.lead_id) == sa.func.any(sa.bindparam("lead_ids", type_=_IDS)),
        col(LeadScore.model_id) == sa.func.any(sa.bindparam("model_ids", type_=_IDS)),
    )
    .order_by(
        col(LeadScore.lead_id),
        col(LeadScore.model_id),
        col(LeadScore.scored_at).desc(),
        col(LeadScore.id).desc(),
    )
    .ext(distinct_on(col(LeadScore.lead_id), col(LeadScore.model_id)))
)


async def stored_scores(
    session: AsyncSession, workspace_id: int, lead_ids: list[int], model_ids: list[int]
) -> dict[tuple[int, int], StoredScore]:
    """The newest stored score of each (lead, model) among `model_ids`: one statement, read
    as plain rows (ORM objects cost ~0.5 ms more on this hot path)."""
    params = {"ws": workspace_id, "lead_ids": lead_ids, "model_ids": model_ids}
    rows = [StoredScore(*row) for row in (await session.execute(_STORED, params)).all()]
    return {(row.lead_id, int(row.model_id or 0)): row for row in rows}


def _from_stored(row: StoredScore, model: MlModel, elapsed_ms: float) -> OnlineScore:
    assert model.id is not None
    return OnlineScore(
        lead_id=row.lead_id,
        model_id=model.id,
        model_version=row.model_version,
        value=row.value,
        probability=row.probability,
        confidence=float(row.confidence)
        if row.confidence is not None
        else abs(row.probability - 0.5) * 2,
        scored_at=row.scored_at,
        prediction_time_ms=elapsed_ms,
        cached=True,
    )


async def score_leads(
    db: Database, workspace_id: int, leads: Sequence[Lead], *, model: MlModel | None = None
) -> list[OnlineScore | None]:
    """The score of each lead (in order) by the version serving it, or by `model` (a trained
    version of the workspace, any status); None without a model. A score by a version that is
    not serving the lead is not stored: score history and current scores are the serving ones'.

    Raises PREDICTION_TIMEOUT when a predict exceeds `ml_config.timeout_ms`.
    """
    if not leads:
        return []
    # a fresh score is dated when its inputs were read, not when it was predicted: a lead
    # changed in between must not look older than its score
    as_of = utcnow()
    cache = cache_for(db)
    found: dict[int, OnlineScore] = {}
    async with db.session() as session:
        champ, challenger, config = await registry.serving_setup(session, workspace_id)
        if model is None and champ is None and challenger is None:
            return [None] * len(leads)
        routed: dict[int, MlModel] = {}
        keys: dict[int, CacheKey] = {}
        # leads `model` scores where it is not the version serving them: not persisted
        unserved: set[int] = set()
        for lead in leads:
            assert lead.id is not None
            serving = registry.route(lead.id, champ, challenger)
            chosen = serving if model is None else model
            if chosen is None or chosen.id is None:
                continue
            if serving is None or serving.id != chosen.id:
                unserved.add(lead.id)
            routed[lead.id] = chosen
            keys[lead.id] = (workspace_id, lead.id, chosen.id, chosen.version, last_change(lead))
        # 1. the process cache
        if config.cache_enabled:
            for lead_id, key in keys.items():
                started = time.perf_counter()
                hit = cache.get(key)
                if hit is not None:
                    elapsed = (time.perf_counter() - started) * 1000
                    found[lead_id] = _replace_timing(hit, elapsed)
        # 2. stored scores newer than the lead's last change
        wanted = [lead for lead in leads if lead.id in routed and lead.id not in found]
        if wanted:
            started = time.perf_counter()
            stored = await stored_scores(
                session,
                workspace_id,
                [lead.id for lead in wanted if lead.id is not None],
                sorted({m.id for m in routed.values() if m.id is not None}),
            )
            elapsed = (time.perf_counter() - started) * 1000
            for lead in wanted:
                assert lead.id is not None
                model = routed[lead.id]
                row = stored.get((lead.id, model.id or 0))
                if row is not None and row.scored_at > last_change(lead):
                    score = _from_stored(row, model, elapsed)
                    found[lead.id] = score
                    if config.cache_enabled:
                        _remember(cache, keys[lead.id], score, config)
        # 3. predict the rest online: inputs and models read here, the predict runs after the
        # connection went back to the pool (it may take up to the timeout)
        missing = [lead for lead in leads if lead.id in routed and lead.id not in found]
        if missing:
            raw = await raw_features(session, workspace_id, missing, as_of)
            plans = await _plans(db, session, workspace_id, missing, routed, config)
    if missing:
        found.update(
            await _predict_online(db, workspace_id, missing, raw, plans, config, as_of, unserved)
        )
    return [found.get(lead.id) if lead.id is not None else None for lead in leads]


def _replace_timing(score: OnlineScore, elapsed_ms: float) -> OnlineScore:
    return replace(score, prediction_time_ms=elapsed_ms, cached=True)


def _remember(cache: ScoreCache, key: CacheKey, score: OnlineScore, config: MlConfig) -> None:
    cache.put(key, score, ttl_seconds=config.cache_ttl_seconds, max_size=config.cache_max_size)


@dataclass(slots=True)
class _Plan:
    """Who predicts a group of leads: their serving version, or the fallback in its place."""

    serving: MlModel
    used: MlModel
    classifier: CatBoostClassifier
    lead_ids: list[int]
    fallback: bool = False


async def _fallback_plan(
    db: Database,
    session: AsyncSession,
    workspace_id: int,
    config: MlConfig,
    plan_of: MlModel,
    lead_ids: list[int],
    failure: BaseException,
) -> _Plan:
    """The fallback model for a serving version that failed; re-raises `failure` without one."""
    backup = await _fallback_model(session, workspace_id, config, plan_of)
    if backup is None or backup.id is None:
        raise failure
    classifier = await registry.load_classifier(db, workspace_id, backup.id, backup.version)
    return _Plan(plan_of, backup, classifier, lead_ids, fallback=True)


async def _plans(
    db: Database,
    session: AsyncSession,
    workspace_id: int,
    missing: list[Lead],
    routed: dict[int, MlModel],
    config: MlConfig,
) -> list[_Plan]:
    """One plan per serving version among the missing leads, its model loaded (or the
    fallback's, when it fails to load)."""
    groups: dict[int, tuple[MlModel, list[int]]] = {}
    for lead in missing:
        assert lead.id is not None
        model = routed[lead.id]
        groups.setdefault(model.id or 0, (model, []))[1].append(lead.id)
    monitor = monitor_for(db)
    plans: list[_Plan] = []
    for model, lead_ids in groups.values():
        assert model.id is not None
        try:
            classifier = await registry.load_classifier(db, workspace_id, model.id, model.version)
            plans.append(_Plan(model, model, classifier, lead_ids))
        except Exception as exc:
            log.exception("model %s v%s failed to load", model.id, model.version)
            monitor.record(workspace_id, model.id, rows=len(lead_ids), errors=len(lead_ids))
            plans.append(
                await _fallback_plan(db, session, workspace_id, config, model, lead_ids, exc)
            )
    return plans


async def _predict_online(
    db: Database,
    workspace_id: int,
    missing: list[Lead],
    raw: RawFeatures,
    plans: list[_Plan],
    config: MlConfig,
    as_of: datetime,
    unserved: set[int],
) -> dict[int, OnlineScore]:
    """One feature build for every missing lead, one predict per plan; a plan whose predict
    fails is tried once more with the fallback model. `unserved` leads' scores are not
    queued for `lead_score`."""
    changes = {lead.id: last_change(lead) for lead in missing if lead.id is not None}
    out: dict[int, OnlineScore] = {}
    retry: list[_Plan] = []
    outcomes = await _run_timed(db, workspace_id, raw, plans, config)
    for plan, outcome in zip(plans, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            _count_failure(db, workspace_id, plan)
            if plan.fallback:
                raise outcome
            log.error("model %s failed to predict: %r", plan.used.id, outcome)
            async with db.session() as session:
                retry.append(
                    await _fallback_plan(
                        db, session, workspace_id, config, plan.serving, plan.lead_ids, outcome
                    )
                )
        else:
            out.update(_finish(db, workspace_id, plan, *outcome, config, changes, as_of, unserved))
    if retry:
        outcomes = await _run_timed(db, workspace_id, raw, retry, config)
        for plan, outcome in zip(retry, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _count_failure(db, workspace_id, plan)
                raise outcome
            out.update(_finish(db, workspace_id, plan, *outcome, config, changes, as_of, unserved))
    return out


def _count_failure(db: Database, workspace_id: int, plan: _Plan) -> None:
    rows = len(plan.lead_ids)
    monitor_for(db).record(workspace_id, plan.used.id or 0, rows=rows, errors=rows)


def _finish(
    db: Database,
    workspace_id: int,
    plan: _Plan,
    probabilities: dict[int, float],
    elapsed_ms: float,
    config: MlConfig,
    changes: dict[int, datetime],
    as_of: datetime,
    unserved: set[int],
) -> dict[int, OnlineScore]:
    """Count the predict, then cache and queue (for `lead_score`) what the serving version said."""
    used = plan.used
    assert used.id is not None
    monitor_for(db).record(workspace_id, used.id, rows=len(probabilities), latency_ms=elapsed_ms)
    scores = _scores(probabilities, used, elapsed_ms, at=as_of, fallback=plan.fallback)
    if not plan.fallback:
        pending_for(db).add(workspace_id, [s for s in scores if s.lead_id not in unserved])
        if config.cache_enabled:
            cache = cache_for(db)
            for s in scores:
                key = (workspace_id, s.lead_id, used.id, used.version, changes[s.lead_id])
                _remember(cache, key, s, config)
    return {s.lead_id: s for s in scores}


_Outcome = tuple[dict[int, float], float] | BaseException


async def _run_timed(
    db: Database, workspace_id: int, raw: RawFeatures, plans: list[_Plan], config: MlConfig
) -> list[_Outcome]:
    """In one thread: the feature build, then each plan's predict; bounded by `timeout_ms`
    (PREDICTION_TIMEOUT). Each plan's milliseconds cover the build and its own predict."""

    def work() -> list[_Outcome]:
        started = time.perf_counter()
        rows = feature_rows(raw)
        built = (time.perf_counter() - started) * 1000
        outcomes: list[_Outcome] = []
        for plan in plans:
            try:
                wanted = set(plan.lead_ids)
                subset = [row for row in rows if row[0] in wanted]
                probabilities, predicted = _predict(plan.classifier, subset)
                outcomes.append((probabilities, built + predicted))
            except Exception as exc:  # the caller falls back, or raises it
                outcomes.append(exc)
        return outcomes

    try:
        return await asyncio.wait_for(asyncio.to_thread(work), max(config.timeout_ms, 0) / 1000)
    except TimeoutError:
        monitor = monitor_for(db)
        for plan in plans:
            rows = len(plan.lead_ids)
            monitor.record(workspace_id, plan.used.id or 0, rows=rows, errors=rows, timeouts=rows)
        raise PredictionTimeout(
            "ML prediction timed out",
            timeoutMs=config.timeout_ms,
            modelId=str(plans[0].used.id) if plans else None,
        ) from None


def _scores(
    probabilities: dict[int, float],
    model: MlModel,
    elapsed_ms: float,
    *,
    at: datetime,
    fallback: bool,
) -> list[OnlineScore]:
    assert model.id is not None
    ids = list(probabilities)
    p = np.array([probabilities[i] for i in ids], dtype=np.float64)
    values = scoring.score_value(p)
    confidence = scoring.confidence_of(p)
    return [
        OnlineScore(
            lead_id=lead_id,
            model_id=model.id,
            model_version=str(model.version),
            value=int(values[i]),
            probability=float(p[i]),
            confidence=float(confidence[i]),
            scored_at=at,
            prediction_time_ms=elapsed_ms,
            cached=False,
            fallback=fallback,
        )
        for i, lead_id in enumerate(ids)
    ]
