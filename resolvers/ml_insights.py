"""ML and market insights: their types and the resolvers behind `Workspace.mlInsights` and
`Workspace.marketInsights` (the subscription `mlInsightsUpdated` in subscriptions.py uses
`insights_report` too; `mlAnalytics` is in ml_analytics.py)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Self

import strawberry

from ml import insights, market
from ml.insights import Impact, Insight, InsightCategory, InsightReport, InsightType
from models.db import utcnow
from models.leads import PropertyType
from models.scope import Scope
from resolvers.context import Context, Info
from resolvers.enums import Granularity, Period

strawberry.enum(
    InsightCategory,
    name="MlInsightCategory",
    description="HIGH_VALUE_CLUSTERS: groups of similar open leads scoring well above the "
    "workspace; SEGMENT_TRENDS: win rate and new leads per source, property type and location, "
    "window against window; MARKET_TRENDS: budget, deal value and demand moves; "
    "MODEL_PERFORMANCE (ADMIN; none for other roles): the serving versions' alerts over the "
    "window and candidates whose test AUC beats the champion's; OPERATIONAL: open high-value "
    "leads idle for 7 days, and the share of new leads given a first response within 24 h, "
    "the last 30 days (or the period if shorter) against the 30 before",
)
strawberry.enum(InsightType, name="MlInsightType")
strawberry.enum(Impact, description="Graded by documented thresholds on each insight's numbers")


# ---- ML insights -------------------------------------------------------------------------------


@strawberry.type
class InsightTrait:
    dimension: str = strawberry.field(
        description="location, propertyType, timeline, source, or model (its id)"
    )
    value: str


@strawberry.type
class InsightRecommendation:
    action: str
    priority: Impact
    reason: str = strawberry.field(description="The numbers the action follows from")
    expected_impact: str | None = strawberry.field(
        default=None,
        description="What following it should bring, where the data says (high-value "
        "clusters: the wins their closed look-alikes' win rate predicts); null otherwise",
    )


@strawberry.type(description="The numbers an insight stands on; null where they do not apply")
class InsightData:
    lead_count: int = strawberry.field(
        description="Leads (or closes; for a latency alert, predict calls) behind the insight"
    )
    closed_count: int | None = strawberry.field(description="Closed (WON or LOST) leads in it")
    conversion_rate: float | None = strawberry.field(description="WON / closed, 0..1")
    average_score: float | None = strawberry.field(description="Mean current score, 1..99")
    average_budget: float | None = strawberry.field(description="Dollars")
    lift: float | None = strawberry.field(description="averageScore / baseline")
    baseline: float | None = strawberry.field(description="The workspace's value compared with")
    current: float | None = strawberry.field(description="This window's value")
    previous: float | None = strawberry.field(description="The previous window's value")
    change: float | None = strawberry.field(
        description="Win rates: current - previous; counts and money: relative change"
    )


@strawberry.type
class MlInsight:
    id: strawberry.ID = strawberry.field(description="Stable for the same segment and rule")
    category: InsightCategory
    type: InsightType
    title: str
    description: str
    impact: Impact
    confidence: float = strawberry.field(
        description="1 - 1/sqrt(n) of the smallest sample behind it, 0..1"
    )
    data: InsightData
    traits: list[InsightTrait]
    recommendations: list[InsightRecommendation]

    @classmethod
    def from_model(cls, found: Insight) -> Self:
        n = found.numbers
        return cls(
            id=strawberry.ID(found.id),
            category=found.category,
            type=found.type,
            title=found.title,
            description=found.description,
            impact=found.impact,
            confidence=found.confidence,
            data=InsightData(
                lead_count=n.lead_count,
                closed_count=n.closed_count,
                conversion_rate=n.conversion_rate,
                average_score=n.average_score,
                average_budget=n.average_budget,
                lift=n.lift,
                baseline=n.baseline,
                current=n.current,
                previous=n.previous,
                change=n.change,
            ),
            traits=[InsightTrait(dimension=d, value=v) for d, v in found.traits],
            recommendations=[
                InsightRecommendation(
                    action=r.action,
                    priority=r.priority,
                    reason=r.reason,
                    expected_impact=r.expected_impact,
                )
                for r in found.recommendations
            ],
        )


@strawberry.type
class InsightCategoryCount:
    category: InsightCategory
    count: int


@strawberry.type(description="Counts over every insight found, before `limit`")
class MlInsightsSummary:
    total_insights: int
    high_impact: int
    medium_impact: int
    low_impact: int
    categories: list[InsightCategoryCount]
    leads_analysed: int = strawberry.field(description="Leads of the viewer the numbers cover")


@strawberry.type
class MlInsights:
    insights: list[MlInsight] = strawberry.field(description="Most important first")
    summary: MlInsightsSummary
    window_start: datetime = strawberry.field(description="Start of the current trend window")
    window_end: datetime
    generated_at: datetime

    @classmethod
    def from_report(cls, report: InsightReport) -> Self:
        return cls(
            insights=[MlInsight.from_model(i) for i in report.insights],
            summary=MlInsightsSummary(
                total_insights=report.total,
                high_impact=report.by_impact[Impact.HIGH],
                medium_impact=report.by_impact[Impact.MEDIUM],
                low_impact=report.by_impact[Impact.LOW],
                categories=[
                    InsightCategoryCount(category=c, count=n) for c, n in report.by_category.items()
                ],
                leads_analysed=report.leads_analysed,
            ),
            window_start=report.window_start,
            window_end=report.window_end,
            generated_at=utcnow(),
        )


async def insights_report(
    context: Context,
    scope: Scope,
    category: InsightCategory | None,
    limit: int,
    period: Period,
) -> InsightReport:
    async with context.db.custom_plans() as session:
        return await insights.ml_insights(
            session, scope, category=category, limit=limit, timeframe=period.value
        )


def report_fingerprint(report: InsightReport) -> object:
    """What a subscriber is sent again for: the insights and counts, not the clock."""
    return (report.insights, report.total, report.by_category, report.leads_analysed)


# ---- market insights -----------------------------------------------------------------------------


@strawberry.enum
class DemandLevel(Enum):
    HIGH = "HIGH"
    NORMAL = "NORMAL"
    LOW = "LOW"


_BUCKETS = {"1d": Granularity.DAY, "1w": Granularity.WEEK, "1mo": Granularity.MONTH}


@strawberry.type
class MarketTrendPoint:
    period_start: datetime
    count: int
    median: float | None
    average: float | None

    @classmethod
    def from_model(cls, p: market.TrendPoint) -> Self:
        return cls(period_start=p.period_start, count=p.count, median=p.median, average=p.average)


@strawberry.type(description="A number over the timeframe against the timeframe before it")
class MarketComparison:
    current: float | None
    previous: float | None
    change: float | None = strawberry.field(description="(current - previous) / previous")
    current_sample_size: int
    previous_sample_size: int
    confidence: float = strawberry.field(description="1 - 1/sqrt(smaller sample), 0..1")

    @classmethod
    def from_model(cls, c: market.Comparison) -> Self:
        return cls(
            current=c.current,
            previous=c.previous,
            change=c.change,
            current_sample_size=c.current_count,
            previous_sample_size=c.previous_count,
            confidence=c.confidence,
        )


@strawberry.type
class MarketTrend:
    points: list[MarketTrendPoint] = strawberry.field(description="Per bucket, oldest first")
    median: MarketComparison
    average: MarketComparison

    @classmethod
    def from_model(cls, t: market.Trend) -> Self:
        return cls(
            points=[MarketTrendPoint.from_model(p) for p in t.points],
            median=MarketComparison.from_model(t.median),
            average=MarketComparison.from_model(t.average),
        )


@strawberry.type
class MarketShare:
    key: str = strawberry.field(description="The value; UNSPECIFIED for leads without one")
    count: int
    share: float = strawberry.field(description="Of the timeframe's new leads, 0..1")

    @classmethod
    def from_model(cls, s: market.Share) -> Self:
        return cls(key=s.key, count=s.count, share=s.share)


@strawberry.type
class MarketDemand:
    points: list[MarketTrendPoint] = strawberry.field(description="New leads per bucket")
    new_leads: MarketComparison
    level: DemandLevel | None = strawberry.field(
        description="HIGH at +10% new leads or more, LOW at -10% or less; null: nothing before"
    )
    by_property_type: list[MarketShare]
    by_location: list[MarketShare]


@strawberry.type
class MarketRecommendation:
    type: str = strawberry.field(description="PRICING, MARKETING or OPERATIONS")
    action: str
    reason: str
    confidence: float


@strawberry.type(description="Market numbers of the viewer's leads (seed 003 market insights)")
class MarketInsights:
    timeframe: Period
    window_start: datetime
    window_end: datetime
    granularity: Granularity = strawberry.field(description="Bucket of the series")
    budget_trend: MarketTrend = strawberry.field(description="Budgets of new leads, dollars")
    price_trend: MarketTrend = strawberry.field(description="Values of deals won, dollars")
    demand: MarketDemand
    days_to_close: MarketComparison = strawberry.field(
        description="Median days from creation to WON of the deals won"
    )
    conversion_rate: MarketComparison = strawberry.field(
        description="WON / closed among leads closed in the timeframe"
    )
    recommendations: list[MarketRecommendation]
    insights: list[MlInsight] = strawberry.field(
        description="The budget, price and demand moves of this market big enough to tell "
        "(mlInsights' MARKET_TRENDS rule, for these leads)"
    )

    @classmethod
    def from_model(cls, m: market.MarketInsights) -> Self:
        d = m.demand
        return cls(
            timeframe=Period(m.timeframe),
            window_start=m.window_start,
            window_end=m.window_end,
            granularity=_BUCKETS[m.bucket],
            budget_trend=MarketTrend.from_model(m.budget),
            price_trend=MarketTrend.from_model(m.price),
            demand=MarketDemand(
                points=[MarketTrendPoint.from_model(p) for p in d.points],
                new_leads=MarketComparison.from_model(d.new_leads),
                level=None if d.level is None else DemandLevel(d.level),
                by_property_type=[
                    MarketShare(key=s.key, count=s.count, share=s.share) for s in d.by_property_type
                ],
                by_location=[
                    MarketShare(key=s.key, count=s.count, share=s.share) for s in d.by_location
                ],
            ),
            days_to_close=MarketComparison.from_model(m.days_to_close),
            conversion_rate=MarketComparison.from_model(m.conversion_rate),
            recommendations=[
                MarketRecommendation(
                    type=r.type, action=r.action, reason=r.reason, confidence=r.confidence
                )
                for r in m.recommendations
            ],
            insights=[MlInsight.from_model(i) for i in insights.market_moves(m)],
        )


# ---- Workspace fields (delegated to from resolvers/workspaces.py) -------------------------------


async def ml_insights_field(
    info: Info, scope: Scope, category: InsightCategory | None, limit: int, period: Period
) -> MlInsights:
    async def compute() -> InsightReport:
        return await insights_report(info.context, scope, category, limit, period)

    key = ("mlInsights", category, limit, period)
    return MlInsights.from_report(await info.context.cached(scope, key, compute))


async def market_insights_field(
    info: Info,
    scope: Scope,
    location: str | None,
    property_type: PropertyType | None,
    timeframe: Period,
) -> MarketInsights:
    async def compute() -> market.MarketInsights:
        async with info.context.db.custom_plans() as session:
            return await market.market_insights(
                session,
                scope,
                location=location,
                property_type=None if property_type is None else property_type.value,
                timeframe=timeframe.value,
            )

    key = ("marketInsights", location, property_type, timeframe)
    return MarketInsights.from_model(await info.context.cached(scope, key, compute))
