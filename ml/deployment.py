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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ml.registry import (
    _WITHOUT_ARTIFACT,
    MAX_REASON,
    _audit,
    _change,
    get_model,
    promote,
    require_admin,
)
from models.db import utcnow
from models.errors import Validator
from models.ml_models import CHALLENGER, CHAMPION, MlModel, ModelStatus
from models.scope import Scope

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
    found = _DURATION.fullmatch(duration)
    hours = None if found is None else float(found[1]) * _UNIT_HOURS[found[2]]
    return AbTest(traffic_percent, hours, "abTest.duration")


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


def _end_challenger(session: AsyncSession, challenger: MlModel, actor_id: int, reason: str) -> None:
    now = utcnow()
    before = challenger.status
    challenger.status, challenger.alias = ModelStatus.RETIRED, None
    if challenger.ab_ends_at is None or challenger.ab_ends_at > now:
        challenger.ab_ends_at = now
    session.add(challenger)
    _audit(session, challenger, actor_id, "ml_model.status", _change(before, "RETIRED", reason))


def _validate(ab_test: AbTest | None, rollback_to: int | None, reason: str | None) -> None:
    v = Validator()
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
) -> Deployment:
    """Deploy, A/B test or roll back (see the module docstring); ADMIN only."""
    require_admin(scope)
    _validate(ab_test, rollback_to, reason)
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
        champ, challenger = model, None
    await session.flush()
    return Deployment(
        champion=champ,
        challenger=challenger,
        changed=sorted({m.id for m in changed if m.id is not None}),
    )
