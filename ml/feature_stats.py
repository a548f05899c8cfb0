"""Feature metadata for the `features` query: type, description, range or categories,
missing rate and distribution of each model feature over a workspace's current leads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ml.features import CATEGORICAL, DESCRIPTIONS, FEATURES, MISSING

HISTOGRAM_BINS = 10
TOP_CATEGORIES = 20


@dataclass(frozen=True, slots=True)
class Bin:
    low: float
    high: float
    count: int
    share: float


@dataclass(frozen=True, slots=True)
class CategoryShare:
    value: str
    count: int
    share: float


@dataclass(slots=True)
class FeatureStat:
    name: str
    kind: str  # NUMERIC or CATEGORICAL
    description: str
    rows: int
    missing_rate: float
    importance: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    # Fisher-Pearson, biased (mean cubed deviation / std^3); None when every value is equal
    skewness: float | None = None
    categories: list[CategoryShare] = field(default_factory=list)
    distinct: int = 0
    histogram: list[Bin] = field(default_factory=list)


def histogram(values: pl.Series, bins: int = HISTOGRAM_BINS) -> list[Bin]:
    """Equal-width bins from min to max of the non-null values (the last bin is closed)."""
    present = values.drop_nulls().cast(pl.Float64)
    n = present.len()
    if n == 0:
        return []
    low, high = _float(present.min()), _float(present.max())
    if low == high:
        return [Bin(low, high, n, 1.0)]
    width = (high - low) / bins
    inner = pl.Series([low + width * i for i in range(1, bins)], dtype=pl.Float64)
    index = inner.search_sorted(present, side="right").to_numpy()
    counts = [int((index == i).sum()) for i in range(bins)]
    edges = [low + width * i for i in range(bins)] + [high]
    return [Bin(edges[i], edges[i + 1], counts[i], counts[i] / n) for i in range(bins)]


def feature_stats(frame: pl.DataFrame, importance: dict[str, float] | None) -> list[FeatureStat]:
    """One entry per model feature, in model order, from a `feature_frame`."""
    n = frame.height
    found = []
    for name in FEATURES:
        description = DESCRIPTIONS.get(name, (name, ""))[1]
        weight = None if importance is None else importance.get(name)
        values = frame[name]
        if name in CATEGORICAL:
            counts = values.value_counts(sort=True)
            top = [
                CategoryShare(str(v), int(c), c / n)
                for v, c in counts.head(TOP_CATEGORIES).iter_rows()
            ]
            found.append(
                FeatureStat(
                    name,
                    "CATEGORICAL",
                    description,
                    n,
                    float((values == MISSING).sum()) / n if n else 0.0,
                    weight,
                    categories=top,
                    distinct=counts.height,
                )
            )
            continue
        numeric = values.cast(pl.Float64)
        present = numeric.drop_nulls()
        found.append(
            FeatureStat(
                name,
                "NUMERIC",
                description,
                n,
                numeric.null_count() / n if n else 0.0,
                weight,
                minimum=_float(present.min()) if present.len() else None,
                maximum=_float(present.max()) if present.len() else None,
                mean=_float(present.mean()) if present.len() else None,
                std=_float(present.std()) if present.len() > 1 else None,
                skewness=_finite(present.skew()) if present.len() > 1 else None,
                histogram=histogram(numeric),
            )
        )
    return found


def _float(value: Any) -> float:
    return float(value)


def _finite(value: Any) -> float | None:
    number = None if value is None else float(value)
    return number if number is not None and math.isfinite(number) else None
