"""score_frame's conventions and the loaded-model cache, on a tiny synthetic model."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from catboost import CatBoostClassifier  # type: ignore[import-untyped]

from ml import scoring
from ml.features import CATEGORICAL, FEATURES, NUMERIC
from ml.train import model_bytes


def synthetic(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {"lead_id": np.arange(1, n + 1)}
    for name in CATEGORICAL:
        columns[name] = rng.choice(["a", "b", "c"], n)
    for name in NUMERIC:
        columns[name] = rng.normal(size=n)
    frame = pl.DataFrame(columns)
    label = (frame["log_budget"].to_numpy() + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return frame.with_columns(label=pl.Series(label))


@pytest.fixture(scope="module")
def blob() -> bytes:
    frame = synthetic(400)
    model = CatBoostClassifier(
        iterations=30, depth=3, verbose=False, allow_writing_files=False, random_seed=1
    )
    model.fit(frame.select(FEATURES), frame["label"].to_numpy(), cat_features=list(CATEGORICAL))
    return model_bytes(model)


def test_score_frame_follows_the_conventions(blob: bytes) -> None:
    frame = synthetic(200, seed=5)
    scored = scoring.score_frame(blob, frame)
    assert scored.columns == ["lead_id", "probability", "value", "confidence"]
    assert scored["lead_id"].to_list() == frame["lead_id"].to_list()
    model = CatBoostClassifier()
    model.load_model(blob=blob)
    expected = model.predict_proba(frame.select(FEATURES))[:, 1]
    assert np.allclose(scored["probability"].to_numpy(), expected)
    for p, value, confidence in scored.select("probability", "value", "confidence").iter_rows():
        assert value == min(99, max(1, round(100 * p)))
        assert confidence == pytest.approx(2 * abs(p - 0.5))


def test_extremes_clip_to_1_and_99() -> None:
    values = scoring.score_value(np.array([0.0, 0.004, 0.015, 0.5, 0.985, 1.0]))
    assert values.tolist() == [1, 1, 2, 50, 98, 99]


def test_empty_frames_score_to_empty(blob: bytes) -> None:
    assert scoring.score_frame(blob, synthetic(5).head(0)).height == 0


def test_loaded_models_are_cached_by_id_and_version(blob: bytes) -> None:
    scoring.clear_cache()
    loads: list[int] = []

    def fetch() -> bytes:
        loads.append(1)
        return blob

    first = scoring.load_cached(("db", 1, 1), fetch)
    assert scoring.load_cached(("db", 1, 1), fetch) is first
    assert len(loads) == 1
    for version in range(2, 2 + scoring.CACHE_SIZE):
        scoring.load_cached(("db", 1, version), fetch)
    assert scoring.cached_model(("db", 1, 1)) is None  # least recently used left
    assert scoring.cached_model(("other-db", 1, 2)) is None  # the same ids elsewhere
    scoring.clear_cache()
