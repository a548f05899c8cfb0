"""PSI drift against a training reference, on the seeded `small` data's feature frame."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from ml import drift
from ml.features import CATEGORICAL, NUMERIC, feature_frame
from models.db import Database
from tests.conftest import seeded_database

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1


@pytest.fixture(scope="module")
def labelled(admin_database_url: str) -> pl.DataFrame:
    url = seeded_database(admin_database_url, "dashgraph_drift_ml", "small", now=NOW)

    async def build() -> pl.DataFrame:
        db = Database(url, pool_size=2)
        try:
            return await feature_frame(db, ACME, labelled_only=True, as_of=NOW)
        finally:
            await db.dispose()

    return asyncio.run(build())


@pytest.fixture(scope="module")
def reference(labelled: pl.DataFrame) -> dict:
    return drift.build_reference(labelled)


def by_feature(found: list[drift.FeatureDrift]) -> dict[str, drift.FeatureDrift]:
    return {f.feature: f for f in found}


def test_reference_has_decile_bins_and_category_shares(reference, labelled):
    assert reference["rows"] == labelled.height > 1_000
    for name in NUMERIC:
        ref = reference["numeric"][name]
        assert ref["edges"] == sorted(set(ref["edges"])) and len(ref["edges"]) <= 9
        assert len(ref["shares"]) == len(ref["edges"]) + 1
        assert sum(ref["shares"]) == pytest.approx(1.0)
        assert ref["missing"] == pytest.approx(labelled[name].null_count() / labelled.height)
    # a continuous feature gets ten bins of about a tenth each
    budget = reference["numeric"]["log_budget"]
    assert len(budget["shares"]) == 10
    assert max(budget["shares"]) < 0.13 and min(budget["shares"]) > 0.07
    for name in CATEGORICAL:
        shares = reference["categorical"][name]["shares"]
        expected = labelled[name].value_counts()
        assert shares == pytest.approx(
            {str(v): c / labelled.height for v, c in expected.iter_rows()}
        )


def test_a_sample_like_the_reference_is_stable(reference, labelled):
    sample = labelled.sample(n=3_000, seed=11)
    found = drift.feature_drift(reference, sample)
    assert {f.feature for f in found} == set(NUMERIC) | set(CATEGORICAL)
    for f in found:
        assert f.psi is not None and f.psi < drift.STABLE, f
        assert f.band == "STABLE"


def test_a_shifted_budget_is_major_drift_and_nothing_else_moves(reference, labelled):
    sample = labelled.sample(n=3_000, seed=12)
    shifted = sample.with_columns(log_budget=(pl.col("log_budget").exp() * 5).log())
    found = by_feature(drift.feature_drift(reference, shifted))
    assert found["log_budget"].psi > drift.MAJOR
    assert found["log_budget"].band == "MAJOR"
    others = [f for name, f in found.items() if name != "log_budget"]
    assert all(f.psi < drift.STABLE for f in others), others


def test_psi_matches_the_formula_with_epsilon_for_empty_bins():
    ref, cur = [0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]
    expected = sum(
        (c - r) * math.log(c / r) for r, c in zip([0.5, 0.3, 0.2, drift.EPSILON], cur, strict=True)
    )
    assert drift.psi(ref, cur) == pytest.approx(expected)
    assert drift.psi([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_bins_put_edge_values_right_and_leave_nulls_out():
    shares = drift._bins([1.0, 2.0], pl.Series([0.5, 1.0, 1.5, 2.0, 3.0, None]))
    np.testing.assert_allclose(shares, [1 / 5, 2 / 5, 2 / 5])


def test_missing_rate_is_tracked_apart_from_psi(reference, labelled):
    sample = labelled.sample(n=3_000, seed=13)
    half_missing = sample.with_columns(
        log_budget=pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise("log_budget")
    )
    found = by_feature(drift.feature_drift(reference, half_missing))["log_budget"]
    assert found.current_missing == pytest.approx(
        half_missing["log_budget"].null_count() / half_missing.height
    )
    assert found.psi < drift.STABLE  # the values that are there still look like training
    advice = drift.recommendations(
        [found],
        drift.ConceptDrift(None, None, 0, 0, NOW),
        alert_psi=0.25,
        alert_decay=0.05,
        missing_change=drift.MISSING_CHANGE,
    )
    assert [r.type for r in advice] == ["DATA_QUALITY"]
    assert "log_budget" in advice[0].reason


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0.0, "STABLE"),
        (0.099, "STABLE"),
        (0.1, "MODERATE"),
        (0.25, "MODERATE"),
        (0.26, "MAJOR"),
        (None, None),
    ],
)
def test_bands(value, band):
    assert drift.band(value) == band


def test_recommendations_follow_the_bands_and_the_decay():
    features = [
        drift.FeatureDrift("log_budget", "NUMERIC", 0.8, 0.07, 0.07),
        drift.FeatureDrift("calls", "NUMERIC", 0.15, 0.0, 0.0),
        drift.FeatureDrift("source", "CATEGORICAL", 0.01, 0.0, 0.0),
    ]
    concept = drift.ConceptDrift(0.8, 0.7, 500, 40, NOW)
    advice = drift.recommendations(
        features, concept, alert_psi=0.25, alert_decay=0.05, missing_change=0.05
    )
    assert [(r.type, r.priority) for r in advice] == [
        ("RETRAINING", "HIGH"),
        ("MONITORING", "MEDIUM"),
        ("RETRAINING", "HIGH"),
    ]
    assert "log_budget" in advice[0].reason and "calls" not in advice[0].reason
    assert "calls" in advice[1].reason
    assert "0.700" in advice[2].reason
    stable = [drift.FeatureDrift("source", "CATEGORICAL", 0.01, 0.0, 0.0)]
    quiet = drift.ConceptDrift(0.8, 0.79, 500, 40, NOW)
    assert (
        drift.recommendations(stable, quiet, alert_psi=0.25, alert_decay=0.05, missing_change=0.05)
        == []
    )


def test_concept_drift_is_detected_at_the_start_of_its_unbroken_run() -> None:
    hour = [datetime(2026, 11, 26, h, tzinfo=UTC) for h in range(6)]
    # newest first: above 0.05 for the newest three, below before that
    checks = [(hour[5], 0.09), (hour[4], 0.07), (hour[3], 0.06), (hour[2], 0.01), (hour[1], 0.2)]
    assert drift.detected_at(checks, 0.05) == hour[3]
    assert drift.detected_at(checks[:1], 0.05) == hour[5]
    # the newest not above it (or unmeasured): not drifting now
    assert drift.detected_at([(hour[5], 0.05), *checks[1:]], 0.05) is None
    assert drift.detected_at([(hour[5], None), *checks[1:]], 0.05) is None
    assert drift.detected_at([], 0.05) is None
