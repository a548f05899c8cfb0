"""Training on the seeded `small` data: signal without leakage, refusals, cancel, time order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
import pytest

from ml.features import CATEGORICAL, FEATURES, feature_frame
from ml.train import TrainParams, TrainResult, load_model, model_input, split_by_time, train
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
        assert set(trained.metrics[split]) == {"accuracy", "precision", "recall", "f1_score", "auc"}
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
    seen: list[tuple[int, int, float | None]] = []

    def progress(iteration: int, total: int, best: float | None) -> bool:
        seen.append((iteration, total, best))
        return iteration < 5

    result = train(frames["labelled"], PARAMS, progress=progress)
    assert result.cancelled
    assert result.iterations_run == 5 < PARAMS.iterations
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert all(total == PARAMS.iterations and best is not None for _, total, best in seen)


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
    ],
)
def test_bad_params_name_the_field(change, field):
    empty = pl.DataFrame()  # validation comes before any look at the data
    with pytest.raises(BadUserInput) as raised:
        train(empty, replace(PARAMS, **change))
    assert list(raised.value.details["fields"]) == [field]
