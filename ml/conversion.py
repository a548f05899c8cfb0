"""Conversion predictions: probability and key factors from the serving model's explanation,
deal value and timing from the workspace's won leads.

- estimated value: the lead's own `value` (the deal value once won, the agreed estimate
  before) when set; else its budget times the median value/budget ratio of the workspace's
  won deals; else the median won deal value.
- timing: the won leads "like it" are those with the same timeline (when at least
  MIN_SIMILAR of them won), else all won leads. Among those that were still open at the
  lead's age `a` (days from creation to WON above `a`): expected days to conversion = their
  median days minus `a`; the chance of converting within the timeframe = the model's
  probability times the share of them that won by `a + timeframe` days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import sqlalchemy as sa

from ml.explain import Explanation
from ml.scoring import confidence_of
from models.db import Database
from models.leads import Lead

MIN_SIMILAR = 30
MAX_IDS = 100

_WON = """
SELECT timeline, value, budget,
       extract(epoch FROM converted_at - created_at) / 86400.0 AS days
FROM lead
WHERE workspace_id = :ws AND stage = 'WON' AND converted_at IS NOT NULL
  AND converted_at >= created_at
"""


@dataclass(frozen=True, slots=True)
class WonLeads:
    """The workspace's won deals, summarised once per request."""

    now: datetime
    days: np.ndarray  # days from creation to WON, every won lead
    days_by_timeline: dict[str | None, np.ndarray]
    value_ratio: float | None  # median value / budget of the won deals with both
    median_value: float | None

    def similar(self, timeline: str | None) -> np.ndarray:
        """Days from creation to WON of the won leads like one with this timeline."""
        same = self.days_by_timeline.get(timeline)
        return same if same is not None and same.size >= MIN_SIMILAR else self.days


async def won_leads(db: Database, workspace_id: int) -> WonLeads:
    async with db.session() as session:
        now: datetime = (await session.execute(sa.text("SELECT now()"))).scalar_one()
        rows = (await session.execute(sa.text(_WON), {"ws": workspace_id})).all()
    frame = pl.DataFrame(
        [tuple(r) for r in rows],
        schema={"timeline": pl.String, "value": pl.Int64, "budget": pl.Int64, "days": pl.Float64},
        orient="row",
    )
    priced = frame.filter(pl.col("budget") > 0, pl.col("value").is_not_null())
    ratio = priced.select((pl.col("value") / pl.col("budget")).median()).item()
    median_value = frame.select(pl.col("value").median()).item()
    return WonLeads(
        now=now,
        days=frame["days"].to_numpy(),
        days_by_timeline={
            key[0]: part["days"].to_numpy()
            for key, part in frame.partition_by("timeline", as_dict=True).items()
        },
        value_ratio=None if ratio is None else float(ratio),
        median_value=None if median_value is None else float(median_value),
    )


@dataclass(frozen=True, slots=True)
class ConversionPrediction:
    lead_id: int
    explanation: Explanation
    probability: float
    confidence: float
    estimated_value: float | None
    expected_days: float | None  # from now; None: no won lead was still open at this age
    within_timeframe: float


def predict(
    lead: Lead, explanation: Explanation, won: WonLeads, timeframe_days: int
) -> ConversionPrediction:
    """One lead's prediction (see the module docstring)."""
    assert lead.id is not None
    p = explanation.probability
    if lead.value is not None:
        value: float | None = float(lead.value)
    elif lead.budget is not None and won.value_ratio is not None:
        value = lead.budget * won.value_ratio
    else:
        value = won.median_value
    age = max((won.now - lead.created_at).total_seconds() / 86400, 0.0)
    days = won.similar(lead.timeline)
    still_open = days[days > age]
    if still_open.size:
        expected: float | None = float(np.median(still_open)) - age
        share = float(np.mean(still_open <= age + timeframe_days))
    else:
        expected, share = None, 0.0
    return ConversionPrediction(
        lead_id=lead.id,
        explanation=explanation,
        probability=p,
        confidence=float(confidence_of(np.array([p]))[0]),
        estimated_value=value,
        expected_days=expected,
        within_timeframe=p * share,
    )


def predict_all(
    leads: Sequence[Lead], explanations: dict[int, Explanation], won: WonLeads, timeframe: int
) -> list[ConversionPrediction]:
    """Predictions in the order of `leads`; leads without a serving model are left out."""
    return [
        predict(lead, explanations[lead.id], won, timeframe)
        for lead in leads
        if lead.id in explanations
    ]
