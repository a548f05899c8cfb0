"""Retraining: the `ml.retrain` job and the shared train -> register -> promote pipeline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import polars as pl
from sqlmodel import col, select

from app.jobs import JobCancelled, JobRun
from app.pubsub import ChangeEvent
from ml import drift, monitoring, registry, score_cache, scoring
from ml.features import ALL_LEADS, DataSource, feature_frame
from ml.train import PROGRESS_METRIC, Progress, TrainingProgress, TrainParams, train
from models import leads
from models.db import Database, utcnow
from models.errors import ModelNotFound
from models.jobs import Job
from models.ml_models import MlModel, ModelType, load_config

# (fraction 0..1, stage) -> awaited between the pipeline's steps
Stage = Callable[[float, str], Awaitable[None]]

TRAINING_SHARE = (0.1, 0.85)  # the part of the progress bar the boosting iterations fill
REPORT_EVERY = 0.25  # seconds between progress reports from the training thread
SCORE_BATCH = 50_000  # leads per predict and write (the features are read in one go)
WRITERS = 2  # chunks written concurrently by a scoring job
MAX_RESULTS = 1000  # a scoring job of at most this many named leads lists each one's score
FEATURES_SHARE = 0.3  # the part of a scoring job's progress bar the feature read fills
MAX_EVENT_IDS = 500  # more scored leads than this: one "lead_score" event with ids [] ("many")


def public_metrics(metrics: dict[str, float | None]) -> dict[str, float | None]:
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
    description: str | None = None,
    model_type: str = ModelType.SCORING,
    source: DataSource = ALL_LEADS,
) -> dict[str, Any] | None:
    """Train on the workspace's labelled leads, register a CANDIDATE, promote it if the ML
    config allows auto-promotion and it beats the champion (or there is none). None when
    `iteration` stopped the training (nothing is registered then). Training longer than the
    config's maxTrainingTimeMs fails with MODEL_TRAINING_FAILED, registering nothing."""
    async with db.session() as session:
        config = await load_config(session, workspace_id)
    auto_promote = config.auto_promote
    params = replace(params, max_seconds=config.max_training_time_ms / 1000)
    await stage(0.0, "features")
    frame = await feature_frame(db, workspace_id, labelled_only=True, source=source)
    await stage(TRAINING_SHARE[0], "training")
    stop = threading.Event()

    def guarded(report: TrainingProgress) -> bool:
        return not stop.is_set() and iteration(report)

    try:
        result = await asyncio.to_thread(train, frame, params, progress=guarded)
    except asyncio.CancelledError:
        stop.set()  # the thread outlives a cancelled await: tell it to stop at its next tree
        raise
    if result.cancelled:
        return None
    await stage(0.9, "evaluating")
    # the training data's feature distribution, for drift checks of this version
    reference = await asyncio.to_thread(drift.build_reference, frame)
    await stage(0.95, "registering")
    async with db.transaction() as session:
        model, _ = await registry.register(
            session,
            workspace_id,
            result,
            name=name,
            reason=reason,
            job_id=job_id,
            description=description,
            model_type=model_type,
        )
        if not model.reference:
            model.reference = reference
            session.add(model)
        if source.payload() is not None:  # the leads it learned from, with its split sizes
            model.training_sizes = {**model.training_sizes, "dataSource": source.payload()}
            session.add(model)
        incumbent = await registry.champion(session, workspace_id)
        promoted = model.status == "ACTIVE"
        score_job: Job | None = None
        if not promoted and auto_promote and registry.beats(model, incumbent):
            await registry.promote(session, model, reason="retrained: beats the champion")
            promoted = True
            # the new champion scores every lead, so Lead.score fills in
            score_job = Job(
                workspace_id=workspace_id,
                kind=registry.SCORE_KIND,
                payload={"leadIds": None, "modelId": str(model.id), "ownerId": None},
                max_attempts=2,
            )
            session.add(score_job)
            await session.flush()
    return {
        "modelId": str(model.id),
        "name": model.name,
        "version": model.version,
        "metrics": public_metrics(result.metrics["test"]),
        # the decision threshold (chosen on validation) and top-decile lift on the test split
        "threshold": result.metrics["test"]["threshold"],
        "liftTopDecile": result.metrics["test"]["lift_top_decile"],
        # the parameters trained with (tuning's pick); the trials are on the version
        "hyperparameters": {k: v for k, v in result.params.items() if k != "tuning"},
        "promoted": promoted,
        "autoPromote": auto_promote,
        **({"scoreJobId": str(score_job.id)} if score_job is not None else {}),
    }


class _ThreadProgress:
    """Runs in the training thread: reports to the job now and then, without waiting on it,
    and says stop once a report came back cancelled (or the lease was lost)."""

    def __init__(self, run: JobRun, loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self.loop = loop
        self.pending: Future[None] | None = None
        self.last = 0.0

    def __call__(self, report: TrainingProgress) -> bool:
        if self.run.cancel_requested or self.run.lease_lost:
            return False
        if self.pending is not None and self.pending.done():
            if self.pending.exception() is not None:
                return False  # JobCancelled: a cancel was requested
            self.pending = None
        now = time.monotonic()
        if self.pending is None and now - self.last >= REPORT_EVERY:
            self.last = now
            self.pending = asyncio.run_coroutine_threadsafe(
                self.run.progress(training_fraction(report), report.stage, details(report)),
                self.loop,
            )
        return True


def training_fraction(report: TrainingProgress) -> float:
    low, high = TRAINING_SHARE
    return low + (high - low) * min(report.done, report.total) / report.total


def details(report: TrainingProgress) -> dict[str, Any]:
    """A training report as `Job.details` shows it."""
    return {
        "metric": f"validation {PROGRESS_METRIC}",
        "current": report.metric,
        "best": report.best,
        "iteration": report.done,
        "iterations": report.total,
        "etaSeconds": None if report.eta_seconds is None else round(report.eta_seconds, 1),
        **(
            {"candidate": report.candidate, "candidates": report.candidates}
            if report.candidates
            else {}
        ),
    }


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
        description=payload.get("description"),
        model_type=payload.get("type") or ModelType.SCORING,
        source=DataSource.from_payload(payload.get("dataSource")),
    )
    if result is None:
        raise JobCancelled()
    if "scoreJobId" in result:
        run.worker.wake()
    if run.worker.pubsub is not None:
        await run.worker.pubsub.publish(
            ChangeEvent(job.workspace_id, "ml_model", [result["modelId"]])
        )
        if "scoreJobId" in result:
            await run.worker.pubsub.publish(
                ChangeEvent(job.workspace_id, "job", [result["scoreJobId"]])
            )
    return result


async def _scoring_model(db: Database, workspace_id: int, model_id: int | None) -> MlModel:
    """The requested version, else the champion, without its artifact; MODEL_NOT_FOUND."""
    async with db.session() as session:
        if model_id is None:
            model = await registry.champion(session, workspace_id)
        else:
            model = (
                (
                    await session.execute(
                        select(MlModel)
                        .where(col(MlModel.workspace_id) == workspace_id, MlModel.id == model_id)
                        .options(registry._WITHOUT_ARTIFACT)
                    )
                )
                .scalars()
                .first()
            )
    if model is None:
        raise ModelNotFound("Model not found", modelId=None if model_id is None else str(model_id))
    return model


async def _lead_ids(db: Database, workspace_id: int, payload: dict[str, Any]) -> list[int] | None:
    """The leads a job scores; None for all of the workspace's."""
    if payload.get("leadIds") is not None:
        return [int(i) for i in payload["leadIds"]]
    if payload.get("ownerId") is None and payload.get("filter") is None:
        return None
    lead_filter = (
        None if payload.get("filter") is None else scoring.payload_filter(payload["filter"])
    )
    scored = lead_filter is not None and lead_filter.on_score
    query = leads.leads_query(col(leads.Lead.id), scored=scored).where(
        col(leads.Lead.workspace_id) == workspace_id
    )
    if payload.get("ownerId") is not None:
        query = query.where(col(leads.Lead.owner_id) == int(payload["ownerId"]))
    if lead_filter is not None:
        # the filter as the leads are when the job runs (like the list it came from)
        query = query.where(*lead_filter.clauses())
    async with db.session() as session:
        rows = (await session.execute(query.order_by(col(leads.Lead.id)))).scalars()
        return [int(i) for i in rows if i is not None]


async def score(run: JobRun) -> dict[str, Any]:
    """`ml.score` job: payload from `registry.request_scoring` (or a promotion)."""
    job = run.job
    db = run.worker.db
    workspace_id = job.workspace_id
    raw_model = job.payload.get("modelId")
    model = await _scoring_model(db, workspace_id, None if raw_model is None else int(raw_model))
    ids = await _lead_ids(db, workspace_id, job.payload)
    pubsub = run.worker.pubsub

    async def scored(lead_ids: list[int]) -> None:
        if pubsub is not None:
            event_ids = [str(i) for i in lead_ids] if len(lead_ids) <= MAX_EVENT_IDS else []
            # more than MAX_EVENT_IDS: ids [] ("many"), subscribers recompute
            await pubsub.publish(ChangeEvent(workspace_id, "lead_score", event_ids))

    summary = await score_leads(db, model, ids, progress=run.progress, scored=scored)
    await monitoring.monitor_for(db).flush(db)  # a `dashgraph worker` process has no flusher
    return summary


async def score_leads(
    db: Database,
    model: MlModel,
    lead_ids: list[int] | None,
    *,
    progress: Stage,
    scored: Callable[[list[int]], Awaitable[None]],
) -> dict[str, Any]:
    """Score the workspace's leads (`lead_ids`, or all) with `model`: one bulk feature read
    (COPY), then chunks of SCORE_BATCH predicted in a thread while the previous chunk is
    written (COPY into lead_score + each lead's CurrentScore, a transaction per chunk).
    `scored(ids)` follows each written chunk. Returns the job's result summary, with each
    lead's score (`results`, seed 003) when at most MAX_RESULTS leads were asked for."""
    assert model.id is not None
    workspace_id, model_id = model.workspace_id, model.id
    classifier = await registry.load_classifier(db, workspace_id, model_id, model.version)
    monitor = monitoring.monitor_for(db)
    await progress(0.0, "features")
    # dated when the inputs were read: a lead changed while the job runs must not look older
    # than its score (Lead.score trusts a stored score newer than the lead's last change)
    read_at = utcnow()
    frame = await feature_frame(db, workspace_id, lead_ids=lead_ids)
    total = frame.height if lead_ids is None else len(lead_ids)
    successful, value_sum, confidence_sum = 0, 0.0, 0.0
    per_lead: dict[int, tuple[int, float]] | None = (
        {} if lead_ids is not None and len(lead_ids) <= MAX_RESULTS else None
    )
    await progress(FEATURES_SHARE, "scoring")

    def predict(chunk: pl.DataFrame) -> tuple[pl.DataFrame, float]:
        started = time.perf_counter()
        out = scoring.score_frame(classifier, chunk)
        return out, (time.perf_counter() - started) * 1000

    async def write(chunk: pl.DataFrame) -> None:
        async with db.transaction() as session:
            await leads.store_scores(
                session,
                workspace_id,
                model_id,
                str(model.version),
                chunk["lead_id"].to_list(),
                chunk["value"].to_list(),
                chunk["probability"].to_list(),
                chunk["confidence"].to_list(),
                scored_at=read_at,
            )
        ids = chunk["lead_id"].to_list()
        # this process's cached online scores of these leads would hide the new rows
        score_cache.cache_for(db).forget(workspace_id, ids)
        await scored(ids)

    chunks = list(frame.iter_slices(SCORE_BATCH))
    pending: asyncio.Future[tuple[pl.DataFrame, float]] | None = None
    writing: set[asyncio.Task[None]] = set()
    if chunks:
        pending = asyncio.ensure_future(asyncio.to_thread(predict, chunks[0]))
    try:
        for index in range(len(chunks)):
            assert pending is not None
            result, elapsed_ms = await pending
            # one monitoring record per chunk: its rows, the chunk's predict time
            monitor.record(workspace_id, model_id, rows=result.height, latency_ms=elapsed_ms)
            if index + 1 < len(chunks):
                pending = asyncio.ensure_future(asyncio.to_thread(predict, chunks[index + 1]))
            if result.height:
                # chunks are disjoint: WRITERS of them are written at once (one connection
                # each), so Postgres works on both cores
                while len(writing) >= WRITERS:
                    done, writing = await asyncio.wait(writing, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                writing.add(asyncio.create_task(write(result)))
                successful += result.height
                value_sum += float(result["value"].sum())
                confidence_sum += float(result["confidence"].sum())
                if per_lead is not None:
                    per_lead.update(
                        (lead, (value, confidence))
                        for lead, value, confidence in result.select(
                            "lead_id", "value", "confidence"
                        ).iter_rows()
                    )
            done_share = (index + 1) / len(chunks)
            await progress(FEATURES_SHARE + (1 - FEATURES_SHARE) * done_share, "scoring")
        await asyncio.gather(*writing)
    finally:
        for task in writing:
            task.cancel()
    listed = {}
    if per_lead is not None and lead_ids is not None:
        listed["results"] = _results(lead_ids, per_lead)
    return {
        "total": total,
        "successful": successful,
        # leads gone (deleted) or not yet created at scoring time
        "failed": total - successful,
        "averageScore": value_sum / successful if successful else None,
        "averageConfidence": confidence_sum / successful if successful else None,
        "modelId": str(model_id),
        "modelVersion": model.version,
        **listed,
    }


def _results(lead_ids: list[int], scores: dict[int, tuple[int, float]]) -> list[dict[str, Any]]:
    """Each asked lead's score, in the order asked; a lead gone by the time the job ran has
    `error` LEAD_NOT_FOUND."""
    out = []
    for lead_id in lead_ids:
        found = scores.get(lead_id)
        out.append(
            {
                "leadId": str(lead_id),
                "score": None if found is None else found[0],
                "confidence": None if found is None else found[1],
                "error": "LEAD_NOT_FOUND" if found is None else None,
            }
        )
    return out
