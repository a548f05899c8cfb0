"""CatBoost training on a labelled feature frame: time-ordered splits, metrics, model bytes.

Pure and synchronous (callers run it in a thread: `fit` releases the GIL); progress and
cancel arrive through one callback instead of the job machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from catboost import CatBoostClassifier, Pool  # type: ignore[import-untyped]

from ml.features import CATEGORICAL, FEATURES
from models.errors import ModelTrainingFailed, Validator

MIN_SAMPLES = 1_000
MIN_CONVERSIONS = 120
THRESHOLD = 0.5

# (iteration done, iterations requested, best validation metric so far) -> keep going?
Progress = Callable[[int, int, float | None], bool]


@dataclass(frozen=True, slots=True)
class TrainParams:
    iterations: int = 300
    depth: int = 6
    learning_rate: float = 0.1
    # share of the labelled leads held out for validation, and again for test (the newest)
    validation_split: float = 0.2
    random_seed: int = 7

    def validate(self) -> None:
        v = Validator()
        v.check(10 <= self.iterations <= 5000, "iterations", "between 10 and 5000")
        v.check(1 <= self.depth <= 10, "depth", "between 1 and 10")
        v.check(0 < self.learning_rate <= 1, "learningRate", "above 0 and at most 1")
        v.check(0.05 <= self.validation_split <= 0.4, "validationSplit", "between 0.05 and 0.4")
        v.raise_if_any("Invalid training parameters")


@dataclass(slots=True)
class TrainResult:
    model_bytes: bytes
    # split name (train, validation, test) -> metric name -> value
    metrics: dict[str, dict[str, float]]
    feature_importance: dict[str, float]
    # rows and conversions per split
    sizes: dict[str, dict[str, int]]
    best_iteration: int | None
    iterations_run: int
    cancelled: bool = False
    params: dict[str, Any] = field(default_factory=dict)


class _ProgressCallback:
    """CatBoost's `after_iteration` hook: reports progress, returns False to stop."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.total = total
        self.cancelled = False
        self.iterations = 0

    def after_iteration(self, info: Any) -> bool:
        self.iterations = info.iteration
        history = info.metrics.get("validation", {}).get("Logloss")
        best = float(min(history)) if history else None
        if not self.progress(info.iteration, self.total, best):
            self.cancelled = True
            return False
        return True


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


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    predicted = probabilities >= THRESHOLD
    actual = labels.astype(bool)
    tp = float(np.sum(predicted & actual))
    fp = float(np.sum(predicted & ~actual))
    fn = float(np.sum(~predicted & actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float(np.mean(predicted == actual)) if labels.size else 0.0,
        "precision": precision,
        "recall": recall,
        "f1_score": f1,
        "auc": auc(actual, probabilities),
    }


def auc(actual: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties sharing their average rank."""
    positives = int(actual.sum())
    negatives = actual.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[group]
    return float((ranks[actual].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def train(
    frame: pl.DataFrame, params: TrainParams, *, progress: Progress | None = None
) -> TrainResult:
    """Fit a CatBoostClassifier on the frame's labelled rows; see the module docstring."""
    params.validate()
    labelled = frame.filter(pl.col("label").is_not_null())
    samples = labelled.height
    conversions = int(labelled["label"].sum() or 0)
    if samples < MIN_SAMPLES or conversions < MIN_CONVERSIONS:
        raise ModelTrainingFailed(
            f"Need at least {MIN_SAMPLES} labelled leads and {MIN_CONVERSIONS} conversions "
            f"to train; have {samples} and {conversions}",
            minSamples=MIN_SAMPLES,
            actualSamples=samples,
            minConversions=MIN_CONVERSIONS,
            actualConversions=conversions,
        )
    splits = split_by_time(labelled, params.validation_split)
    pools = {
        name: Pool(
            model_input(part), label=part["label"].to_numpy(), cat_features=list(CATEGORICAL)
        )
        for name, part in splits.items()
    }
    model = CatBoostClassifier(
        iterations=params.iterations,
        depth=params.depth,
        learning_rate=params.learning_rate,
        random_seed=params.random_seed,
        loss_function="Logloss",
        allow_writing_files=False,
        verbose=False,
        thread_count=-1,
    )
    callback = _ProgressCallback(progress or (lambda *_: True), params.iterations)
    model.fit(
        pools["train"], eval_set=pools["validation"], use_best_model=True, callbacks=[callback]
    )
    metrics = {
        name: classification_metrics(
            splits[name]["label"].to_numpy(), model.predict_proba(pool)[:, 1]
        )
        for name, pool in pools.items()
    }
    importance = model.get_feature_importance(pools["train"])
    best = model.get_best_iteration()
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
        best_iteration=None if best is None else int(best),
        iterations_run=callback.iterations,
        cancelled=callback.cancelled,
        params={
            "iterations": params.iterations,
            "depth": params.depth,
            "learningRate": params.learning_rate,
            "validationSplit": params.validation_split,
        },
    )


def model_bytes(model: CatBoostClassifier) -> bytes:
    """The model as cbm bytes, for Postgres (load with `load_model(blob=...)`)."""
    return bytes(model._serialize_model())


def load_model(blob: bytes) -> CatBoostClassifier:
    model = CatBoostClassifier()
    model.load_model(blob=blob)
    return model
