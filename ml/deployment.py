"""Deploying registry versions: the `champion` alias, an A/B test with a `challenger`, rollback.

Like MLflow's registry: versions never change, aliases move. Rules (one transaction each,
validated before any change, every change audited):

- deploy `id` (no A/B test): `id` becomes the champion (ACTIVE), the previous champion
  RETIRED (kept, so it can be rolled back to), and any A/B test ends. Deploying the running
  challenger this way promotes it: that is how an A/B test is won.
- deploy `id` with an A/B test: `id` becomes the challenger, ACTIVE with alias `challenger`
  (so deleteModel refuses it like the champion), serving `trafficPercent` % of leads
  (`ab_bucket(lead_id) < trafficPercent`, see `registry.route`) until `ab_ends_at`; the
  champion keeps the rest. A previous challenger is retired.
- rollback (`id` is the champion or the challenger, `rollbackTo` another version): the
  champion alias moves to `rollbackTo`, the version rolled back is RETIRED, and any A/B test
  ends. An ended challenger is RETIRED with `ab_ends_at` set to when it ended.
- validation results (seed 003 `validationResults`): minimums the test-split metrics of the
  version that will serve (`id`, or `rollbackTo`) must meet, or the deployment is refused
  naming each metric short of its minimum.
- a rollback plan (deploy as champion only; seed 003 `rollbackPlan`): the version to fall back
  to (default: the champion replaced) and a monitoring period. Until it ends, the server's ML
  check (ml/watch.py, `check_rollbacks`) rolls the champion back at once when its
  `MlModel.performance` since deployment shows an accuracy drop (on TRUSTED_OUTCOMES outcomes
  or more) or a latency increase (not drift: the previous version would see the same data);
  audited as `ml_model.rollback` with `automatic`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ml import performance, registry
from ml.metrics import DEFAULT_THRESHOLD
from ml.performance import Alert
from ml.registry import (
    _WITHOUT_ARTIFACT,
    MAX_REASON,
    _audit,
    _change,
    get_model,
    promote,
    require_admin,
)
from models.db import Database, utcnow
from models.errors import Validator
from models.ml_models import CHALLENGER, CHAMPION, MlModel, ModelStatus, load_config
from models.scope import Scope

log = logging.getLogger(__name__)

MAX_AB_HOURS = 24 * 90  # an A/B test runs at most a quarter


# the seed's form of a test's length: a number and a unit ("7d", "24h", "90m")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0}


@dataclass(frozen=True, slots=True)
class AbTest:
    traffic_percent: int  # 1..99: the challenger's share of leads
    # None: `duration` could not be read
    duration_hours: float | None
    # the input field it came from, named by a refusal
    duration_field: str = "abTest.durationHours"


def hours_of(duration: str) -> float | None:
    """Hours of a length in the seed's form ("7d", "24h", "90m"); None if unreadable."""
    found = _DURATION.fullmatch(duration)
    return None if found is None else float(found[1]) * _UNIT_HOURS[found[2]]


def ab_test(traffic_percent: int, duration: str | None, duration_hours: float | None) -> AbTest:
    """An A/B test from `duration` ("7d") or `duration_hours` (exactly one; else BAD_USER_INPUT
    on abTest.duration)."""
    v = Validator()
    v.check(
        (duration is None) != (duration_hours is None),
        "abTest.duration",
        'give duration ("7d", "24h", "90m") or durationHours, not both',
    )
    v.raise_if_any("Invalid deployment")
    if duration is None:
        return AbTest(traffic_percent, duration_hours)
    return AbTest(traffic_percent, hours_of(duration), "abTest.duration")


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    previous_model: int | None  # None: the champion the deployment replaces
    monitoring_period: str  # "24h"


# validationResults' metrics -> the test split's keys (registry.test_metric)
VALIDATION_METRICS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1Score": "f1_score",
    "auc": "auc",
}


@dataclass(slots=True)
class Deployment:
    champion: MlModel | None
    challenger: MlModel | None
    # versions whose status or alias changed (for the "ml_model" change event)
    changed: list[int] = field(default_factory=list)


async def _alias_holders(
    session: AsyncSession, workspace_id: int
) -> tuple[MlModel | None, MlModel | None]:
    """(champion, challenger) by alias, locked; the challenger even after its test ran out."""
    rows = list(
        (
            await session.execute(
                select(MlModel)
                .where(
                    col(MlModel.workspace_id) == workspace_id,
                    col(MlModel.alias).in_([CHAMPION, CHALLENGER]),
                )
                .options(_WITHOUT_ARTIFACT)
                .order_by(col(MlModel.id).desc())
                .with_for_update()
            )
        ).scalars()
    )
    champ = next((m for m in rows if m.alias == CHAMPION and m.status == ModelStatus.ACTIVE), None)
    challenger = next((m for m in rows if m.alias == CHALLENGER), None)
    return champ, challenger


def _end_challenger(
    session: AsyncSession, challenger: MlModel, actor_id: int | None, reason: str
) -> None:
    now = utcnow()
    before = challenger.status
    challenger.status, challenger.alias = ModelStatus.RETIRED, None
    if challenger.ab_ends_at is None or challenger.ab_ends_at > now:
        challenger.ab_ends_at = now
    session.add(challenger)
    _audit(session, challenger, actor_id, "ml_model.status", _change(before, "RETIRED", reason))


def _validate(
    ab_test: AbTest | None,
    rollback_to: int | None,
    reason: str | None,
    required: Mapping[str, float],
    plan: RollbackPlan | None,
) -> None:
    v = Validator()
    for metric, minimum in required.items():
        v.check(metric in VALIDATION_METRICS, f"validationResults.{metric}", "unknown metric")
        v.check(0 <= minimum <= 1, f"validationResults.{metric}", "between 0 and 1")
    if plan is not None:
        v.check(
            ab_test is None and rollback_to is None,
            "rollbackPlan",
            "only when deploying as champion (not with abTest or rollbackTo)",
        )
        hours = hours_of(plan.monitoring_period)
        v.check(
            hours is not None and 0 < hours <= MAX_AB_HOURS,
            "rollbackPlan.monitoringPeriod",
            f'a number and m, h or d ("24h"); at most {MAX_AB_HOURS} hours (90d)',
        )
    if ab_test is not None:
        v.check(1 <= ab_test.traffic_percent <= 99, "abTest.trafficPercent", "between 1 and 99")
        hours = ab_test.duration_hours
        v.check(
            hours is not None and 0 < hours <= MAX_AB_HOURS,
            ab_test.duration_field,
            f"a number and m, h or d; above 0 and at most {MAX_AB_HOURS} hours (90d)",
        )
        v.check(rollback_to is None, "rollbackTo", "not together with abTest")
    v.check(reason is None or len(reason) <= MAX_REASON, "reason", f"at most {MAX_REASON} chars")
    v.raise_if_any("Invalid deployment")


async def deploy(
    session: AsyncSession,
    scope: Scope,
    model_id: int,
    *,
    ab_test: AbTest | None = None,
    rollback_to: int | None = None,
    reason: str | None = None,
    required: Mapping[str, float] | None = None,
    rollback_plan: RollbackPlan | None = None,
) -> Deployment:
    """Deploy, A/B test or roll back (see the module docstring); ADMIN only."""
    require_admin(scope)
    required = required or {}
    _validate(ab_test, rollback_to, reason, required, rollback_plan)
    model = await get_model(session, scope, model_id, for_update=True)
    target = None if rollback_to is None else await get_model(session, scope, rollback_to)
    champ, challenger = await _alias_holders(session, scope.workspace_id)
    deployed = {m.id for m in (champ, challenger) if m is not None}
    v = Validator()
    if target is not None:
        v.check(model.id in deployed, "id", "neither the champion nor the challenger")
        v.check(target.id != model.id, "rollbackTo", "the version being rolled back")
        v.check(target.status != ModelStatus.TRAINING, "rollbackTo", "still TRAINING")
    else:
        v.check(model.status != ModelStatus.TRAINING, "id", "still TRAINING")
    if ab_test is not None:
        v.check(champ is not None, "id", "no champion to test against: deploy without abTest")
        v.check(champ is None or champ.id != model.id, "id", "is the champion")
    serving = target if target is not None else model  # the version the minimums are for
    for metric, minimum in required.items():
        measured = registry.test_metric(serving, VALIDATION_METRICS[metric])
        v.check(
            measured is not None and measured >= minimum,
            f"validationResults.{metric}",
            f"the version's test {metric} is "
            f"{'not measured' if measured is None else format(measured, '.4f')}, "
            f"below {minimum}",
        )
    fallback: MlModel | None = None
    if rollback_plan is not None:
        if rollback_plan.previous_model is not None:
            fallback = await get_model(session, scope, rollback_plan.previous_model)
        else:
            fallback = champ if champ is not None and champ.id != model.id else None
        v.check(fallback is not None, "rollbackPlan.previousModel", "no champion to fall back to")
        v.check(
            fallback is None or fallback.id != model.id,
            "rollbackPlan.previousModel",
            "the version being deployed",
        )
        v.check(
            fallback is None or fallback.status != ModelStatus.TRAINING,
            "rollbackPlan.previousModel",
            "still TRAINING",
        )
    v.raise_if_any("Invalid deployment")

    actor = scope.user_id
    changed: list[MlModel] = []
    if target is not None:
        why = reason or f"rollback from v{model.version}"
        if challenger is not None:
            _end_challenger(session, challenger, actor, why)
            changed.append(challenger)
        if champ is None or champ.id != target.id:
            await promote(session, target, actor_id=actor, reason=why)
            changed += [m for m in (champ, target) if m is not None]
        champ, challenger = target, None
        _audit(session, target, actor, "ml_model.rollback", {"from": str(model.id)})
    elif ab_test is not None:
        assert champ is not None
        if challenger is not None and challenger.id != model.id:
            _end_challenger(session, challenger, actor, reason or "replaced by another challenger")
            changed.append(challenger)
        now = utcnow()
        before = model.status
        model.status, model.alias = ModelStatus.ACTIVE, CHALLENGER
        model.traffic_percent = ab_test.traffic_percent
        model.deployed_at = now
        assert ab_test.duration_hours is not None  # validated
        model.ab_ends_at = now + timedelta(hours=ab_test.duration_hours)
        session.add(model)
        details: dict[str, Any] = {
            **_change(before, "ACTIVE", reason),
            "alias": CHALLENGER,
            "trafficPercent": ab_test.traffic_percent,
            "abEndsAt": model.ab_ends_at.isoformat(),
            "champion": str(champ.id),
        }
        _audit(session, model, actor, "ml_model.ab_test", details)
        changed.append(model)
        challenger = model
    else:
        why = reason or "deployed"
        if challenger is not None and challenger.id != model.id:
            _end_challenger(session, challenger, actor, why)
            changed.append(challenger)
        if challenger is not None and challenger.id == model.id:
            # the test is won: the challenger takes the alias and all traffic from now
            model.ab_ends_at = min(model.ab_ends_at or utcnow(), utcnow())
        if champ is None or champ.id != model.id:
            await promote(session, model, actor_id=actor, reason=why)
            changed += [m for m in (champ, model) if m is not None]
        if rollback_plan is not None:
            assert fallback is not None and fallback.id is not None  # validated
            hours = hours_of(rollback_plan.monitoring_period)
            assert hours is not None
            model.rollback_to_id = fallback.id
            model.monitor_until = utcnow() + timedelta(hours=hours)
            session.add(model)
            plan = {
                "previousModel": str(fallback.id),
                "monitorUntil": model.monitor_until.isoformat(),
            }
            _audit(session, model, actor, "ml_model.rollback_plan", plan)
        champ, challenger = model, None
    await session.flush()
    return Deployment(
        champion=champ,
        challenger=challenger,
        changed=sorted({m.id for m in changed if m.id is not None}),
    )


# ---- the rollback plans' watch (ml/watch.py runs it) ---------------------------------------------


async def _plan_alert(session: AsyncSession, model: MlModel, now: datetime) -> Alert | None:
    """The first alert of the champion's performance since it was deployed, if any."""
    assert model.id is not None and model.deployed_at is not None
    config = await load_config(session, model.workspace_id)
    threshold = registry.test_metric(model, "threshold")
    found = await performance.model_performance(
        session,
        model.workspace_id,
        model.id,
        since=model.deployed_at,
        until=now,
        accuracy_since=model.deployed_at,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        test_accuracy=registry.test_metric(model, "accuracy"),
        config=config,
    )
    trusted = found.evaluated_count >= performance.TRUSTED_OUTCOMES
    # drift is the data's, not the version's: the previous one would see the same leads
    return next(
        (
            a
            for a in found.alerts
            if a.kind == "LATENCY_INCREASE" or (a.kind == "ACCURACY_DROP" and trusted)
        ),
        None,
    )


async def check_rollbacks(db: Database, now: datetime | None = None) -> list[Deployment]:
    """Roll back each monitored champion whose performance since deployment shows an alert;
    the deployments made (for change events)."""
    now = now or utcnow()
    async with db.session() as session:
        watched = list(
            (
                await session.execute(
                    select(MlModel)
                    .where(
                        col(MlModel.alias) == CHAMPION,
                        col(MlModel.status) == ModelStatus.ACTIVE,
                        col(MlModel.monitor_until) > now,
                        col(MlModel.rollback_to_id).is_not(None),
                    )
                    .options(_WITHOUT_ARTIFACT)
                )
            ).scalars()
        )
        alerts = [(m, await _plan_alert(session, m, now)) for m in watched]
    done = []
    for model, alert in alerts:
        if alert is None:
            continue
        async with db.transaction() as session:
            rolled = await _roll_back(session, model, alert, now)
        if rolled is not None:
            done.append(rolled)
    return done


async def _roll_back(
    session: AsyncSession, model: MlModel, alert: Alert, now: datetime
) -> Deployment | None:
    champ, challenger = await _alias_holders(session, model.workspace_id)
    if champ is None or champ.id != model.id or champ.monitor_until is None:
        return None  # deployed over, or rolled back, since it was read
    if champ.monitor_until <= now or champ.rollback_to_id is None:
        return None
    target = (
        await session.execute(
            select(MlModel)
            .where(
                col(MlModel.workspace_id) == model.workspace_id,
                col(MlModel.id) == champ.rollback_to_id,
            )
            .options(_WITHOUT_ARTIFACT)
        )
    ).scalar_one_or_none()
    if target is None:
        log.warning("rollback plan of model %s names a deleted version", model.id)
        champ.monitor_until = None
        session.add(champ)
        return None
    why = f"automatic rollback: {alert.message}"
    changed = [champ, target]
    if challenger is not None:
        _end_challenger(session, challenger, None, why)
        changed.append(challenger)
    champ.monitor_until = None
    await promote(session, target, actor_id=None, reason=why)
    details = {"from": str(champ.id), "automatic": True, "alert": alert.kind, "value": alert.value}
    _audit(session, target, None, "ml_model.rollback", details)
    await session.flush()
    return Deployment(
        champion=target, challenger=None, changed=sorted(m.id for m in changed if m.id)
    )
