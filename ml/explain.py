"""Per-lead explanations from CatBoost's native SHAP values, and SHAP summaries.

Each row's SHAP values plus the expected value sum to the raw log-odds of the model's
probability, so contributions are in log-odds units: positive raises the conversion odds.
`shap_frame`/`explain_frame` are pure and synchronous (callers run them in a thread);
`explain_leads` is the async entry point: serving models, one feature frame, one SHAP call
per model.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from catboost import CatBoostClassifier, Pool  # type: ignore[import-untyped]

from ml import registry
from ml.features import CATEGORICAL, DESCRIPTIONS, FEATURES, MISSING, feature_frame
from ml.train import model_input
from models.db import Database
from models.leads import Lead
from models.ml_models import MlModel

TOP = 3  # factors shown on each side, like the CRM scoring UIs
# enum values read as words in sentences: WITHIN_3_MONTHS -> "within 3 months"
_WORDED = frozenset({"timeline", "property_type", "source"})


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    value: str  # the lead's value of the feature, readable
    shap: float  # log-odds contribution


@dataclass(frozen=True, slots=True)
class Explanation:
    lead_id: int
    model_id: int
    model_version: int
    expected_value: float  # the model's base log-odds
    contributions: tuple[Contribution, ...]  # in FEATURES order

    @property
    def log_odds(self) -> float:
        return self.expected_value + sum(c.shap for c in self.contributions)

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.log_odds))

    @property
    def top_positive(self) -> list[Contribution]:
        ranked = sorted((c for c in self.contributions if c.shap > 0), key=lambda c: -c.shap)
        return ranked[:TOP]

    @property
    def top_negative(self) -> list[Contribution]:
        ranked = sorted((c for c in self.contributions if c.shap < 0), key=lambda c: c.shap)
        return ranked[:TOP]

    def decision_factors(self) -> list[str]:
        """One sentence per top factor, strongest first, from the lead's own values."""
        ranked = sorted(
            self.top_positive + self.top_negative, key=lambda c: (-abs(c.shap), c.feature)
        )
        return [factor_sentence(c) for c in ranked]


def readable(feature: str, value: Any) -> str:
    """A feature value as a person reads it (the budget back from its log, hours, shares)."""
    if value is None or value == MISSING:
        return "not known"
    if feature == "log_budget":
        return f"{round(math.expm1(float(value))):,}"
    if feature == "first_response_hours":
        return f"{float(value):.1f} h"
    if feature == "agent_win_rate":
        return f"{100 * float(value):.0f}%"
    if feature in _WORDED:
        return str(value).replace("_", " ").lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def factor_sentence(c: Contribution) -> str:
    label = DESCRIPTIONS.get(c.feature, (c.feature, ""))[0]
    effect = "raises" if c.shap > 0 else "lowers"
    return f"{label} {c.value} {effect} the conversion odds ({c.shap:+.2f} log-odds)"


def shap_frame(model: CatBoostClassifier, frame: pl.DataFrame) -> tuple[np.ndarray, float]:
    """(SHAP values, one row per lead and one column per FEATURES; expected log-odds)."""
    pool = Pool(model_input(frame), cat_features=list(CATEGORICAL))
    values = np.asarray(model.get_feature_importance(type="ShapValues", data=pool))
    return values[:, :-1], float(values[0, -1])


def explain_frame(
    model: CatBoostClassifier, frame: pl.DataFrame, row: MlModel
) -> list[Explanation]:
    """One explanation per row of a `feature_frame` (empty frame: none)."""
    if frame.height == 0:
        return []
    assert row.id is not None
    shap, expected = shap_frame(model, frame)
    columns = {name: frame[name].to_list() for name in FEATURES}
    found = []
    for i, lead_id in enumerate(frame["lead_id"].to_list()):
        contributions = tuple(
            Contribution(name, readable(name, columns[name][i]), float(shap[i, j]))
            for j, name in enumerate(FEATURES)
        )
        found.append(Explanation(lead_id, row.id, row.version, expected, contributions))
    return found


async def explain_leads(
    db: Database, workspace_id: int, leads: Sequence[Lead], *, model: MlModel | None = None
) -> dict[int, Explanation]:
    """Explanations of `leads` (the workspace's rows, in hand) by `model`, or by the version
    serving each lead (champion, or the challenger for its A/B share); leads without a model
    are left out. One feature frame for all the leads, one SHAP call per version."""
    unique = list({lead.id: lead for lead in leads if lead.id is not None}.values())
    if not unique:
        return {}
    ids = [lead.id for lead in unique if lead.id is not None]
    groups: dict[int, tuple[MlModel, list[int]]] = {}
    if model is not None:
        assert model.id is not None
        groups[model.id] = (model, ids)
    else:
        async with db.session() as session:
            champion, challenger = await registry.serving_models(session, workspace_id)
        for lead_id in ids:
            serving = registry.route(lead_id, champion, challenger)
            if serving is not None and serving.id is not None:
                groups.setdefault(serving.id, (serving, []))[1].append(lead_id)
    if not groups:
        return {}
    frame = await feature_frame(db, workspace_id, lead_ids=ids)
    models = [
        (row, await registry.load_classifier(db, workspace_id, row.id or 0, row.version), members)
        for row, members in groups.values()
    ]

    def run() -> list[Explanation]:
        found: list[Explanation] = []
        for row, loaded, members in models:
            part = frame if len(models) == 1 else frame.filter(pl.col("lead_id").is_in(members))
            found.extend(explain_frame(loaded, part, row))
        return found

    return {e.lead_id: e for e in await asyncio.to_thread(run)}


def shap_summary(explanations: Sequence[Explanation]) -> dict[str, float]:
    """Mean |SHAP| per feature over the explanations (0 for each feature when there are none)."""
    if not explanations:
        return dict.fromkeys(FEATURES, 0.0)
    matrix = np.array([[c.shap for c in e.contributions] for e in explanations])
    return dict(zip(FEATURES, map(float, np.abs(matrix).mean(axis=0)), strict=True))
