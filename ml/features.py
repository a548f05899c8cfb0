"""The lead feature frame, built from Postgres with polars: one code path for training and scoring.

Every feature is what was known at the lead's cut-off (creation + 14 days, or now if sooner):
stage changes, meetings and showings, and whole-lifetime counts would leak the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from models.db import Database

# engagement is counted in this window after creation, whatever the lead's age
WINDOW = timedelta(days=14)
# a lead's outcome (WON or LOST) counts as known once it is this old
LABEL_AGE = timedelta(days=180)
# no first contact inside the window counts as the whole window
RESPONSE_CAP_HOURS = WINDOW.total_seconds() / 3600
# an agent's win rate is only a feature once this many of their leads had closed
MIN_AGENT_CLOSED = 5

CATEGORICAL: tuple[str, ...] = (
    "timeline",
    "property_type",
    "location",
    "source",
    "agent",
)
NUMERIC: tuple[str, ...] = (
    "log_budget",
    "emails_opened",
    "emails_replied",
    "calls",
    "website_visits",
    "first_response_hours",
    "agent_closed_before",
    "agent_win_rate",
)
FEATURES: tuple[str, ...] = CATEGORICAL + NUMERIC
MISSING = "missing"

_LEADS = """
SELECT l.id AS lead_id, l.created_at, l.budget, l.timeline, l.property_type, l.location,
       l.source, l.agent_id, l.stage
FROM lead l
WHERE l.workspace_id = :ws AND l.created_at <= :as_of {where}
ORDER BY l.created_at, l.id
"""

_ENGAGEMENT = """
SELECT e.lead_id,
       count(*) FILTER (WHERE e.type = 'EMAIL_OPENED') AS emails_opened,
       count(*) FILTER (WHERE e.type = 'EMAIL_REPLIED') AS emails_replied,
       count(*) FILTER (WHERE e.type = 'CALL') AS calls,
       count(*) FILTER (WHERE e.type = 'WEBSITE_VISIT') AS website_visits,
       extract(epoch FROM min(e.occurred_at) FILTER (WHERE e.type IN ('CALL', 'EMAIL_SENT'))
               - l.created_at) / 3600.0 AS first_response_hours
FROM lead l
JOIN lead_event e ON e.workspace_id = l.workspace_id AND e.lead_id = l.id
WHERE l.workspace_id = :ws AND l.created_at <= :as_of {where}
  AND e.occurred_at >= l.created_at
  AND e.occurred_at <= least(l.created_at + :window, :as_of)
  AND e.type IN ('EMAIL_OPENED', 'EMAIL_REPLIED', 'CALL', 'WEBSITE_VISIT', 'EMAIL_SENT')
GROUP BY e.lead_id, l.created_at
"""

# when each of an agent's leads closed (the stage change to WON or LOST), up to as_of
_CLOSES = """
SELECT l.agent_id, e.occurred_at AS closed_at, (e.to_stage = 'WON') AS won
FROM lead_event e
JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id
WHERE e.workspace_id = :ws AND e.type = 'STAGE_CHANGE' AND e.to_stage IN ('WON', 'LOST')
  AND l.agent_id IS NOT NULL AND e.occurred_at <= :as_of
"""

_LEAD_SCHEMA = {
    "lead_id": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
    "budget": pl.Int64,
    "timeline": pl.String,
    "property_type": pl.String,
    "location": pl.String,
    "source": pl.String,
    "agent_id": pl.Int64,
    "stage": pl.String,
}
_ENGAGEMENT_SCHEMA = {
    "lead_id": pl.Int64,
    "emails_opened": pl.Int64,
    "emails_replied": pl.Int64,
    "calls": pl.Int64,
    "website_visits": pl.Int64,
    "first_response_hours": pl.Float64,
}
_CLOSES_SCHEMA = {"agent_id": pl.Int64, "closed_at": pl.Datetime("us", "UTC"), "won": pl.Boolean}


async def _frame(
    db: Database, sql: str, params: dict[str, Any], schema: dict[str, Any], *, ids: bool
) -> pl.DataFrame:
    statement = sa.text(sql)
    if ids:
        statement = statement.bindparams(sa.bindparam("ids", type_=ARRAY(sa.BigInteger)))
    async with db.session() as session:
        result = await session.execute(statement, params)
        rows = [tuple(row) for row in result.all()]
    return pl.DataFrame(rows, schema=schema, orient="row")


async def _now(db: Database) -> datetime:
    async with db.session() as session:
        value: datetime = (await session.execute(sa.text("SELECT now()"))).scalar_one()
    return value


async def feature_frame(
    db: Database,
    workspace_id: int,
    *,
    lead_ids: Sequence[int] | None = None,
    labelled_only: bool = False,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """Features of a workspace's leads (all, or `lead_ids`), as known at `as_of` (default now).

    Columns: lead_id, created_at, label (1/0 once the outcome is known, else null), FEATURES;
    rows in creation order. `labelled_only` keeps the leads a model can learn from.
    """
    as_of = as_of or await _now(db)
    conditions = []
    if lead_ids is not None:
        conditions.append("AND l.id = ANY(:ids)")
    if labelled_only:
        conditions.append("AND l.created_at <= :labelled_before AND l.stage IN ('WON', 'LOST')")
    where = " ".join(conditions)
    params: dict[str, Any] = {
        "ws": workspace_id,
        "as_of": as_of,
        "window": WINDOW,
        "labelled_before": as_of - LABEL_AGE,
    }
    has_ids = lead_ids is not None
    if has_ids:
        params["ids"] = list(lead_ids or [])
    leads = await _frame(db, _LEADS.format(where=where), params, _LEAD_SCHEMA, ids=has_ids)
    engagement = await _frame(
        db, _ENGAGEMENT.format(where=where), params, _ENGAGEMENT_SCHEMA, ids=has_ids
    )
    closes = await _frame(db, _CLOSES, params, _CLOSES_SCHEMA, ids=False)
    return build_features(leads, engagement, closes, as_of=as_of)


def build_features(
    leads: pl.DataFrame, engagement: pl.DataFrame, closes: pl.DataFrame, *, as_of: datetime
) -> pl.DataFrame:
    """The pure half of `feature_frame`: raw rows in, one model-ready row per lead out."""
    known = pl.col("created_at") <= pl.lit(as_of - LABEL_AGE)
    frame = (
        leads.with_columns(
            label=pl.when(known & pl.col("stage").is_in(["WON", "LOST"]))
            .then((pl.col("stage") == "WON").cast(pl.Int8))
            .otherwise(None),
            log_budget=pl.col("budget").cast(pl.Float64).log1p(),
            agent=pl.col("agent_id").cast(pl.String),
        )
        .join(engagement, on="lead_id", how="left")
        .with_columns(
            pl.col("emails_opened", "emails_replied", "calls", "website_visits").fill_null(0),
            pl.col("first_response_hours")
            .fill_null(RESPONSE_CAP_HOURS)
            .clip(0.0, RESPONSE_CAP_HOURS),
            # CatBoost refuses nulls in categorical columns
            pl.col(*CATEGORICAL).fill_null(MISSING),
        )
        .sort("created_at", "lead_id")
    )
    frame = _with_agent_history(frame, closes)
    return frame.select("lead_id", "created_at", "label", *FEATURES)


def _with_agent_history(frame: pl.DataFrame, closes: pl.DataFrame) -> pl.DataFrame:
    """Each lead's agent record from leads closed strictly before the lead was created."""
    history = (
        closes.sort("closed_at")
        .with_columns(
            agent_closed_before=pl.int_range(1, pl.len() + 1).over("agent_id"),
            agent_won_before=pl.col("won").cast(pl.Int64).cum_sum().over("agent_id"),
        )
        .select("agent_id", "closed_at", "agent_closed_before", "agent_won_before")
    )
    joined = frame.join_asof(
        history,
        left_on="created_at",
        right_on="closed_at",
        by="agent_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    closed = pl.col("agent_closed_before").fill_null(0)
    return joined.with_columns(
        agent_closed_before=closed,
        agent_win_rate=pl.when(closed >= MIN_AGENT_CLOSED)
        .then(pl.col("agent_won_before") / closed)
        .otherwise(None),
    )
