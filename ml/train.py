"""CatBoost training on a labelled feature frame: time-ordered splits, metrics, model bytes.

Pure and synchronous (callers run it in a thread: `fit` releases the GIL); progress (current
and best validation AUC, ETA) and cancel arrive through one callback instead of the job
machinery. Metrics per split are measured at the validation split's best-F1 threshold
(see ml/metrics.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa
from catboost import CatBoostClassifier, Pool  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from ml.features import ALL_LEADS, CATEGORICAL, FEATURES, LABEL_AGE, DataSource

# `auc` is re-exported: other modules took it from here before ml/metrics.py existed
from ml.metrics import auc as auc
from ml.metrics import best_f1_threshold, classification_metrics
from models.errors import ModelTrainingFailed, Validator

MIN_SAMPLES = 1_000
MIN_CONVERSIONS = 120
# the per-iteration metric reported while training (on the validation split; higher is better)
PROGRESS_METRIC = "AUC"
# hyperparameter tuning: depth and learning rate around the requested ones (see tuning_grid)
TUNING_DEPTH_STEPS = (-2, 0, 2)
TUNING_RATE_FACTORS = (0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """One report from the training thread (after each boosting iteration)."""

    done: int  # iterations done in this run (every tuning candidate counts its own)
    total: int
    stage: str  # "tuning" while candidates are compared, else "training"
    metric: float | None  # validation AUC after this iteration
    best: float | None  # best validation AUC of the run so far
    eta_seconds: float | None  # remaining time at the run's pace so far
    candidate: int | None = None  # 1-based tuning candidate, when tuning
    candidates: int | None = None


# a report -> keep going? (False stops the training: a cancel)
Progress = Callable[[TrainingProgress], bool]


@dataclass(frozen=True, slots=True)
class TrainParams:
    iterations: int = 300
    depth: int = 6
    learning_rate: float = 0.1
    l2_leaf_reg: float = 3.0
    # share of the labelled leads held out for validation, and again for test (the newest)
    validation_split: float = 0.2
    random_seed: int = 7
    # compare a small grid of depth x learning rate on the validation split first
    tuning: bool = False
    # stop and fail a training running longer than this (ml_config.max_training_time_ms)
    max_seconds: float | None = None
    # stop once the validation loss has not improved for this many iterations (the seed's
    # trainingConfig.earlyStopping / patience); None: run every iteration
    early_stopping_rounds: int | None = None

    def validate(self) -> None:
        v = Validator()
        v.check(10 <= self.iterations <= 5000, "iterations", "between 10 and 5000")
        v.check(1 <= self.depth <= 10, "depth", "between 1 and 10")
        v.check(0 < self.learning_rate <= 1, "learningRate", "above 0 and at most 1")
        v.check(0 <= self.l2_leaf_reg <= 100, "l2LeafReg", "between 0 and 100")
        v.check(0.05 <= self.validation_split <= 0.4, "validationSplit", "between 0.05 and 0.4")
        v.check(
            self.early_stopping_rounds is None or 1 <= self.early_stopping_rounds <= 1000,
            "earlyStoppingRounds",
            "between 1 and 1000",
        )
        v.raise_if_any("Invalid training parameters")

    def payload(self) -> dict[str, Any]:
        """The parameters as clients name them (hyperparameters JSON, job payloads)."""
        return {
            "iterations": self.iterations,
            "depth": self.depth,
            "learningRate": self.learning_rate,
            "l2LeafReg": self.l2_leaf_reg,
            "validationSplit": self.validation_split,
            "hyperparameterTuning": self.tuning,
            "earlyStoppingRounds": self.early_stopping_rounds,
        }


@dataclass(slots=True)
class TrainResult:
    model_bytes: bytes
    # split name (train, validation, test) -> metric name -> value (None: not measurable)
    metrics: dict[str, dict[str, float | None]]
    feature_importance: dict[str, float]
    # rows and conversions per split
    sizes: dict[str, dict[str, int]]
    best_iteration: int | None
    iterations_run: int
    cancelled: bool = False
    params: dict[str, Any] = field(default_factory=dict)


class _Run:
    """Progress of one `train` call over all its fits: totals, best metric, ETA, stop reason."""

    def __init__(
        self, progress: Progress, total: int, max_seconds: float | None, candidates: int | None
    ) -> None:
        self.progress = progress
        self.total = total
        self.candidates = candidates
        self.started = time.monotonic()
        self.deadline = None if max_seconds is None else self.started + max_seconds
        self.done_before = 0  # iterations of the fits already finished
        self.best: float | None = None
        self.stopped: str | None = None  # "cancelled" or "timeout"

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)

    def report(self, done: int, metric: float | None, candidate: int | None) -> bool:
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            self.stopped = "timeout"
            return False
        if metric is not None and (self.best is None or metric > self.best):
            self.best = metric
        elapsed = now - self.started
        eta = elapsed / done * (self.total - done) if done else None
        report = TrainingProgress(
            done=done,
            total=self.total,
            stage="tuning" if self.candidates else "training",
            metric=metric,
            best=self.best,
            eta_seconds=eta,
            candidate=candidate,
            candidates=self.candidates,
        )
        if not self.progress(report):
            self.stopped = "cancelled"
            return False
        return True


class _IterationHook:
    """CatBoost's `after_iteration` hook for one fit: reports, returns False to stop."""

    def __init__(self, run: _Run, candidate: int | None) -> None:
        self.run = run
        self.candidate = candidate
        self.iterations = 0

    def after_iteration(self, info: Any) -> bool:
        self.iterations = info.iteration
        history = info.metrics.get("validation", {}).get(PROGRESS_METRIC)
        metric = float(history[-1]) if history else None
        if metric is not None and not math.isfinite(metric):
            metric = None
        return self.run.report(self.run.done_before + info.iteration, metric, self.candidate)


def split_by_time(frame: pl.DataFrame, validation_split: float) -> dict[str, pl.DataFrame]:
    """Oldest leads train, the next `validation_split` validate, the newest as much test."""
    ordered = frame.sort("created_at", "lead_id")
    n = ordered.height
    held_out = round(n * validation_split)
    train_end = n - 2 * held_out
    return {
        "train": ordered.slice(0, train_end),
        "validation": ordered.slice(train_end, held_out),
        "test": ordered.slice(n - held_out, held_out),
    }


def model_input(frame: pl.DataFrame) -> pl.DataFrame:
    """The FEATURES columns in model order; CatBoost reads polars frames directly."""
    return frame.select(FEATURES)


def tuning_grid(params: TrainParams) -> list[TrainParams]:
    """Depth -2/0/+2 x learning rate x0.5/1/2 around the request (clipped, deduplicated)."""
    depths = sorted({min(10, max(1, params.depth + step)) for step in TUNING_DEPTH_STEPS})
    rates = sorted({min(1.0, params.learning_rate * f) for f in TUNING_RATE_FACTORS})
    return [replace(params, depth=d, learning_rate=r, tuning=False) for d in depths for r in rates]


def _fit(pools: dict[str, Pool], params: TrainParams, hook: _IterationHook) -> CatBoostClassifier:
    model = CatBoostClassifier(
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        l2_leaf_reg=params.l2_leaf_reg,
        random_seed=params.random_seed,
        loss_function="Logloss",
        # reported per iteration on the validation split; use_best_model still trims by Logloss
        custom_metric=[PROGRESS_METRIC],
        allow_writing_files=False,
        verbose=False,
        thread_count=-1,
    )
    model.fit(
        pools["train"],
        eval_set=pools["validation"],
        use_best_model=True,
        early_stopping_rounds=params.early_stopping_rounds,
        callbacks=[hook],
    )
    return model


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    """NaN (a split with one class has no AUC or lift) as None: JSONB has no NaN."""
    return {k: v if math.isfinite(v) else None for k, v in metrics.items()}


def _labels(part: pl.DataFrame) -> np.ndarray:
    return np.asarray(part["label"].to_numpy(), dtype=np.int8)


def require_enough(samples: int, conversions: int) -> None:
    """MODEL_TRAINING_FAILED (with minSamples, actualSamples, minConversions,
    actualConversions) below MIN_SAMPLES labelled leads or MIN_CONVERSIONS conversions."""
    if samples < MIN_SAMPLES or conversions < MIN_CONVERSIONS:
        raise ModelTrainingFailed(
            f"Need at least {MIN_SAMPLES} labelled leads and {MIN_CONVERSIONS} conversions "
            f"to train; have {samples} and {conversions}",
            minSamples=MIN_SAMPLES,
            actualSamples=samples,
            minConversions=MIN_CONVERSIONS,
            actualConversions=conversions,
        )


# the leads `feature_frame(labelled_only=True)` trains on: closed, and old enough (LABEL_AGE)
_LABELLED = """
SELECT count(*), count(*) FILTER (WHERE stage = 'WON') FROM lead l
WHERE workspace_id = :ws AND stage IN ('WON', 'LOST')
  AND created_at <= now() - CAST(:age AS interval) {source}
"""


async def check_training_data(
    session: AsyncSession, workspace_id: int, source: DataSource = ALL_LEADS
) -> None:
    """`require_enough` on the workspace's labelled leads now (of `source`): a training
    request is refused at once instead of as a failed job (the job checks again on the data
    it reads)."""
    samples, conversions = (
        await session.execute(
            sa.text(_LABELLED.format(source=source.sql)),
            {"ws": workspace_id, "age": LABEL_AGE, **source.params()},
        )
    ).one()
    require_enough(int(samples), int(conversions))


def train(
    frame: pl.DataFrame, params: TrainParams, *, progress: Progress | None = None
) -> TrainResult:
    """Fit a CatBoostClassifier on the frame's labelled rows; see the module docstring.

    With `params.tuning`, every `tuning_grid` candidate is fitted on the train split and the
    one with the best validation AUC is kept (it is the final model: the same fit again would
    give the same trees). Cancel stops at the next iteration; a run over `params.max_seconds`
    raises MODEL_TRAINING_FAILED.
    """
    params.validate()
    labelled = frame.filter(pl.col("label").is_not_null())
    require_enough(labelled.height, int(labelled["label"].sum() or 0))
    splits = split_by_time(labelled, params.validation_split)
    pools = {
        name: Pool(model_input(part), label=_labels(part), cat_features=list(CATEGORICAL))
        for name, part in splits.items()
    }
    grid = tuning_grid(params) if params.tuning else [params]
    run = _Run(
        progress or (lambda _: True),
        params.iterations * len(grid),
        params.max_seconds,
        len(grid) if params.tuning else None,
    )
    validation_labels = _labels(splits["validation"])
    best: tuple[float, CatBoostClassifier, TrainParams] | None = None
    trials: list[dict[str, Any]] = []
    for number, candidate in enumerate(grid, start=1):
        hook = _IterationHook(run, number if params.tuning else None)
        model = _fit(pools, candidate, hook)
        run.done_before += hook.iterations
        if run.stopped is not None:
            break  # a cancel or the time limit: no further candidate starts
        score = auc(validation_labels, model.predict_proba(pools["validation"])[:, 1])
        trials.append(
            {
                "depth": candidate.depth,
                "learningRate": candidate.learning_rate,
                "validationAuc": score if math.isfinite(score) else None,
            }
        )
        if best is None or (score == score and not best[0] >= score):
            best = (score, model, candidate)
    if run.stopped == "timeout":
        raise ModelTrainingFailed(
            "Training stopped: it ran longer than the configured maximum training time",
            reason="maxTrainingTimeMs exceeded",
            maxTrainingTimeMs=round((params.max_seconds or 0) * 1000),
            elapsedMs=run.elapsed_ms(),
        )
    if run.stopped == "cancelled" or best is None:
        return TrainResult(
            model_bytes=b"",
            metrics={},
            feature_importance={},
            sizes={},
            best_iteration=None,
            iterations_run=run.done_before,
            cancelled=True,
            params=params.payload(),
        )
    _, model, chosen = best
    probabilities = {name: model.predict_proba(pool)[:, 1] for name, pool in pools.items()}
    threshold = best_f1_threshold(validation_labels, probabilities["validation"])
    metrics = {
        name: _finite(classification_metrics(_labels(splits[name]), p, threshold))
        for name, p in probabilities.items()
    }
    importance = model.get_feature_importance(pools["train"])
    best_iteration = model.get_best_iteration()
    chosen_params = {**chosen.payload(), "hyperparameterTuning": params.tuning}
    if params.tuning:
        chosen_params["tuning"] = {
            "metric": "validation AUC",
            "trials": trials,
            "chosen": {"depth": chosen.depth, "learningRate": chosen.learning_rate},
        }
    return TrainResult(
        model_bytes=model_bytes(model),
        metrics=metrics,
        feature_importance={
            name: float(value) for name, value in zip(FEATURES, importance, strict=True)
        },
        sizes={
            name: {"rows": part.height, "conversions": int(part["label"].sum() or 0)}
            for name, part in splits.items()
        },
        best_iteration=None if best_iteration is None else int(best_iteration),
        iterations_run=run.done_before,
        params=chosen_params,
    )


def model_bytes(model: CatBoostClassifier) -> bytes:
    """The model as cbm bytes, for Postgres (load with `load_model(blob=...)`)."""
    return bytes(model._serialize_model())


def load_model(blob: bytes) -> CatBoostClassifier:
    model = CatBoostClassifier()
    model.load_model(blob=blob)
    return model
