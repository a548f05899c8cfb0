"""Batch scoring: a feature frame in, (lead_id, probability, value, confidence) out.

Conventions (DESIGN.md, "Scoring conventions"): value = clip(round(100 p), 1, 99).
Confidence is the distance of the probability from a coin flip, 2 * |p - 0.5|, in 0..1:
0 says the model cannot tell, 1 that it is certain either way. It does not depend on the
base rate, so it stays comparable across model versions and workspaces.

Pure and synchronous (callers run `score_frame` in a thread). Loaded models are kept in a
small process-level cache keyed by (database, model id, version): a version is immutable, so
the key never goes stale, and scoring skips re-parsing the ~2 MB cbm bytes. The database is
part of the key because one process may serve several (the test suite does: ids repeat).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from catboost import CatBoostClassifier  # type: ignore[import-untyped]

from ml.train import load_model, model_input
from models.leads import LeadFilter, LeadSource, LeadStage

MIN_VALUE, MAX_VALUE = 1, 99
CACHE_SIZE = 4

ModelKey = tuple[str, int, int]  # (database url, model id, version)

_cache: OrderedDict[ModelKey, CatBoostClassifier] = OrderedDict()
_lock = threading.Lock()


def cached_model(key: ModelKey) -> CatBoostClassifier | None:
    """The loaded model of `key` if this process has it (and mark it recently used)."""
    with _lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
        return model


def load_cached(key: ModelKey, blob: bytes | Callable[[], bytes]) -> CatBoostClassifier:
    """The loaded model of `key`, parsing `blob` (bytes, or a function returning them) only
    on a cache miss; the least recently used model leaves once CACHE_SIZE are held."""
    model = cached_model(key)
    if model is not None:
        return model
    model = load_model(blob() if callable(blob) else blob)
    with _lock:
        _cache[key] = model
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def score_value(probability: np.ndarray) -> np.ndarray:
    """clip(round(100 p), 1, 99) as integers (numpy rounds halves to even, like Python)."""
    return np.clip(np.rint(probability * 100), MIN_VALUE, MAX_VALUE).astype(np.int16)


def confidence_of(probability: np.ndarray) -> np.ndarray:
    """2 * |p - 0.5|: see the module docstring."""
    return np.abs(probability - 0.5) * 2


def score_frame(model: bytes | CatBoostClassifier, frame: pl.DataFrame) -> pl.DataFrame:
    """Score every row of a `feature_frame` in one batch predict (polars in, no pandas).

    `model` is cbm bytes or an already loaded classifier (see `load_cached`).
    Returns columns lead_id (Int64), probability (Float64), value (Int16), confidence (Float64).
    """
    schema = {
        "lead_id": pl.Int64,
        "probability": pl.Float64,
        "value": pl.Int16,
        "confidence": pl.Float64,
    }
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    classifier = load_model(bytes(model)) if isinstance(model, bytes | bytearray) else model
    probability = np.asarray(classifier.predict_proba(model_input(frame))[:, 1], dtype=np.float64)
    return pl.DataFrame(
        {
            "lead_id": frame["lead_id"],
            "probability": probability,
            "value": score_value(probability),
            "confidence": confidence_of(probability),
        },
        schema=schema,
    )


# ---- a scoring job's lead filter, as stored in its JSON payload -----------------------------


def filter_payload(lead_filter: LeadFilter) -> dict[str, Any]:
    """`LeadFilter` as JSON for a job payload (read back by `payload_filter`)."""
    return {
        "stages": [s.value for s in lead_filter.stages] if lead_filter.stages else None,
        "sources": [s.value for s in lead_filter.sources] if lead_filter.sources else None,
        "agentIds": [str(a) for a in lead_filter.agent_ids] if lead_filter.agent_ids else None,
        "minScore": lead_filter.min_score,
        "maxScore": lead_filter.max_score,
        "createdAfter": _iso(lead_filter.created_after),
        "createdBefore": _iso(lead_filter.created_before),
        "search": lead_filter.search,
    }


def payload_filter(data: dict[str, Any]) -> LeadFilter:
    return LeadFilter(
        stages=[LeadStage(s) for s in data["stages"]] if data.get("stages") else None,
        sources=[LeadSource(s) for s in data["sources"]] if data.get("sources") else None,
        agent_ids=[int(a) for a in data["agentIds"]] if data.get("agentIds") else None,
        min_score=data.get("minScore"),
        max_score=data.get("maxScore"),
        created_after=_from_iso(data.get("createdAfter")),
        created_before=_from_iso(data.get("createdBefore")),
        search=data.get("search"),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
