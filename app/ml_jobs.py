"""Retraining: the `ml.retrain` job and the shared train -> register -> promote pipeline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from app.jobs import JobCancelled, JobRun
from app.pubsub import ChangeEvent
from ml import registry
from ml.features import feature_frame
from ml.train import Progress, TrainParams, train
from models.db import Database

# (fraction 0..1, stage) -> awaited between the pipeline's steps
Stage = Callable[[float, str], Awaitable[None]]

TRAINING_SHARE = (0.1, 0.85)  # the part of the progress bar the boosting iterations fill
REPORT_EVERY = 0.25  # seconds between progress reports from the training thread


def public_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {
        "accuracy": metrics["accuracy"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "f1Score": metrics["f1_score"],
        "auc": metrics["auc"],
    }


async def train_and_register(
    db: Database,
    workspace_id: int,
    params: TrainParams,
    *,
    stage: Stage,
    iteration: Progress,
    name: str = registry.MODEL_NAME,
    reason: str | None = None,
    job_id: int | None = None,
) -> dict[str, Any] | None:
    """Train on the workspace's labelled leads, register a CANDIDATE, promote it if it beats
    the champion. None when `iteration` stopped the training (nothing is registered then)."""
    await stage(0.0, "features")
    frame = await feature_frame(db, workspace_id, labelled_only=True)
    await stage(TRAINING_SHARE[0], "training")
    stop = threading.Event()

    def guarded(done: int, total: int, best: float | None) -> bool:
        return not stop.is_set() and iteration(done, total, best)

    try:
        result = await asyncio.to_thread(train, frame, params, progress=guarded)
    except asyncio.CancelledError:
        stop.set()  # the thread outlives a cancelled await: tell it to stop at its next tree
        raise
    if result.cancelled:
        return None
    await stage(0.9, "evaluating")
    await stage(0.95, "registering")
    async with db.transaction() as session:
        model, _ = await registry.register(
            session, workspace_id, result, name=name, reason=reason, job_id=job_id
        )
        incumbent = await registry.champion(session, workspace_id)
        promoted = model.status == "ACTIVE"
        if not promoted and registry.beats(model, incumbent):
            await registry.promote(session, model, reason="retrained: beats the champion")
            promoted = True
    return {
        "modelId": str(model.id),
        "name": model.name,
        "version": model.version,
        "metrics": public_metrics(result.metrics["test"]),
        "promoted": promoted,
    }


class _ThreadProgress:
    """Runs in the training thread: reports to the job now and then, without waiting on it,
    and says stop once a report came back cancelled (or the lease was lost)."""

    def __init__(self, run: JobRun, loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self.loop = loop
        self.pending: Future[None] | None = None
        self.last = 0.0

    def __call__(self, done: int, total: int, best: float | None) -> bool:
        if self.run.cancel_requested or self.run.lease_lost:
            return False
        if self.pending is not None and self.pending.done():
            if self.pending.exception() is not None:
                return False  # JobCancelled: a cancel was requested
            self.pending = None
        now = time.monotonic()
        if self.pending is None and now - self.last >= REPORT_EVERY:
            self.last = now
            low, high = TRAINING_SHARE
            fraction = low + (high - low) * min(done + 1, total) / total
            self.pending = asyncio.run_coroutine_threadsafe(
                self.run.progress(fraction, "training"), self.loop
            )
        return True


async def retrain(run: JobRun) -> dict[str, Any]:
    """`ml.retrain` job: payload from `registry.request_retrain`."""
    job = run.job
    payload = job.payload
    result = await train_and_register(
        run.worker.db,
        job.workspace_id,
        registry.payload_params(payload),
        stage=run.progress,
        iteration=_ThreadProgress(run, asyncio.get_running_loop()),
        name=payload.get("name") or registry.MODEL_NAME,
        reason=payload.get("reason"),
        job_id=job.id,
    )
    if result is None:
        raise JobCancelled()
    if run.worker.pubsub is not None:
        await run.worker.pubsub.publish(
            ChangeEvent(job.workspace_id, "ml_model", [result["modelId"]])
        )
    return result
