"""Automatic retraining: what the ML config's `training.autoRetrain`, `retrainThreshold` and
`monitoring.driftDetection` / `alertThresholds.driftPsi` turn on (seed 003 mlConfig).

The server checks every workspace with a champion every `ml_check_seconds` (settings; 0:
never; ml/watch.py). With autoRetrain on, the champion gets a retrain (an `ml.retrain` job of
a new version, reason "auto: ...") when either rule holds:

- ACCURACY_DROP: on at least MIN_OUTCOMES leads it scored whose outcome became known since it
  went into service, its accuracy is below its test split's by more than retrainThreshold
  (the same numbers as `MlModel.performance`);
- DRIFT (driftDetection on): its newest drift measurement (`ml.drift.check_due`, run just
  before by the same check) has a feature PSI above alertThresholds.driftPsi.

At most one automatic retrain per champion (its job payload names it: `autoFor`), and none
while any retrain of the workspace is queued or running: a retrain that cannot beat the
champion must not start again every check. The new version is promoted as any retrain's is
(training.autoPromote and a higher test AUC). A workspace with too few outcomes to train gets
no job. Each queued job is audited (`ml_model.auto_retrain`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ml import drift, performance, registry
from ml.metrics import DEFAULT_THRESHOLD
from models.db import Database, utcnow
from models.errors import ModelTrainingFailed
from models.jobs import Job
from models.ml_models import MlConfig, MlModel, latest_check, load_config

log = logging.getLogger(__name__)

MIN_OUTCOMES = performance.TRUSTED_OUTCOMES

_BUSY = sa.text(
    """
SELECT EXISTS (
    SELECT 1 FROM job
    WHERE workspace_id = :ws AND kind = :kind
      AND (status IN ('QUEUED', 'RUNNING') OR payload->>'autoFor' = :champion)
)
"""
)
_WITH_CHAMPION = sa.text(
    "SELECT DISTINCT workspace_id FROM ml_model WHERE alias = 'champion' AND status = 'ACTIVE' "
    "ORDER BY 1"
)


@dataclass(frozen=True, slots=True)
class Trigger:
    rule: str  # ACCURACY_DROP or DRIFT
    value: float  # the drop, or the highest PSI
    threshold: float
    detail: str

    @property
    def reason(self) -> str:
        return f"auto: {self.detail}"


async def _busy(session: AsyncSession, workspace_id: int, champion: MlModel) -> bool:
    params = {"ws": workspace_id, "kind": registry.RETRAIN_KIND, "champion": str(champion.id)}
    return bool((await session.execute(_BUSY, params)).scalar_one())


async def _accuracy_drop(
    session: AsyncSession, champion: MlModel, config: MlConfig, now: datetime
) -> Trigger | None:
    assert champion.id is not None
    tested = registry.test_metric(champion, "accuracy")
    if tested is None:
        return None
    threshold = registry.test_metric(champion, "threshold")
    live = await performance.live_accuracy(
        session,
        champion.workspace_id,
        champion.id,
        since=champion.deployed_at or champion.trained_at or champion.created_at,
        until=now,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
    )
    if live.accuracy is None or live.outcomes < MIN_OUTCOMES:
        return None
    drop = tested - live.accuracy
    if drop <= config.retrain_threshold:
        return None
    return Trigger(
        "ACCURACY_DROP",
        drop,
        config.retrain_threshold,
        f"accuracy {live.accuracy:.1%} on {live.outcomes} new outcomes, {drop:.1%} below the "
        f"test split's {tested:.1%} (retrainThreshold {config.retrain_threshold:.1%})",
    )


async def _drift(session: AsyncSession, champion: MlModel, config: MlConfig) -> Trigger | None:
    assert champion.id is not None
    check = await latest_check(session, champion.workspace_id, champion.id)
    if check is None or check.max_psi is None or check.max_psi <= config.alert_drift_psi:
        return None
    return Trigger(
        "DRIFT",
        check.max_psi,
        config.alert_drift_psi,
        f"{check.feature} drifted (PSI {check.max_psi:.2f} over {drift.CHECK_WINDOW_DAYS} days, "
        f"driftPsi {config.alert_drift_psi:.2f})",
    )


async def check_workspace(
    db: Database, workspace_id: int, now: datetime | None = None
) -> Job | None:
    """Queue the champion's automatic retrain if a rule holds (see the module docstring)."""
    now = now or utcnow()
    async with db.session() as session:
        config = await load_config(session, workspace_id)
        champion = await registry.champion(session, workspace_id)
        if (
            not config.auto_retrain
            or champion is None
            or await _busy(session, workspace_id, champion)
        ):
            return None
        trigger = await _accuracy_drop(session, champion, config, now)
        if trigger is None and config.drift_detection:
            trigger = await _drift(session, champion, config)
    if trigger is None:
        return None
    async with db.transaction() as session:
        # one decision per workspace at a time (several server processes check)
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('ml_model'), :ws)"), {"ws": workspace_id}
        )
        if await _busy(session, workspace_id, champion):
            return None
        try:
            job = await registry.retrain_job(
                session,
                workspace_id,
                champion,
                reason=trigger.reason,
                overrides={},
                extra={"autoFor": str(champion.id), "rule": trigger.rule},
            )
        except ModelTrainingFailed as refused:
            log.info("auto-retrain of workspace %s skipped: %s", workspace_id, refused)
            return None
        details = {"rule": trigger.rule, "value": trigger.value, "threshold": trigger.threshold}
        registry._audit(
            session, champion, None, "ml_model.auto_retrain", {**details, "jobId": str(job.id)}
        )
    log.info(
        "auto-retrain of workspace %s queued (job %s): %s", workspace_id, job.id, trigger.detail
    )
    return job


async def check_all(db: Database) -> list[Job]:
    async with db.session() as session:
        workspaces = list((await session.execute(_WITH_CHAMPION)).scalars())
    queued = []
    for workspace_id in workspaces:  # one workspace's failure does not stop the others'
        try:
            job = await check_workspace(db, workspace_id)
        except Exception:
            log.exception("auto-retrain check of workspace %s failed", workspace_id)
            continue
        if job is not None:
            queued.append(job)
    return queued
