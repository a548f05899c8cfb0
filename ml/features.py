"""The lead feature frame, built from Postgres with polars: one code path for training and scoring.

Every feature is what was known at the lead's cut-off (creation + 14 days, or now if sooner):
stage changes, meetings and showings, and whole-lifetime counts would leak the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from models.db import Database, copy_frame
from models.errors import Validator

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

# feature -> (short label for sentences, description): documentation for `features` and
# the explanations' decision factors
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "timeline": ("Timeline", "When the lead wants to buy"),
    "property_type": ("Property type", "The kind of property the lead is looking for"),
    "location": ("Location", "The market (city) the lead is looking in"),
    "source": ("Source", "The channel the lead came from"),
    "agent": ("Agent", "The agent the lead is assigned to (id)"),
    "log_budget": ("Budget", "log(1 + budget in USD); missing when no budget was given"),
    "emails_opened": ("Emails opened", f"Emails opened in the first {WINDOW.days} days"),
    "emails_replied": ("Email replies", f"Emails replied to in the first {WINDOW.days} days"),
    "calls": ("Calls", f"Calls with the lead in the first {WINDOW.days} days"),
    "website_visits": ("Website visits", f"Website visits in the first {WINDOW.days} days"),
    "first_response_hours": (
        "First response",
        f"Hours from creation to the first call or email, capped at {WINDOW.days} days",
    ),
    "agent_closed_before": (
        "Agent's closed leads",
        "Leads the assigned agent had closed (won or lost) before this lead arrived",
    ),
    "agent_win_rate": (
        "Agent's win rate",
        f"Share won of the agent's earlier closed leads; missing below {MIN_AGENT_CLOSED} closed",
    ),
}

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

# Leads whose window has passed take their engagement from the rollup `lead_engagement`
# (kept by triggers, final once the window is over); the others are aggregated by _ENGAGEMENT.
_ENGAGEMENT_ROLLUP = """
SELECT g.lead_id, g.emails_opened, g.emails_replied, g.calls, g.website_visits,
       extract(epoch FROM g.first_response_at - l.created_at) / 3600.0 AS first_response_hours
FROM lead l
JOIN lead_engagement g ON g.workspace_id = l.workspace_id AND g.lead_id = l.id
WHERE l.workspace_id = :ws AND l.created_at <= :as_of {where}
  AND l.created_at <= :windows_closed_before
"""
_WINDOW_OPEN = " AND l.created_at > :windows_closed_before"

# A close is a stage change to WON or LOST; the event's `agent_id` is the lead's agent at the
# time (partial index ix_lead_event_close). Only closes strictly before a lead's creation
# count for it, so the closes before the newest lead's creation are all a batch needs.
_IS_CLOSE = "c.type = 'STAGE_CHANGE' AND c.to_stage IN ('WON', 'LOST') AND c.agent_id IS NOT NULL"

_CLOSES = f"""
SELECT c.agent_id, c.occurred_at AS closed_at, (c.to_stage = 'WON') AS won
FROM lead_event c
WHERE c.workspace_id = :ws AND {_IS_CLOSE} AND c.occurred_at < :before
"""

# A few leads (online scoring, explanations): one call of the database function
# lead_features_few() (migration 0009: engagement by the lead's index, the agent's record from
# the per-day rollup `agent_close_day` plus the closes of the lead's own day), whose plan is
# kept per connection. Same columns as FEW_SCHEMA.
FEW_LEADS = """
SELECT * FROM lead_features_few(:ws, :ids, :as_of, :window, :labelled_before)
"""
# up to this many ids take the one-query path
FEW = 100

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
# the columns of FEW_LEADS: a lead, its engagement counts and its agent's record
FEW_SCHEMA = {
    **_LEAD_SCHEMA,
    **{k: v for k, v in _ENGAGEMENT_SCHEMA.items() if k != "lead_id"},
    "agent_closed_before": pl.Int64,
    "agent_won_before": pl.Int64,
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


@dataclass(frozen=True, slots=True)
class DataSource:
    """Which leads a training learns from (seed 003 `dataSource`): those created in
    [created_from, created_before), either end open when None."""

    created_from: datetime | None = None
    created_before: datetime | None = None

    @classmethod
    def of(cls, created_from: datetime | None, created_before: datetime | None) -> DataSource:
        """A time without a zone is UTC (`validate` before use)."""

        def aware(at: datetime | None) -> datetime | None:
            return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)

        return cls(aware(created_from), aware(created_before))

    def validate(self) -> None:
        v = Validator()
        v.check(
            self.created_from is None
            or self.created_before is None
            or self.created_from < self.created_before,
            "dataSource.createdBefore",
            "must be after createdFrom",
        )
        v.raise_if_any("Invalid data source")

    @property
    def sql(self) -> str:
        """The condition on `lead l` (its parameters: `params()`)."""
        return "".join(
            (
                "" if self.created_from is None else " AND l.created_at >= :created_from",
                "" if self.created_before is None else " AND l.created_at < :created_before",
            )
        )

    def params(self) -> dict[str, datetime]:
        found = {"created_from": self.created_from, "created_before": self.created_before}
        return {k: v for k, v in found.items() if v is not None}

    def payload(self) -> dict[str, str] | None:
        """JSON for a job payload and the version's record; None for every lead."""
        found = {
            "createdFrom": None if self.created_from is None else self.created_from.isoformat(),
            "createdBefore": None
            if self.created_before is None
            else self.created_before.isoformat(),
        }
        kept = {k: v for k, v in found.items() if v is not None}
        return kept or None

    @classmethod
    def from_payload(cls, data: Mapping[str, str] | None) -> DataSource:
        data = data or {}

        def at(key: str) -> datetime | None:
            value = data.get(key)
            return None if value is None else datetime.fromisoformat(value)

        return cls(at("createdFrom"), at("createdBefore"))


ALL_LEADS = DataSource()


async def feature_frame(
    db: Database,
    workspace_id: int,
    *,
    lead_ids: Sequence[int] | None = None,
    labelled_only: bool = False,
    as_of: datetime | None = None,
    source: DataSource = ALL_LEADS,
) -> pl.DataFrame:
    """Features of a workspace's leads (all, or `lead_ids`), as known at `as_of` (default now).

    Columns: lead_id, created_at, label (1/0 once the outcome is known, else null), FEATURES;
    rows in creation order. `labelled_only` keeps the leads a model can learn from, of
    `source` (a bulk read only). Up to FEW ids cost one query; more cost three (leads,
    engagement, the agents' closes).
    """
    as_of = as_of or await _now(db)
    where = (
        "AND l.created_at <= :labelled_before AND l.stage IN ('WON', 'LOST')" + source.sql
        if labelled_only
        else ""
    )
    params: dict[str, Any] = {
        **(source.params() if labelled_only else {}),
        "ws": workspace_id,
        "as_of": as_of,
        "window": WINDOW,
        "labelled_before": as_of - LABEL_AGE,
        # leads created up to here have their whole engagement window behind them
        "windows_closed_before": as_of - WINDOW,
    }
    if lead_ids is not None:
        assert source == ALL_LEADS, "a data source picks leads of a bulk read"
        params["ids"] = list(lead_ids)
        if len(params["ids"]) <= FEW:
            labelled_before = params["labelled_before"] if labelled_only else None
            few = {**params, "labelled_before": labelled_before}
            rows = await _frame(db, FEW_LEADS, few, FEW_SCHEMA, ids=True)
            return few_features(rows, as_of=as_of)
        where += " AND l.id = ANY(:ids)"
    arrays = ("ids",) if lead_ids is not None else ()
    # closes strictly before a lead's creation count for it: those up to as_of cover them all
    params["before"] = as_of
    # four reads at once, on connections of their own: Postgres works on them in parallel
    leads, closed_windows, open_windows, closes = await asyncio.gather(
        copy_frame(db, _LEADS.format(where=where), params, _LEAD_SCHEMA, array_params=arrays),
        copy_frame(
            db,
            _ENGAGEMENT_ROLLUP.format(where=where),
            params,
            _ENGAGEMENT_SCHEMA,
            array_params=arrays,
        ),
        copy_frame(
            db,
            _ENGAGEMENT.format(where=where + _WINDOW_OPEN),
            params,
            _ENGAGEMENT_SCHEMA,
            array_params=arrays,
        ),
        copy_frame(db, _CLOSES, params, _CLOSES_SCHEMA),
    )
    engagement = pl.concat([closed_windows, open_windows])
    return build_features(leads, engagement, closes, as_of=as_of)


def build_features(
    leads: pl.DataFrame, engagement: pl.DataFrame, closes: pl.DataFrame, *, as_of: datetime
) -> pl.DataFrame:
    """The pure half of `feature_frame`: raw rows in, one model-ready row per lead out.
    `closes` must hold every close of the leads' agents before the newest lead's creation."""
    frame = _base(leads.join(engagement, on="lead_id", how="left"), as_of)
    return _finish(_with_agent_history(frame, closes))


def few_features(rows: pl.DataFrame, *, as_of: datetime) -> pl.DataFrame:
    """Model-ready rows from FEW_LEADS rows (FEW_SCHEMA): the agent record is counted already."""
    return _finish(_with_win_rate(_base(rows, as_of)))


def _base(leads: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Label, budget and agent columns; engagement gaps filled; categoricals never null."""
    known = pl.col("created_at") <= pl.lit(as_of - LABEL_AGE)
    return leads.with_columns(
        label=pl.when(known & pl.col("stage").is_in(["WON", "LOST"]))
        .then((pl.col("stage") == "WON").cast(pl.Int8))
        .otherwise(None),
        log_budget=pl.col("budget").cast(pl.Float64).log1p(),
        agent=pl.col("agent_id").cast(pl.String),
        emails_opened=pl.col("emails_opened").fill_null(0),
        emails_replied=pl.col("emails_replied").fill_null(0),
        calls=pl.col("calls").fill_null(0),
        website_visits=pl.col("website_visits").fill_null(0),
        first_response_hours=pl.col("first_response_hours")
        .fill_null(RESPONSE_CAP_HOURS)
        .clip(0.0, RESPONSE_CAP_HOURS),
    ).with_columns(
        # CatBoost refuses nulls in categorical columns
        pl.col(*CATEGORICAL).fill_null(MISSING),
    )


def _finish(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("created_at", "lead_id").select("lead_id", "created_at", "label", *FEATURES)


def _with_win_rate(frame: pl.DataFrame) -> pl.DataFrame:
    closed = pl.col("agent_closed_before").fill_null(0)
    return frame.with_columns(
        agent_closed_before=closed,
        agent_win_rate=pl.when(closed >= MIN_AGENT_CLOSED)
        .then(pl.col("agent_won_before") / closed)
        .otherwise(None),
    )


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
    joined = frame.sort("created_at").join_asof(
        history,
        left_on="created_at",
        right_on="closed_at",
        by="agent_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    return _with_win_rate(joined)
