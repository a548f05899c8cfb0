"""The server's periodic ML check (every `ml_check_seconds`): monitored deployments first
(`deployment.check_rollbacks`: a champion showing an alert inside its rollback plan's
monitoring period is rolled back), then drift measurements that are due (`drift.check_due`:
each serving version at most hourly, where driftDetection is on), then automatic retraining
(`auto_retrain.check_all`).
Several server processes may run it: one pass runs at a time, and each decision re-checks
under a lock and is made once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from ml import auto_retrain, deployment, drift
from models.db import Database
from models.jobs import Job

log = logging.getLogger(__name__)

_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(hashtext('ml_check'))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtext('ml_check'))")

Changed = Callable[[list[Job], list[deployment.Deployment]], Awaitable[None]]


async def check(db: Database) -> tuple[list[Job], list[deployment.Deployment]]:
    """One pass, by one process at a time: the others skip theirs (a session advisory lock,
    held on a connection of its own for the pass)."""
    async with db.engine.connect() as holder:
        taken = (await holder.execute(_TRY_LOCK)).scalar_one()
        await holder.commit()
        if not taken:
            return [], []
        try:
            return await _steps(db)
        finally:
            await holder.execute(_UNLOCK)
            await holder.commit()


async def _steps(db: Database) -> tuple[list[Job], list[deployment.Deployment]]:
    """Each step; a step that fails is logged and the next one still runs."""
    rolled_back: list[deployment.Deployment] = []
    jobs: list[Job] = []
    try:
        rolled_back = await deployment.check_rollbacks(db)
    except Exception:
        log.exception("ML check: rollback plans failed")
    try:
        await drift.check_due(db)
    except Exception:
        log.exception("ML check: drift measurements failed")
    try:
        jobs = await auto_retrain.check_all(db)
    except Exception:
        log.exception("ML check: automatic retraining failed")
    return jobs, rolled_back


async def run_periodically(db: Database, every_seconds: float, changed: Changed) -> None:
    """`check` each `every_seconds` (the first after one interval) until cancelled; a failed
    check is logged and the next one runs as planned. `changed` hears of what it did."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            jobs, deployments = await check(db)
            if jobs or deployments:
                await changed(jobs, deployments)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ML check failed")
