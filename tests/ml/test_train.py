"""Training on the seeded `small` data: signal without leakage, refusals, cancel, time order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from itertools import accumulate

import numpy as np
import polars as pl
import pytest

from ml.features import CATEGORICAL, FEATURES, feature_frame
from ml.metrics import auc, best_f1_threshold
from ml.train import (
    TrainingProgress,
    TrainParams,
    TrainResult,
    load_model,
    model_input,
    split_by_time,
    train,
    tuning_grid,
)
from models.db import Database
from models.errors import BadUserInput, ModelTrainingFailed
from models.migrate import upgrade
from models.seed import seed
from tests.conftest import recreate_database

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1
PARAMS = TrainParams(iterations=200, depth=6, learning_rate=0.1)


@pytest.fixture(scope="module")
def frames(admin_database_url: str) -> dict[str, pl.DataFrame]:
    """Acme's feature frames as of NOW: every lead, the labelled ones, and a scoring subset."""
    url = asyncio.run(recreate_database(admin_database_url, "dashgraph_mltest"))
    upgrade(url)

    async def build() -> dict[str, pl.DataFrame]:
        db = Database(url, pool_size=2)
        try:
            await seed(db, "small", reset=True, now=NOW)
            full = await feature_frame(db, ACME, as_of=NOW)
            labelled = await feature_frame(db, ACME, labelled_only=True, as_of=NOW)
            ids = full["lead_id"].gather_every(97).to_list()
            subset = await feature_frame(db, ACME, lead_ids=ids, as_of=NOW)
            return {"full": full, "labelled": labelled, "subset": subset}
        finally:
            await db.dispose()

    return asyncio.run(build())


@pytest.fixture(scope="module")
def trained(frames: dict[str, pl.DataFrame]) -> TrainResult:
    return train(frames["labelled"], PARAMS)


def test_feature_frame_has_every_feature_and_no_null_categories(frames):
    full = frames["full"]
    assert full.columns == ["lead_id", "created_at", "label", *FEATURES]
    assert full.select(pl.col(*CATEGORICAL).null_count()).sum_horizontal().item() == 0
    assert full["created_at"].max() <= NOW


def test_labelled_leads_are_old_enough_and_closed(frames):
    labelled = frames["labelled"]
    assert labelled["label"].null_count() == 0
    assert labelled["created_at"].max() <= datetime(2025, 12, 3, 12, tzinfo=UTC)  # NOW - 180 d
    assert labelled.height >= 1_000 and labelled["label"].sum() >= 120


def test_scoring_a_few_leads_gives_the_same_features_as_training(frames):
    # one code path: a lead's row does not depend on which other leads are asked for
    subset = frames["subset"]
    expected = frames["full"].filter(pl.col("lead_id").is_in(subset["lead_id"].implode()))
    assert subset.height == expected.height > 100
    assert subset.equals(expected)


def test_auc_on_the_test_split_shows_signal_without_leakage(trained):
    test_auc = trained.metrics["test"]["auc"]
    assert 0.65 <= test_auc <= 0.95, trained.metrics
    for split in ("train", "validation", "test"):
        assert set(trained.metrics[split]) == {
            "accuracy",
            "precision",
            "recall",
            "f1_score",
            "auc",
            "threshold",
            "lift_top_decile",
        }
    assert set(trained.feature_importance) == set(FEATURES)
    assert sum(trained.feature_importance.values()) == pytest.approx(100, abs=0.1)
    assert not trained.cancelled


def test_model_bytes_load_back_and_predict_as_trained(trained, frames):
    model = load_model(trained.model_bytes)
    rows = frames["labelled"].tail(50)
    probabilities = model.predict_proba(model_input(rows))[:, 1]
    assert ((probabilities > 0) & (probabilities < 1)).all()
    # use_best_model trims the trees to the best validation iteration
    assert trained.best_iteration is not None
    assert model.tree_count_ == trained.best_iteration + 1


def test_split_is_time_ordered(frames, trained):
    splits = split_by_time(frames["labelled"], PARAMS.validation_split)
    train_part, validation, test = splits["train"], splits["validation"], splits["test"]
    assert train_part["created_at"].max() <= validation["created_at"].min()
    assert validation["created_at"].max() <= test["created_at"].min()
    assert validation.height == test.height == round(frames["labelled"].height * 0.2)
    assert sum(s["rows"] for s in trained.sizes.values()) == frames["labelled"].height


def test_refuses_below_one_thousand_labelled_leads(frames):
    few = frames["labelled"].head(900)
    with pytest.raises(ModelTrainingFailed) as raised:
        train(few, PARAMS)
    details = raised.value.details
    assert details["minSamples"] == 1_000 and details["actualSamples"] == 900
    assert details["minConversions"] == 120
    assert details["actualConversions"] == few["label"].sum()


def test_refuses_below_120_conversions(frames):
    labelled = frames["labelled"]
    won = labelled.filter(pl.col("label") == 1).head(100)
    lost = labelled.filter(pl.col("label") == 0).head(2_000)
    with pytest.raises(ModelTrainingFailed) as raised:
        train(pl.concat([won, lost]), PARAMS)
    assert raised.value.details["actualConversions"] == 100
    assert raised.value.details["actualSamples"] == 2_100


def test_progress_returning_false_cancels_training(frames):
    seen: list[TrainingProgress] = []

    def progress(report: TrainingProgress) -> bool:
        seen.append(report)
        return report.done < 5

    result = train(frames["labelled"], PARAMS, progress=progress)
    assert result.cancelled
    assert result.iterations_run == 5 < PARAMS.iterations
    assert [s.done for s in seen] == [1, 2, 3, 4, 5]
    assert all(s.total == PARAMS.iterations and s.stage == "training" for s in seen)
    # current and best validation AUC, the best being the running maximum; an ETA
    assert all(s.metric is not None and 0.5 < s.metric < 1 for s in seen)
    assert [s.best for s in seen] == list(accumulate((s.metric for s in seen), max))
    assert all(s.eta_seconds is not None and s.eta_seconds >= 0 for s in seen)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"iterations": 5}, "iterations"),
        ({"iterations": 5001}, "iterations"),
        ({"depth": 0}, "depth"),
        ({"depth": 11}, "depth"),
        ({"learning_rate": 0.0}, "learningRate"),
        ({"learning_rate": 1.5}, "learningRate"),
        ({"validation_split": 0.01}, "validationSplit"),
        ({"validation_split": 0.5}, "validationSplit"),
        ({"l2_leaf_reg": -1.0}, "l2LeafReg"),
        ({"early_stopping_rounds": 0}, "earlyStoppingRounds"),
        ({"early_stopping_rounds": 1001}, "earlyStoppingRounds"),
    ],
)
def test_bad_params_name_the_field(change, field):
    empty = pl.DataFrame()  # validation comes before any look at the data
    with pytest.raises(BadUserInput) as raised:
        train(empty, replace(PARAMS, **change))
    assert list(raised.value.details["fields"]) == [field]


def test_early_stopping_ends_once_validation_stops_improving(frames):
    # a fast learner overfits soon: with a patience of 5 it stops 5 iterations after its best
    params = replace(PARAMS, iterations=3000, learning_rate=0.5, early_stopping_rounds=5)
    result = train(frames["labelled"], params)
    assert not result.cancelled and result.best_iteration is not None
    assert result.best_iteration + 5 <= result.iterations_run <= result.best_iteration + 6 < 3000
    assert result.params["earlyStoppingRounds"] == 5


def f1_at(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> float:
    predicted = probabilities >= threshold
    tp = int((predicted & (labels == 1)).sum())
    return 2 * tp / (int(predicted.sum()) + int(labels.sum()))


def test_threshold_is_the_best_f1_cut_off_on_validation(trained, frames):
    """Recomputed by brute force over every candidate cut-off, then the test split's
    precision, recall and lift at it, from the stored model's own predictions."""
    model = load_model(trained.model_bytes)
    splits = split_by_time(frames["labelled"], PARAMS.validation_split)
    validation = splits["validation"]
    p_val = model.predict_proba(model_input(validation))[:, 1]
    y_val = validation["label"].to_numpy()
    best = max(f1_at(y_val, p_val, t) for t in np.unique(p_val))
    threshold = trained.metrics["validation"]["threshold"]
    assert f1_at(y_val, p_val, threshold) == pytest.approx(best)
    assert trained.metrics["validation"]["f1_score"] == pytest.approx(best)
    assert threshold < 0.5  # ~8% convert: the best cut-off is well below a coin flip
    assert {m["threshold"] for m in trained.metrics.values()} == {threshold}

    test = splits["test"].with_columns(p=model.predict_proba(model_input(splits["test"]))[:, 1])
    called = test.filter(pl.col("p") >= threshold)
    expected_precision = called["label"].mean()
    expected_recall = called["label"].sum() / test["label"].sum()
    assert trained.metrics["test"]["precision"] == pytest.approx(expected_precision)
    assert trained.metrics["test"]["recall"] == pytest.approx(expected_recall)
    assert trained.metrics["test"]["recall"] > 0.2  # not the ~0 of a 0.5 cut-off
    top = test.sort("p", descending=True).head(-(-test.height // 10))
    lift = top["label"].mean() / test["label"].mean()
    assert trained.metrics["test"]["lift_top_decile"] == pytest.approx(lift)
    assert lift > 1.5


def test_tuning_keeps_the_best_validation_candidate_and_records_it(frames):
    params = TrainParams(iterations=20, depth=4, learning_rate=0.1, tuning=True)
    reports: list[TrainingProgress] = []

    def progress(report: TrainingProgress) -> bool:
        reports.append(report)
        return True

    result = train(frames["labelled"], params, progress=progress)
    grid = tuning_grid(params)
    assert [(g.depth, g.learning_rate) for g in grid] == [
        (d, r) for d in (2, 4, 6) for r in (0.05, 0.1, 0.2)
    ]
    tuning = result.params["tuning"]
    trials = tuning["trials"]
    assert [(t["depth"], t["learningRate"]) for t in trials] == [
        (g.depth, g.learning_rate) for g in grid
    ]
    best = max(trials, key=lambda t: t["validationAuc"])
    assert tuning["chosen"] == {"depth": best["depth"], "learningRate": best["learningRate"]}
    assert (result.params["depth"], result.params["learningRate"]) == (
        best["depth"],
        best["learningRate"],
    )
    assert result.params["hyperparameterTuning"] is True
    # the kept model is that candidate: its validation AUC is the recorded one
    model = load_model(result.model_bytes)
    validation = split_by_time(frames["labelled"], params.validation_split)["validation"]
    p = model.predict_proba(model_input(validation))[:, 1]
    assert result.metrics["validation"]["auc"] == pytest.approx(best["validationAuc"])
    assert result.metrics["validation"]["auc"] == pytest.approx(
        auc(validation["label"].to_numpy().astype(bool), p)
    )
    # progress covers every candidate's iterations, in order, stage "tuning"
    assert {r.stage for r in reports} == {"tuning"}
    assert {r.candidate for r in reports} == set(range(1, 10))
    assert reports[-1].done == reports[-1].total == 9 * 20
    assert reports[-1].best == pytest.approx(max(r.metric for r in reports if r.metric))


def test_cancel_during_tuning_starts_no_further_candidate(frames):
    params = TrainParams(iterations=20, depth=4, learning_rate=0.1, tuning=True)
    candidates: list[int | None] = []

    def progress(report: TrainingProgress) -> bool:
        candidates.append(report.candidate)
        return report.candidate == 1

    result = train(frames["labelled"], params, progress=progress)
    assert result.cancelled and result.model_bytes == b""
    assert set(candidates) == {1, 2} and candidates.count(2) == 1


def test_a_training_over_its_time_limit_fails(frames):
    params = TrainParams(iterations=5000, depth=6, max_seconds=0.2)
    with pytest.raises(ModelTrainingFailed) as raised:
        train(frames["labelled"], params)
    details = raised.value.details
    assert details["maxTrainingTimeMs"] == 200
    assert 200 <= details["elapsedMs"] < 10_000


def test_best_f1_threshold_on_a_hand_made_example():
    labels = np.array([1, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.3, 0.1])
    # cut-offs: 0.9 -> F1 2/3, 0.8 -> 1/2, 0.7 -> 4/5 (best), 0.3 -> 4/7, 0.1 -> 1/2
    assert best_f1_threshold(labels, scores) == 0.7
    assert best_f1_threshold(np.zeros(4), scores[:4]) == 0.5  # nothing to find
