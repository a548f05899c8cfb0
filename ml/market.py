"""Market insights (seed 003 "Get Market Insights"): budget and price trends, demand, days to
close and conversion over a timeframe against the one before it, from the viewer's leads.

Windows: `current` is [now - T, now), `previous` is [now - 2T, now - T). A change is
(current - previous) / previous, null when there is nothing to compare with. A lead closes when
it reaches WON (`converted_at`) or LOST (its last event moving it there).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.db import copy_select, utcnow
from models.errors import BadUserInput
from models.leads import CurrentScore, Lead, LeadEvent, LeadStage, leads_query
from models.periods import PERIODS, change
from models.scope import Scope

# timeframes a market trend makes sense over, and the bucket (polars duration) of its series
TIMEFRAMES: dict[str, str] = {"D7": "1d", "D30": "1w", "D90": "1w", "Y1": "1mo"}
# a change of demand beyond +-10% is called HIGH / LOW demand
DEMAND_BAND = 0.10
# a price or days-to-close move beyond +-3% / +15% earns a recommendation
PRICE_MOVE = 0.03
CLOSE_TIME_MOVE = 0.15
UNSPECIFIED = "UNSPECIFIED"

CREATED_SCHEMA: dict[str, Any] = {
    "lead_id": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
    "budget": pl.Int64,
    "source": pl.String,
    "location": pl.String,
    "property_type": pl.String,
    "score": pl.Int64,
}
CLOSED_SCHEMA: dict[str, Any] = {
    "lead_id": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
    "closed_at": pl.Datetime("us", "UTC"),
    "won": pl.Boolean,
    "value": pl.Int64,
    "source": pl.String,
    "location": pl.String,
    "property_type": pl.String,
}


def confidence(n: int) -> float:
    """How far a number from `n` observations can be trusted, 0..1: 1 - 1/sqrt(n) (0 for none).
    10 leads give 0.68, 100 give 0.90, 1,000 give 0.97 (the standard error shrinks as 1/sqrt n)."""
    return 0.0 if n <= 0 else 1.0 - 1.0 / math.sqrt(n)


def window_length(name: str, *, field_name: str, allowed: tuple[str, ...]) -> timedelta:
    if name not in allowed:
        raise BadUserInput(
            f"`{field_name}` must be one of {', '.join(allowed)}",
            fields={field_name: f"one of {', '.join(allowed)}"},
        )
    return PERIODS[name]


@dataclass(frozen=True, slots=True)
class Windows:
    start: datetime  # of the previous window
    middle: datetime  # end of the previous, start of the current
    end: datetime


def windows(length: timedelta, now: datetime | None = None) -> Windows:
    end = now or utcnow()
    return Windows(end - 2 * length, end - length, end)


async def window_rows(
    session: AsyncSession,
    scope: Scope,
    w: Windows,
    *,
    location: str | None = None,
    property_type: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(leads created in [start, end), leads closed in [start, end)) the viewer may see."""
    filters: list[Any] = [scope.leads(Lead)]
    if location is not None:
        filters.append(sa.func.lower(col(Lead.location)) == location.strip().lower())
    if property_type is not None:
        filters.append(col(Lead.property_type) == property_type)
    created_query: Any = leads_query(
        col(Lead.id),
        col(Lead.created_at),
        col(Lead.budget),
        col(Lead.source),
        col(Lead.location),
        col(Lead.property_type),
        col(CurrentScore.value).label("score"),
        scored=True,
    ).where(*filters, col(Lead.created_at) >= w.start, col(Lead.created_at) < w.end)
    # LOST has no timestamp column: the newest event that moved the lead there, in the windows
    lost_at = (
        sa.select(col(LeadEvent.lead_id), sa.func.max(col(LeadEvent.occurred_at)).label("at"))
        .where(
            col(LeadEvent.workspace_id) == scope.workspace_id,
            # inline, so that ix_lead_event_lost's predicate matches in any plan
            col(LeadEvent.to_stage) == sa.literal(LeadStage.LOST.value, literal_execute=True),
            col(LeadEvent.occurred_at) >= w.start,
            col(LeadEvent.occurred_at) < w.end,
        )
        .group_by(col(LeadEvent.lead_id))
        .subquery()
    )
    closed_at = sa.case(
        (col(Lead.stage) == LeadStage.WON, col(Lead.converted_at)), else_=lost_at.c.at
    )
    closed_query = (
        sa.select(
            col(Lead.id),
            col(Lead.created_at),
            closed_at.label("closed_at"),
            (col(Lead.stage) == LeadStage.WON).label("won"),
            col(Lead.value),
            col(Lead.source),
            col(Lead.location),
            col(Lead.property_type),
        )
        .select_from(Lead)
        .outerjoin(lost_at, sa.and_(lost_at.c.lead_id == col(Lead.id)))
        .where(
            *filters,
            sa.or_(
                sa.and_(
                    col(Lead.stage) == LeadStage.WON,
                    col(Lead.converted_at) >= w.start,
                    col(Lead.converted_at) < w.end,
                ),
                sa.and_(col(Lead.stage) == LeadStage.LOST, lost_at.c.at.is_not(None)),
            ),
        )
    )
    # read with COPY: a year's window is ~1M rows on a large workspace (10 s row by row)
    return (
        await copy_select(session, created_query, CREATED_SCHEMA),
        await copy_select(session, closed_query, CLOSED_SCHEMA),
    )


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrendPoint:
    period_start: datetime
    count: int
    median: float | None
    average: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One number over the current window against the previous one."""

    current: float | None
    previous: float | None
    change: float | None
    current_count: int
    previous_count: int

    @property
    def confidence(self) -> float:
        return confidence(min(self.current_count, self.previous_count))


@dataclass(frozen=True, slots=True)
class Trend:
    points: list[TrendPoint]
    median: Comparison
    average: Comparison


@dataclass(frozen=True, slots=True)
class Share:
    key: str
    count: int
    share: float


@dataclass(frozen=True, slots=True)
class Demand:
    points: list[TrendPoint]
    new_leads: Comparison
    level: str | None  # HIGH / NORMAL / LOW, null without a previous window to compare
    by_property_type: list[Share]
    by_location: list[Share]


@dataclass(frozen=True, slots=True)
class MarketRecommendation:
    type: str  # PRICING / MARKETING / OPERATIONS
    action: str
    reason: str
    confidence: float


@dataclass(frozen=True, slots=True)
class MarketInsights:
    timeframe: str
    window_start: datetime
    window_end: datetime
    bucket: str
    budget: Trend
    price: Trend
    demand: Demand
    days_to_close: Comparison
    conversion_rate: Comparison
    recommendations: list[MarketRecommendation] = field(default_factory=list)


# ---- computation (pure) ----------------------------------------------------------------------


def _split(frame: pl.DataFrame, at: str, w: Windows) -> tuple[pl.DataFrame, pl.DataFrame]:
    current = frame.filter(pl.col(at) >= w.middle, pl.col(at) < w.end)
    previous = frame.filter(pl.col(at) >= w.start, pl.col(at) < w.middle)
    return current, previous


def _stat(frame: pl.DataFrame, column: str, how: str) -> float | None:
    values = frame[column].drop_nulls()
    if values.len() == 0:
        return None
    value = values.median() if how == "median" else values.mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


def _compare(current: pl.DataFrame, previous: pl.DataFrame, column: str, how: str) -> Comparison:
    now, before = _stat(current, column, how), _stat(previous, column, how)
    return Comparison(
        now,
        before,
        change(now, before),
        current[column].drop_nulls().len(),
        previous[column].drop_nulls().len(),
    )


def _series(frame: pl.DataFrame, at: str, column: str, bucket: str) -> list[TrendPoint]:
    if frame.height == 0:
        return []
    grouped = (
        frame.group_by(pl.col(at).dt.truncate(bucket).alias("period_start"))
        .agg(
            count=pl.col(column).drop_nulls().len(),
            median=pl.col(column).median(),
            average=pl.col(column).mean(),
        )
        .sort("period_start")
    )
    return [
        TrendPoint(
            row["period_start"],
            int(row["count"]),
            None if row["median"] is None else float(row["median"]),
            None if row["average"] is None else float(row["average"]),
        )
        for row in grouped.iter_rows(named=True)
    ]


def _shares(frame: pl.DataFrame, column: str) -> list[Share]:
    if frame.height == 0:
        return []
    counts = (
        frame.select(pl.col(column).fill_null(UNSPECIFIED))
        .group_by(column)
        .len()
        .sort(["len", column], descending=[True, False])
    )
    total = frame.height
    return [Share(key, int(n), n / total) for key, n in counts.iter_rows()]


def _count_comparison(current: int, previous: int) -> Comparison:
    return Comparison(float(current), float(previous), change(current, previous), current, previous)


def market_trends(
    created: pl.DataFrame, closed: pl.DataFrame, w: Windows, timeframe: str
) -> MarketInsights:
    """Every market number from the two frames of `window_rows`."""
    bucket = TIMEFRAMES[timeframe]
    created_now, created_before = _split(created, "created_at", w)
    closed_now, closed_before = _split(closed, "closed_at", w)
    won_now = closed_now.filter(pl.col("won"))
    won_before = closed_before.filter(pl.col("won"))

    def days(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            days=(pl.col("closed_at") - pl.col("created_at")).dt.total_seconds() / 86_400
        )

    def win_rate(frame: pl.DataFrame) -> float | None:
        return None if frame.height == 0 else float(frame["won"].sum()) / frame.height

    rate_now, rate_before = win_rate(closed_now), win_rate(closed_before)
    new_leads = _count_comparison(created_now.height, created_before.height)
    level = None
    if new_leads.change is not None:
        level = (
            "HIGH"
            if new_leads.change >= DEMAND_BAND
            else "LOW"
            if new_leads.change <= -DEMAND_BAND
            else "NORMAL"
        )
    demand = Demand(
        points=[
            TrendPoint(p.period_start, p.count, None, None)
            for p in _series(created_now, "created_at", "lead_id", bucket)
        ],
        new_leads=new_leads,
        level=level,
        by_property_type=_shares(created_now, "property_type"),
        by_location=_shares(created_now, "location"),
    )
    price = Trend(
        _series(won_now, "closed_at", "value", bucket),
        _compare(won_now, won_before, "value", "median"),
        _compare(won_now, won_before, "value", "mean"),
    )
    result = MarketInsights(
        timeframe=timeframe,
        window_start=w.middle,
        window_end=w.end,
        bucket=bucket,
        budget=Trend(
            _series(created_now, "created_at", "budget", bucket),
            _compare(created_now, created_before, "budget", "median"),
            _compare(created_now, created_before, "budget", "mean"),
        ),
        price=price,
        demand=demand,
        days_to_close=_compare(days(won_now), days(won_before), "days", "median"),
        conversion_rate=Comparison(
            rate_now,
            rate_before,
            change(rate_now, rate_before),
            closed_now.height,
            closed_before.height,
        ),
    )
    result.recommendations.extend(recommend(result))
    return result


def recommend(m: MarketInsights) -> list[MarketRecommendation]:
    """Rules over the numbers (thresholds above); each one's confidence is that of its sample."""
    out: list[MarketRecommendation] = []
    price, demand, close = m.price.median, m.demand.new_leads, m.days_to_close
    if price.change is not None and price.change >= PRICE_MOVE:
        out.append(
            MarketRecommendation(
                "PRICING",
                "Price toward the upper end of recent deals",
                f"Median won deal value up {price.change:.1%} "
                f"({price.current_count} deals against {price.previous_count})",
                price.confidence,
            )
        )
    elif price.change is not None and price.change <= -PRICE_MOVE:
        out.append(
            MarketRecommendation(
                "PRICING",
                "Set expectations for negotiation on price",
                f"Median won deal value down {-price.change:.1%} "
                f"({price.current_count} deals against {price.previous_count})",
                price.confidence,
            )
        )
    if demand.change is not None and demand.change >= DEMAND_BAND:
        out.append(
            MarketRecommendation(
                "MARKETING",
                "Focus on urgent buyer messaging and fast follow-up",
                f"New leads up {demand.change:.1%} ({demand.current_count:.0f} against "
                f"{demand.previous_count:.0f})",
                demand.confidence,
            )
        )
    elif demand.change is not None and demand.change <= -DEMAND_BAND:
        out.append(
            MarketRecommendation(
                "MARKETING",
                "Increase lead generation on the best converting sources",
                f"New leads down {-demand.change:.1%} ({demand.current_count:.0f} against "
                f"{demand.previous_count:.0f})",
                demand.confidence,
            )
        )
    if close.change is not None and close.change >= CLOSE_TIME_MOVE:
        out.append(
            MarketRecommendation(
                "OPERATIONS",
                "Review stalled deals: closing takes longer",
                f"Median days to close up {close.change:.1%} "
                f"({close.previous or 0:.0f} -> {close.current or 0:.0f} days)",
                close.confidence,
            )
        )
    return out


async def market_insights(
    session: AsyncSession,
    scope: Scope,
    *,
    location: str | None = None,
    property_type: str | None = None,
    timeframe: str = "D30",
    now: datetime | None = None,
) -> MarketInsights:
    """Market numbers over the leads the viewer may see; filters are optional and an unknown
    location simply matches nothing (zeros and empty series, not an error)."""
    length = window_length(timeframe, field_name="timeframe", allowed=tuple(TIMEFRAMES))
    if location is not None and len(location) > 120:
        raise BadUserInput("Invalid location", fields={"location": "at most 120 characters"})
    w = windows(length, now)
    created, closed = await window_rows(
        session, scope, w, location=location, property_type=property_type
    )
    return await asyncio.to_thread(market_trends, created, closed, w, timeframe)
