"""ML insights (seed 000 "ML Insights & Recommendations"): clusters of similar high-scoring open
leads, segment trends and market moves, each with impact, confidence, its numbers and
recommendations derived from them. Every number comes from the viewer's leads.

Rules (the thresholds are the constants below):
- HIGH_VALUE_CLUSTERS: open leads (not WON/LOST) grouped by location x property type x
  timeline; a group is a cluster when it has at least MIN_CLUSTER_LEADS scored leads and its
  average score is at least CLUSTER_LIFT[0] times that of all open scored leads (its lift).
- SEGMENT_TRENDS: per source, property type and location, this window against the previous
  one: the win rate of leads closed in each (MIN_TREND_SAMPLE closes in both, absolute change
  in points, RATE_STEPS) and the number of new leads (MIN_TREND_SAMPLE in the previous window,
  relative change, VOLUME_STEPS).
- MARKET_TRENDS: the workspace's median budget, median won deal value and new leads, this
  window against the previous one (relative change, MARKET_STEPS; see ml/market.py).
- MODEL_PERFORMANCE (ADMIN only, as `mlAnalytics`): each serving version's alert over the
  current window (`mlAnalytics.alerts`: CRITICAL is HIGH impact, WARNING MEDIUM), and each
  CANDIDATE whose test AUC beats the champion's by AUC_STEPS (absolute).
- OPERATIONAL: open high-value leads (score >= HIGH_VALUE_SCORE) with no activity for IDLE_DAYS
  (their share of the open high-value leads, IDLE_STEPS); and the share of new leads given a
  first response (a call or email sent) within RESPONSE_WITHIN, over the last RESPONSE_SPAN
  (the period when shorter) against the span before (leads at least RESPONSE_WITHIN old;
  MIN_TREND_SAMPLE in both, absolute change, RATE_STEPS): operations move week to week, and a
  year of leads joined to their engagement would cost the field ~0.5 s on a large workspace.
Impact is graded by the same steps: below the first no insight, then LOW, MEDIUM from the
second, HIGH from the third. Confidence is `ml.market.confidence(n)` = 1 - 1/sqrt(n) of the
smallest sample behind the insight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ml import analytics, market, registry
from models.errors import BadUserInput
from models.leads import CurrentScore, Lead, LeadEngagement, LeadStage, leads_query
from models.ml_models import MlModel, ModelStatus
from models.periods import HIGH_VALUE_SCORE
from models.scope import Scope

MAX_INSIGHTS = 50
MIN_CLUSTER_LEADS = 10
MIN_TREND_SAMPLE = 20
CLUSTER_LIFT = (1.2, 1.35, 1.6)  # x workspace average score
RATE_STEPS = (0.05, 0.10, 0.15)  # absolute change of a win rate
VOLUME_STEPS = (0.25, 0.50, 0.75)  # relative change of new leads in a segment
MARKET_STEPS = (0.05, 0.10, 0.15)  # relative change of a market number
AUC_STEPS = (0.005, 0.01, 0.02)  # a candidate's test AUC above the champion's
IDLE_STEPS = (0.10, 0.25, 0.50)  # share of open high-value leads gone idle
IDLE_DAYS = 7
RESPONSE_WITHIN = timedelta(hours=24)
RESPONSE_SPAN = timedelta(days=30)
INSIGHT_TIMEFRAMES = tuple(market.TIMEFRAMES)
SEGMENTS = ("source", "property_type", "location")
_LABELS = {"source": "source", "property_type": "property type", "location": "location"}


class InsightCategory(StrEnum):
    HIGH_VALUE_CLUSTERS = "HIGH_VALUE_CLUSTERS"
    SEGMENT_TRENDS = "SEGMENT_TRENDS"
    MARKET_TRENDS = "MARKET_TRENDS"
    MODEL_PERFORMANCE = "MODEL_PERFORMANCE"
    OPERATIONAL = "OPERATIONAL"


class InsightType(StrEnum):
    OPPORTUNITY = "OPPORTUNITY"
    TREND = "TREND"
    RISK = "RISK"


class Impact(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


_RANK = {Impact.HIGH: 0, Impact.MEDIUM: 1, Impact.LOW: 2}


def grade(magnitude: float, steps: tuple[float, float, float]) -> Impact | None:
    """None below steps[0]; LOW, MEDIUM from steps[1], HIGH from steps[2]."""
    if magnitude >= steps[2]:
        return Impact.HIGH
    if magnitude >= steps[1]:
        return Impact.MEDIUM
    if magnitude >= steps[0]:
        return Impact.LOW
    return None


@dataclass(frozen=True, slots=True)
class Recommendation:
    action: str
    priority: Impact
    reason: str
    # what following it should bring, where the data says (null where it does not)
    expected_impact: str | None = None


@dataclass(frozen=True, slots=True)
class InsightNumbers:
    """The numbers an insight stands on (null where they do not apply)."""

    lead_count: int
    closed_count: int | None = None
    conversion_rate: float | None = None
    average_score: float | None = None
    average_budget: float | None = None
    lift: float | None = None
    baseline: float | None = None  # the workspace's value the segment is compared with
    current: float | None = None
    previous: float | None = None
    change: float | None = None


@dataclass(frozen=True, slots=True)
class Insight:
    id: str
    category: InsightCategory
    type: InsightType
    title: str
    description: str
    impact: Impact
    confidence: float
    numbers: InsightNumbers
    traits: tuple[tuple[str, str], ...]
    recommendations: tuple[Recommendation, ...]


@dataclass(frozen=True, slots=True)
class InsightReport:
    insights: list[Insight]  # the first `limit`, most important first
    total: int
    by_impact: dict[Impact, int]
    by_category: dict[InsightCategory, int]
    leads_analysed: int
    window_start: datetime
    window_end: datetime
    all_insights: list[Insight] = field(default_factory=list, repr=False)


# ---- clusters ----------------------------------------------------------------------------------

SEGMENT_SCHEMA: dict[str, Any] = {
    "location": pl.String,
    "property_type": pl.String,
    "timeline": pl.String,
    "leads": pl.Int64,
    "open_scored": pl.Int64,
    "score_sum": pl.Int64,
    "budget_sum": pl.Int64,
    "budget_count": pl.Int64,
    "won": pl.Int64,
    "lost": pl.Int64,
}


def _int_sum(column: Any, where: Any) -> Any:
    # sum(bigint) is numeric in Postgres (Decimal in Python): keep it an integer
    return sa.cast(sa.func.coalesce(sa.func.sum(column).filter(where), 0), sa.BigInteger)


async def segment_rows(session: AsyncSession, scope: Scope) -> pl.DataFrame:
    """Per location x property type x timeline: the viewer's leads, open scored leads (their
    score and budget sums) and closed outcomes; one GROUP BY, a few hundred rows."""
    is_open = col(Lead.stage).not_in([LeadStage.WON, LeadStage.LOST])
    open_scored = sa.and_(is_open, col(CurrentScore.value).is_not(None))
    with_budget = sa.and_(open_scored, col(Lead.budget).is_not(None))
    query = (
        leads_query(
            col(Lead.location),
            col(Lead.property_type),
            col(Lead.timeline),
            sa.func.count(),
            sa.func.count().filter(open_scored),
            _int_sum(col(CurrentScore.value), open_scored),
            _int_sum(col(Lead.budget), with_budget),
            sa.func.count().filter(with_budget),
            sa.func.count().filter(col(Lead.stage) == LeadStage.WON),
            sa.func.count().filter(col(Lead.stage) == LeadStage.LOST),
            scored=True,
        )
        .where(scope.leads(Lead))
        .group_by(col(Lead.location), col(Lead.property_type), col(Lead.timeline))
    )
    rows = [tuple(r) for r in (await session.execute(query)).all()]
    return pl.DataFrame(rows, schema=SEGMENT_SCHEMA, orient="row")


def _words(value: str) -> str:
    return value.replace("_", " ").lower()


def _segment_text(dimension: str, value: str) -> str:
    """`source referral`, `property type single family`, `location Austin, TX`."""
    return f"{_LABELS[dimension]} {value if dimension == 'location' else _words(value)}"


def clusters(segments: pl.DataFrame) -> list[Insight]:
    total_scored = int(segments["open_scored"].sum())
    if total_scored == 0:
        return []
    baseline = float(segments["score_sum"].sum()) / total_scored
    won = int(segments["won"].sum())
    closed = won + int(segments["lost"].sum())
    base_rate = won / closed if closed else None
    found = (
        segments.drop_nulls(["location", "property_type", "timeline"])
        .filter(pl.col("open_scored") >= MIN_CLUSTER_LEADS)
        .with_columns(average_score=pl.col("score_sum") / pl.col("open_scored"))
        .with_columns(lift=pl.col("average_score") / baseline)
        .filter(pl.col("lift") >= CLUSTER_LIFT[0])
    )
    out: list[Insight] = []
    for row in found.iter_rows(named=True):
        impact = grade(row["lift"], CLUSTER_LIFT)
        assert impact is not None  # filtered above
        n = int(row["open_scored"])
        seg_closed = int(row["won"] + row["lost"])
        rate = row["won"] / seg_closed if seg_closed else None
        budget = row["budget_sum"] / row["budget_count"] if row["budget_count"] else None
        location, kind, timeline = row["location"], row["property_type"], row["timeline"]
        recommendations = [
            Recommendation(
                f"Work these {n} open leads first and assign them to your best agents",
                impact,
                f"Average score {row['average_score']:.1f} against {baseline:.1f} across open "
                f"leads ({row['lift']:.2f}x)",
                None
                if rate is None
                else f"About {round(n * rate)} wins if they close as their {seg_closed} closed "
                f"look-alikes did ({rate:.0%})",
            )
        ]
        if rate is not None and base_rate is not None and rate > base_rate:
            recommendations.append(
                Recommendation(
                    f"Run a targeted {_words(kind)} campaign in {location}",
                    Impact.MEDIUM,
                    f"Closed leads like these won {rate:.0%} of {seg_closed} against "
                    f"{base_rate:.0%} overall",
                )
            )
        budget_text = f"; average budget ${budget:,.0f}" if budget is not None else ""
        out.append(
            Insight(
                id=f"cluster:{location}|{kind}|{timeline}",
                category=InsightCategory.HIGH_VALUE_CLUSTERS,
                type=InsightType.OPPORTUNITY,
                title=f"High-value cluster: {_words(kind)} buyers in {location} "
                f"({_words(timeline)})",
                description=f"{n} open leads averaging score {row['average_score']:.1f}, "
                f"{row['lift']:.2f}x the workspace's {baseline:.1f}{budget_text}",
                impact=impact,
                confidence=market.confidence(n),
                numbers=InsightNumbers(
                    lead_count=n,
                    closed_count=seg_closed,
                    conversion_rate=rate,
                    average_score=float(row["average_score"]),
                    average_budget=budget,
                    lift=float(row["lift"]),
                    baseline=baseline,
                ),
                traits=(("location", location), ("propertyType", kind), ("timeline", timeline)),
                recommendations=tuple(recommendations),
            )
        )
    return out


# ---- segment trends ------------------------------------------------------------------------------


def segment_trends(created: pl.DataFrame, closed: pl.DataFrame, w: market.Windows) -> list[Insight]:
    current = pl.col("at") >= w.middle
    out: list[Insight] = []
    for dimension in SEGMENTS:
        trait = "propertyType" if dimension == "property_type" else dimension
        rates = (
            closed.drop_nulls(dimension)
            .with_columns(at=pl.col("closed_at"))
            .group_by(dimension)
            .agg(
                n_now=current.sum(),
                n_before=(~current).sum(),
                won_now=(current & pl.col("won")).sum(),
                won_before=(~current & pl.col("won")).sum(),
            )
            .filter(pl.col("n_now") >= MIN_TREND_SAMPLE, pl.col("n_before") >= MIN_TREND_SAMPLE)
            .sort(dimension)
        )
        for row in rates.iter_rows(named=True):
            now, before = row["won_now"] / row["n_now"], row["won_before"] / row["n_before"]
            impact = grade(abs(now - before), RATE_STEPS)
            if impact is None:
                continue
            value, up = row[dimension], now > before
            text = _segment_text(dimension, value)
            n = min(int(row["n_now"]), int(row["n_before"]))
            reason = (
                f"Win rate {'rose' if up else 'fell'} from {before:.1%} to {now:.1%} "
                f"({row['n_now']} closes against {row['n_before']})"
            )
            action = (
                f"Put more budget and agent time behind {text}"
                if up
                else f"Review how {text} leads are followed up"
            )
            out.append(
                Insight(
                    id=f"trend:{dimension}:{value}:winRate",
                    category=InsightCategory.SEGMENT_TRENDS,
                    type=InsightType.OPPORTUNITY if up else InsightType.RISK,
                    title=f"{text[0].upper()}{text[1:]}: win rate "
                    f"{'up' if up else 'down'} {abs(now - before) * 100:.1f} points",
                    description=reason,
                    impact=impact,
                    confidence=market.confidence(n),
                    numbers=InsightNumbers(
                        lead_count=int(row["n_now"]),
                        closed_count=int(row["n_now"]),
                        conversion_rate=now,
                        current=now,
                        previous=before,
                        change=now - before,
                    ),
                    traits=((trait, value),),
                    recommendations=(Recommendation(action, impact, reason),),
                )
            )
        volumes = (
            created.drop_nulls(dimension)
            .with_columns(at=pl.col("created_at"))
            .group_by(dimension)
            .agg(n_now=current.sum(), n_before=(~current).sum())
            .filter(pl.col("n_before") >= MIN_TREND_SAMPLE)
            .sort(dimension)
        )
        for row in volumes.iter_rows(named=True):
            relative = (row["n_now"] - row["n_before"]) / row["n_before"]
            impact = grade(abs(relative), VOLUME_STEPS)
            if impact is None:
                continue
            value, up = row[dimension], relative > 0
            text = _segment_text(dimension, value)
            reason = (
                f"New leads {'up' if up else 'down'} {abs(relative):.0%} "
                f"({row['n_now']} against {row['n_before']} the window before)"
            )
            action = (
                f"Add agent capacity for {text} leads"
                if up
                else f"Check the {text} pipeline: fewer leads are coming in"
            )
            out.append(
                Insight(
                    id=f"trend:{dimension}:{value}:newLeads",
                    category=InsightCategory.SEGMENT_TRENDS,
                    type=InsightType.TREND if up else InsightType.RISK,
                    title=f"{text[0].upper()}{text[1:]}: new leads "
                    f"{'up' if up else 'down'} {abs(relative):.0%}",
                    description=reason,
                    impact=impact,
                    confidence=market.confidence(min(int(row["n_now"]), int(row["n_before"]))),
                    numbers=InsightNumbers(
                        lead_count=int(row["n_now"]),
                        current=float(row["n_now"]),
                        previous=float(row["n_before"]),
                        change=relative,
                    ),
                    traits=((trait, value),),
                    recommendations=(Recommendation(action, impact, reason),),
                )
            )
    return out


# ---- market moves ------------------------------------------------------------------------------

_MARKET_MOVES = (
    # (key, what, how to read a rise, how to read a fall)
    (
        "budget",
        "Median buyer budget",
        "Show buyers higher-priced listings",
        "Lead with lower-priced listings and financing options",
    ),
    (
        "price",
        "Median won deal value",
        "Price toward the upper end of recent deals",
        "Set expectations for negotiation on price",
    ),
    (
        "demand",
        "New leads",
        "Focus on urgent buyer messaging and fast follow-up",
        "Increase lead generation on the best converting sources",
    ),
)


def market_moves(m: market.MarketInsights) -> list[Insight]:
    comparisons = {
        "budget": m.budget.median,
        "price": m.price.median,
        "demand": m.demand.new_leads,
    }
    out: list[Insight] = []
    for key, what, rise, fall in _MARKET_MOVES:
        c = comparisons[key]
        if c.change is None:
            continue
        impact = grade(abs(c.change), MARKET_STEPS)
        if impact is None:
            continue
        up = c.change > 0
        reason = (
            f"{what} {'up' if up else 'down'} {abs(c.change):.1%}: {c.current:,.0f} against "
            f"{c.previous:,.0f} ({c.current_count} against {c.previous_count} leads)"
        )
        out.append(
            Insight(
                id=f"market:{key}",
                category=InsightCategory.MARKET_TRENDS,
                type=InsightType.TREND,
                title=f"{what} {'up' if up else 'down'} {abs(c.change):.1%}",
                description=reason,
                impact=impact,
                confidence=c.confidence,
                numbers=InsightNumbers(
                    lead_count=c.current_count,
                    current=c.current,
                    previous=c.previous,
                    change=c.change,
                ),
                traits=(),
                recommendations=(Recommendation(rise if up else fall, impact, reason),),
            )
        )
    return out


# ---- model performance ---------------------------------------------------------------------------


def _version(model: MlModel) -> str:
    return f"{model.name} v{model.version}"


def model_insights(
    alerts: list[analytics.ModelAlert], champion: MlModel | None, candidates: list[MlModel]
) -> list[Insight]:
    out: list[Insight] = []
    for a in alerts:
        alert, model = a.alert, a.model
        impact = Impact.HIGH if alert.severity == "CRITICAL" else Impact.MEDIUM
        what = {
            "ACCURACY_DROP": "accuracy dropping",
            "LATENCY_INCREASE": "latency rising",
            "DRIFT": "its input data drifting",
        }[alert.kind]
        out.append(
            Insight(
                id=f"model:{model.id}:{alert.kind}",
                category=InsightCategory.MODEL_PERFORMANCE,
                type=InsightType.RISK,
                title=f"{_version(model)}: {what}",
                description=alert.message,
                impact=impact,
                confidence=market.confidence(alert.samples),
                numbers=InsightNumbers(
                    lead_count=alert.samples, current=alert.value, baseline=alert.threshold
                ),
                traits=(("model", str(model.id)),),
                recommendations=(Recommendation(a.recommendation, impact, alert.message),),
            )
        )
    best = None if champion is None else registry.test_auc(champion)
    for model in candidates if champion is not None and best is not None else []:
        assert champion is not None and best is not None
        auc = registry.test_auc(model)
        gained = None if auc is None else grade(auc - best, AUC_STEPS)
        if gained is None or auc is None:
            continue
        gain = auc - best
        test_samples = int(model.training_sizes.get("test", {}).get("rows", 0))
        reason = (
            f"Test AUC {auc:.3f} against the champion {_version(champion)}'s {best:.3f} "
            f"(+{gain:.3f}, {test_samples} test leads)"
        )
        out.append(
            Insight(
                id=f"model:{model.id}:BEATS_CHAMPION",
                category=InsightCategory.MODEL_PERFORMANCE,
                type=InsightType.OPPORTUNITY,
                title=f"{_version(model)} scores better than the champion",
                description=reason,
                impact=gained,
                confidence=market.confidence(test_samples),
                numbers=InsightNumbers(
                    lead_count=test_samples, current=auc, baseline=best, change=gain
                ),
                traits=(("model", str(model.id)),),
                recommendations=(
                    Recommendation(
                        f"Deploy {_version(model)} to part of the traffic (deployModel with "
                        "abTest) and promote it if it holds up",
                        gained,
                        reason,
                    ),
                ),
            )
        )
    return out


async def model_rows(
    session: AsyncSession, scope: Scope, w: market.Windows
) -> tuple[list[analytics.ModelAlert], MlModel | None, list[MlModel]]:
    """The serving versions' alerts over the current window, the champion, the candidates."""
    rows = await registry.list_models(session, scope)
    serving = [m for m in rows if m.status == ModelStatus.ACTIVE]
    alerts = await analytics.serving_alerts(session, scope.workspace_id, serving, w.middle, w.end)
    champion = next((m for m in serving if m.alias == "champion"), None)
    candidates = [m for m in rows if m.status == ModelStatus.CANDIDATE]
    return alerts, champion, sorted(candidates, key=lambda m: m.id or 0)


# ---- operational -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operations:
    hot_open: int  # open leads scoring HIGH_VALUE_SCORE or more
    hot_idle: int  # of them, no activity for IDLE_DAYS
    idle_score_sum: int
    # leads created in the previous / current window (at least RESPONSE_WITHIN old), and how
    # many of them had a first response within RESPONSE_WITHIN
    new_before: int
    answered_before: int
    new_now: int
    answered_now: int


async def operation_rows(session: AsyncSession, scope: Scope, w: market.Windows) -> Operations:
    """Two statements: the open high-value leads (`ix_lead_current_score`'s high scores, then
    their leads), and the windows' new leads with their first response (`lead_engagement`)."""
    last_active = sa.func.coalesce(col(Lead.last_activity_at), col(Lead.created_at))
    idle = last_active < w.end - timedelta(days=IDLE_DAYS)
    hot = (
        await session.execute(
            leads_query(
                sa.func.count(),
                sa.func.count().filter(idle),
                _int_sum(col(CurrentScore.value), idle),
                scored=True,
            ).where(
                scope.leads(Lead),
                col(Lead.stage).not_in([LeadStage.WON, LeadStage.LOST]),
                # as ix_lead_current_score has it: the few high scores by index
                sa.func.coalesce(col(CurrentScore.value), -1) >= HIGH_VALUE_SCORE,
            )
        )
    ).one()
    answered = col(LeadEngagement.first_response_at) < col(Lead.created_at) + RESPONSE_WITHIN
    span = min(w.end - w.middle, RESPONSE_SPAN)
    current = col(Lead.created_at) >= w.end - span
    new = (
        await session.execute(
            sa.select(
                sa.func.count().filter(~current),
                sa.func.count().filter(~current, answered),
                sa.func.count().filter(current),
                sa.func.count().filter(current, answered),
            )
            .select_from(Lead)
            .outerjoin(
                LeadEngagement,
                sa.and_(
                    col(LeadEngagement.workspace_id) == col(Lead.workspace_id),
                    col(LeadEngagement.lead_id) == col(Lead.id),
                ),
            )
            .where(
                scope.leads(Lead),
                col(Lead.created_at) >= w.end - 2 * span,
                col(Lead.created_at) < w.end - RESPONSE_WITHIN,
            )
        )
    ).one()
    return Operations(*(int(v) for v in (*hot, *new)))


def operational(o: Operations) -> list[Insight]:
    out: list[Insight] = []
    share = o.hot_idle / o.hot_open if o.hot_open else 0.0
    impact = grade(share, IDLE_STEPS) if o.hot_idle else None
    if impact is not None:
        reason = (
            f"{o.hot_idle} of {o.hot_open} open leads scoring {HIGH_VALUE_SCORE}+ ({share:.0%}) "
            f"had no activity for {IDLE_DAYS} days"
        )
        average = o.idle_score_sum / o.hot_idle
        out.append(
            Insight(
                id="operational:idleHighValue",
                category=InsightCategory.OPERATIONAL,
                type=InsightType.RISK,
                title=f"{o.hot_idle} high-value leads going cold",
                description=reason,
                impact=impact,
                confidence=market.confidence(o.hot_open),
                numbers=InsightNumbers(lead_count=o.hot_idle, average_score=average, current=share),
                traits=(),
                recommendations=(
                    Recommendation(
                        f"Follow up these {o.hot_idle} leads this week, highest score first",
                        impact,
                        reason,
                    ),
                ),
            )
        )
    if o.new_now >= MIN_TREND_SAMPLE and o.new_before >= MIN_TREND_SAMPLE:
        now, before = o.answered_now / o.new_now, o.answered_before / o.new_before
        impact = grade(abs(now - before), RATE_STEPS)
        if impact is not None:
            up = now > before
            hours = int(RESPONSE_WITHIN.total_seconds() // 3600)
            reason = (
                f"New leads answered within {hours} h: {now:.1%} against {before:.1%} the "
                f"window before ({o.new_now} against {o.new_before} leads)"
            )
            action = (
                "Keep the current lead routing: first responses got faster"
                if up
                else f"Route new leads to agents with capacity; aim for a first call or email "
                f"within {hours} h"
            )
            out.append(
                Insight(
                    id="operational:firstResponse",
                    category=InsightCategory.OPERATIONAL,
                    type=InsightType.TREND if up else InsightType.RISK,
                    title=f"First responses within {hours} h "
                    f"{'up' if up else 'down'} {abs(now - before) * 100:.1f} points",
                    description=reason,
                    impact=impact,
                    confidence=market.confidence(min(o.new_now, o.new_before)),
                    numbers=InsightNumbers(
                        lead_count=o.new_now, current=now, previous=before, change=now - before
                    ),
                    traits=(),
                    recommendations=(Recommendation(action, impact, reason),),
                )
            )
    return out


# ---- the report ----------------------------------------------------------------------------------


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_INSIGHTS:
        raise BadUserInput(
            f"`limit` must be 1..{MAX_INSIGHTS}", fields={"limit": f"1..{MAX_INSIGHTS}"}
        )


def check_timeframe(timeframe: str) -> None:
    market.window_length(timeframe, field_name="period", allowed=INSIGHT_TIMEFRAMES)


def build_report(
    segments: pl.DataFrame,
    created: pl.DataFrame,
    closed: pl.DataFrame,
    w: market.Windows,
    timeframe: str,
    categories: set[InsightCategory],
    limit: int,
    found: list[Insight],
) -> InsightReport:
    """The pure half of `ml_insights` (`found`: the insights already made, to rank with)."""
    found = list(found)
    if InsightCategory.HIGH_VALUE_CLUSTERS in categories:
        found += clusters(segments)
    if InsightCategory.SEGMENT_TRENDS in categories:
        found += segment_trends(created, closed, w)
    if InsightCategory.MARKET_TRENDS in categories:
        found += market_moves(market.market_trends(created, closed, w, timeframe))
    found.sort(key=lambda i: (_RANK[i.impact], -i.confidence, i.id))
    return InsightReport(
        insights=found[:limit],
        total=len(found),
        by_impact={impact: sum(i.impact is impact for i in found) for impact in Impact},
        by_category={c: sum(i.category is c for i in found) for c in InsightCategory},
        leads_analysed=int(segments["leads"].sum()),
        window_start=w.middle,
        window_end=w.end,
        all_insights=found,
    )


async def ml_insights(
    session: AsyncSession,
    scope: Scope,
    *,
    category: InsightCategory | None = None,
    limit: int = 20,
    timeframe: str = "D30",
    now: datetime | None = None,
) -> InsightReport:
    """Insights over the leads the viewer may see (`category` null: every category)."""
    check_limit(limit)
    length = market.window_length(timeframe, field_name="period", allowed=INSIGHT_TIMEFRAMES)
    w = market.windows(length, now)
    categories = set(InsightCategory) if category is None else {category}
    segments = await segment_rows(session, scope)
    found: list[Insight] = []
    if InsightCategory.MODEL_PERFORMANCE in categories and scope.is_admin:
        found += model_insights(*await model_rows(session, scope, w))
    if InsightCategory.OPERATIONAL in categories:
        found += operational(await operation_rows(session, scope, w))
    if categories & {InsightCategory.SEGMENT_TRENDS, InsightCategory.MARKET_TRENDS}:
        created, closed = await market.window_rows(session, scope, w)
    else:
        created = pl.DataFrame(schema=market.CREATED_SCHEMA)
        closed = pl.DataFrame(schema=market.CLOSED_SCHEMA)
    return await asyncio.to_thread(
        build_report, segments, created, closed, w, timeframe, categories, limit, found
    )
