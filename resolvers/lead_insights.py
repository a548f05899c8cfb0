"""Lead insights: the types and resolver behind `Workspace.leadInsights` (the subscription
`leadInsightsUpdated` in subscriptions.py uses `lead_insights_report` too)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from ml import lead_insights
from ml.lead_advice import RecommendationType
from ml.lead_insights import LeadInsightsReport
from models.db import utcnow
from models.lead_insights import (
    RULES,
    LeadInsightFilter,
    LeadInsightSort,
    LeadPriority,
    check_limit,
)
from models.scope import Scope
from resolvers.context import Context, Info
from resolvers.enums import Period
from resolvers.leads import Lead
from resolvers.ml_insights import Impact

strawberry.enum(
    LeadInsightFilter,
    description="Rules over the period's open leads (several combine with AND). The quartiles "
    "are those of the current scores of every open lead you may see.",
)
# one description per value, from the rules themselves
for _value in LeadInsightFilter.__strawberry_definition__.values:  # type: ignore[attr-defined]
    _value.description = RULES[LeadInsightFilter(_value.value)].description
strawberry.enum(
    LeadInsightSort,
    description="SCORE: highest current score first; CREATED_AT: newest first; PRIORITY: "
    "URGENT first, then by score (ties: newest id first)",
)
strawberry.enum(
    LeadPriority,
    description="Score quartile points (3 top quartile, 2 at or above the median, 1 at or "
    "above the 25th percentile, 0 below) plus 1 for a timeline of IMMEDIATE or "
    "WITHIN_3_MONTHS: 4 URGENT, 3 HIGH, 2 MEDIUM, less LOW; unscored leads are LOW",
)
strawberry.enum(RecommendationType, name="LeadRecommendationType")


@strawberry.type
class LeadRecommendation:
    type: RecommendationType
    action: str
    priority: Impact
    reason: str = strawberry.field(description="The facts the action follows from")


@strawberry.type
class LeadInsightTrends:
    score_change: int | None = strawberry.field(
        description="Current score - the last stored score before the period (else the first "
        "one inside it); null for an unscored lead"
    )
    engagement_change: float | None = strawberry.field(
        description="(events in the period - events in the period before) / events in the "
        "period before, e.g. 0.158 for +15.8%; null when there were none before"
    )
    engagement_events: int = strawberry.field(
        description="The lead's own moves in the period: emails opened and replied, calls, "
        "meetings, showings, website visits"
    )
    previous_engagement_events: int = strawberry.field(description="The same, period before")
    last_activity: datetime | None


@strawberry.type
class LeadInsight:
    lead: Lead
    lead_id: strawberry.ID
    name: str
    email: str | None
    current_score: int | None = strawberry.field(description="1..99; null: not scored yet")
    conversion_probability: float | None = strawberry.field(
        description="Of the newest stored score, 0..1"
    )
    priority: LeadPriority
    insights: list[str] = strawberry.field(
        description="Why the lead scores as it does: its strongest SHAP factors (at least "
        "0.10 log-odds, up to 3) and its activity; empty for unscored leads and without a model"
    )
    recommendations: list[LeadRecommendation] = strawberry.field(
        description="Most important first, at most 3"
    )
    trends: LeadInsightTrends

    @classmethod
    def from_model(cls, found: lead_insights.LeadInsight, scope: Scope) -> Self:
        t = found.trends
        return cls(
            lead=Lead.from_row(found.lead, scope),
            lead_id=strawberry.ID(str(found.lead.id)),
            name=found.lead.name,
            email=found.lead.email,
            current_score=found.current_score,
            conversion_probability=found.conversion_probability,
            priority=found.priority,
            insights=list(found.insights),
            recommendations=[
                LeadRecommendation(
                    type=r.type, action=r.action, priority=r.priority, reason=r.reason
                )
                for r in found.recommendations
            ],
            trends=LeadInsightTrends(
                score_change=t.score_change,
                engagement_change=t.engagement_change,
                engagement_events=t.engagement_events,
                previous_engagement_events=t.previous_engagement_events,
                last_activity=t.last_activity,
            ),
        )


@strawberry.type(description="Over all the period's leads, whatever the filters")
class LeadInsightsSummary:
    total_leads: int = strawberry.field(description="The period's leads, open and closed")
    open_leads: int = strawberry.field(description="Of them, not WON or LOST")
    won_leads: int
    high_value_leads: int = strawberry.field(description="Matching HIGH_VALUE")
    urgent_leads: int = strawberry.field(description="Matching URGENT")
    conversion_rate: float = strawberry.field(description="wonLeads / totalLeads, 0..1")
    average_score: float | None = strawberry.field(
        description="Mean current score of the scored ones; null: none scored"
    )


@strawberry.type
class LeadInsightFilterCount:
    filter: LeadInsightFilter
    count: int = strawberry.field(description="The period's open leads matching it alone")


@strawberry.type
class LeadInsightFilters:
    applied: list[LeadInsightFilter]
    available: list[LeadInsightFilter]
    counts: list[LeadInsightFilterCount]


@strawberry.type(description="The cut points the priorities and filters use; null: no data")
class LeadInsightThresholds:
    score_q1: int | None = strawberry.field(description="25th percentile score (COLD)")
    score_median: int | None
    score_q3: int | None = strawberry.field(description="75th percentile score (URGENT)")
    budget_q3: int | None = strawberry.field(description="75th percentile budget (HIGH_VALUE)")


@strawberry.type
class LeadInsights:
    period: Period
    window_start: datetime
    window_end: datetime
    summary: LeadInsightsSummary
    insights: list[LeadInsight] = strawberry.field(
        description="The period's open leads matching the filters, in `sort` order"
    )
    filters: LeadInsightFilters
    thresholds: LeadInsightThresholds
    last_updated: datetime = strawberry.field(description="When the numbers were computed")
    generated_at: datetime

    @classmethod
    def from_report(cls, report: LeadInsightsReport, scope: Scope) -> Self:
        s, c = report.summary, report.cuts
        return cls(
            period=Period(report.period),
            window_start=report.window.start,
            window_end=report.window.end,
            summary=LeadInsightsSummary(
                total_leads=s.total_leads,
                open_leads=s.open_leads,
                won_leads=s.won_leads,
                high_value_leads=s.high_value_leads,
                urgent_leads=s.urgent_leads,
                conversion_rate=s.conversion_rate,
                average_score=s.average_score,
            ),
            insights=[LeadInsight.from_model(i, scope) for i in report.insights],
            filters=LeadInsightFilters(
                applied=list(report.applied),
                available=list(LeadInsightFilter),
                counts=[
                    LeadInsightFilterCount(filter=f, count=n) for f, n in report.counts.items()
                ],
            ),
            thresholds=LeadInsightThresholds(
                score_q1=c.score_q1,
                score_median=c.score_median,
                score_q3=c.score_q3,
                budget_q3=c.budget_q3,
            ),
            last_updated=report.computed_at,
            generated_at=utcnow(),
        )


async def lead_insights_report(
    context: Context,
    scope: Scope,
    period: Period,
    filters: list[LeadInsightFilter] | None,
    limit: int,
    sort: LeadInsightSort,
) -> LeadInsightsReport:
    return await lead_insights.lead_insights(
        context.db, scope, period=period.value, filters=filters or (), limit=limit, sort=sort
    )


async def lead_insights_field(
    info: Info,
    scope: Scope,
    period: Period,
    filters: list[LeadInsightFilter] | None,
    limit: int,
    sort: LeadInsightSort,
) -> LeadInsights:
    check_limit(limit)
    chosen = tuple(dict.fromkeys(filters or ()))

    async def compute() -> LeadInsightsReport:
        return await lead_insights_report(info.context, scope, period, list(chosen), limit, sort)

    key = ("leadInsights", period, chosen, limit, sort)
    report = await info.context.cached(scope, key, compute)
    return LeadInsights.from_report(report, scope)
