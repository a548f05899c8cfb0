"""SHAP explanations on a model trained on the seeded `small` data: additivity, readable
values, top factors, decision sentences, summaries."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from catboost import CatBoostClassifier, Pool  # type: ignore[import-untyped]

from ml import explain
from ml.features import CATEGORICAL, DESCRIPTIONS, FEATURES, feature_frame
from ml.train import TrainParams, load_model, train
from models.db import Database
from models.ml_models import MlModel
from tests.conftest import fetch, seeded_database

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1


@pytest.fixture(scope="module")
def database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_explain_ml", "small", now=NOW)


@pytest.fixture(scope="module")
def frames(database: str) -> dict[str, pl.DataFrame]:
    async def build() -> dict[str, pl.DataFrame]:
        db = Database(database, pool_size=2)
        try:
            labelled = await feature_frame(db, ACME, labelled_only=True, as_of=NOW)
            full = await feature_frame(db, ACME, as_of=NOW)
            return {"labelled": labelled, "sample": full.gather_every(61)}
        finally:
            await db.dispose()

    return asyncio.run(build())


@pytest.fixture(scope="module")
def model(frames: dict[str, pl.DataFrame]) -> CatBoostClassifier:
    result = train(frames["labelled"], TrainParams(iterations=80, depth=4))
    return load_model(result.model_bytes)


ROW = MlModel(id=7, workspace_id=ACME, name="lead-conversion", version=3)


def test_shap_plus_expected_value_is_the_raw_log_odds(model, frames):
    sample = frames["sample"]
    assert sample.height > 200
    shap, expected = explain.shap_frame(model, sample)
    assert shap.shape == (sample.height, len(FEATURES))
    pool = Pool(sample.select(FEATURES), cat_features=list(CATEGORICAL))
    p = model.predict_proba(pool)[:, 1]
    np.testing.assert_allclose(expected + shap.sum(axis=1), np.log(p / (1 - p)), atol=1e-6)
    raw = model.predict(pool, prediction_type="RawFormulaVal")
    np.testing.assert_allclose(expected + shap.sum(axis=1), raw, atol=1e-6)


def test_explanations_carry_the_probability_and_the_model(model, frames):
    sample = frames["sample"].head(40)
    found = explain.explain_frame(model, sample, ROW)
    assert [e.lead_id for e in found] == sample["lead_id"].to_list()
    p = model.predict_proba(sample.select(FEATURES))[:, 1]
    for e, expected_p in zip(found, p, strict=True):
        assert (e.model_id, e.model_version) == (7, 3)
        assert [c.feature for c in e.contributions] == list(FEATURES)
        assert e.probability == pytest.approx(float(expected_p), abs=1e-9)
        assert e.log_odds == pytest.approx(math.log(expected_p / (1 - expected_p)), abs=1e-6)


def test_top_factors_are_the_three_largest_of_each_sign(model, frames):
    for e in explain.explain_frame(model, frames["sample"].head(40), ROW):
        shaps = sorted(c.shap for c in e.contributions)
        positive = [s for s in reversed(shaps) if s > 0][:3]
        negative = [s for s in shaps if s < 0][:3]
        assert [c.shap for c in e.top_positive] == positive
        assert [c.shap for c in e.top_negative] == negative
        sentences = e.decision_factors()
        assert len(sentences) == len(positive) + len(negative)
        strongest = max(e.top_positive + e.top_negative, key=lambda c: abs(c.shap))
        label = DESCRIPTIONS[strongest.feature][0]
        effect = "raises" if strongest.shap > 0 else "lowers"
        assert sentences[0].startswith(f"{label} {strongest.value} {effect} the conversion odds")


def test_values_are_the_leads_own_readable_values(model, frames, database):
    sample = frames["sample"].head(60)
    found = {e.lead_id: e for e in explain.explain_frame(model, sample, ROW)}
    rows = fetch(
        database,
        "SELECT id, budget, timeline, location FROM lead WHERE id = ANY($1::bigint[])",
        sample["lead_id"].to_list(),
    )
    assert len(rows) == len(found)
    for row in rows:
        values = {c.feature: c.value for c in found[row["id"]].contributions}
        budget = row["budget"]
        assert values["log_budget"] == ("not known" if budget is None else f"{budget:,}")
        timeline = row["timeline"]
        assert values["timeline"] == (
            "not known" if timeline is None else timeline.replace("_", " ").lower()
        )
        assert values["location"] == (row["location"] or "not known")


def test_shap_summary_is_the_mean_absolute_value(model, frames):
    found = explain.explain_frame(model, frames["sample"].head(30), ROW)
    summary = explain.shap_summary(found)
    shap, _ = explain.shap_frame(model, frames["sample"].head(30))
    for j, name in enumerate(FEATURES):
        assert summary[name] == pytest.approx(float(np.abs(shap[:, j]).mean()))
    assert explain.shap_summary([]) == dict.fromkeys(FEATURES, 0.0)
    assert explain.explain_frame(model, frames["sample"].head(0), ROW) == []
