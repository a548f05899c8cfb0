"""The performance overview: its types, `Workspace.performance` (delegated to from
workspaces.py), the `performanceUpdated` subscription's pieces and `updatePerformanceThresholds`.
The rules behind each number are in models/sales_performance.py."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Self

import strawberry
from strawberry.types.unset import UNSET

from models import sales_performance as perf
from models.db import utcnow
from models.periods import check_period, rate
from models.scope import Scope
from resolvers.agents import Agent
from resolvers.context import Context, Info
from resolvers.enums import Period


@strawberry.type(description="Leads created in the window and what became of them")
class PerformanceSummary:
    total_leads: int = strawberry.field(description="Leads created in the window")
    active_leads: int = strawberry.field(description="Of those, not WON or LOST now")
    converted_leads: int = strawberry.field(description="Leads WON in the window")
    conversion_rate: float = strawberry.field(
        description="convertedLeads / totalLeads (conversions per new lead); 0 without new leads"
    )
    average_lead_score: float = strawberry.field(
        description="Mean current score of the window's scored new leads; 0 without any"
    )
    response_time_hours: float = strawberry.field(
        description="Median hours from creation to the first call or email sent (within 14 "
        "days) of the window's new leads that got one; 0 without any"
    )


@strawberry.type
class LeadGeneration:
    daily: int = strawberry.field(description="Leads created in the last 24 hours")
    weekly: int = strawberry.field(description="... in the last 7 days")
    monthly: int = strawberry.field(description="... in the last 30 days")
    growth: float = strawberry.field(
        description="(new leads of the window - of the previous window) / previous; 0 when "
        "the previous window had none"
    )


@strawberry.type
class LeadQuality:
    average_score: float
    high_value_percentage: float = strawberry.field(
        description="Share of the window's new leads scoring 80 or more, 0..100"
    )
    qualified_percentage: float = strawberry.field(
        description="Share of them now QUALIFIED, SHOWING, OFFER or WON, 0..100"
    )


@strawberry.type
class SourceConversion:
    key: str = strawberry.field(description="The lead source")
    count: int = strawberry.field(description="New leads of the window from it")
    converted: int = strawberry.field(description="Its leads WON in the window")
    rate: float = strawberry.field(description="converted / count")


@strawberry.type
class AgentConversion:
    agent: Agent
    count: int = strawberry.field(description="New leads of the window assigned to the agent")
    converted: int = strawberry.field(description="The agent's leads WON in the window")
    rate: float = strawberry.field(description="converted / count")


@strawberry.type
class ConversionMetrics:
    overall_rate: float
    by_source: list[SourceConversion] = strawberry.field(description="Most new leads first")
    by_agent: list[AgentConversion] = strawberry.field(description="Most conversions first")


@strawberry.type(description="Lead events in the window")
class EngagementMetrics:
    emails_sent: int
    email_open_rate: float = strawberry.field(description="EMAIL_OPENED / EMAIL_SENT")
    response_rate: float = strawberry.field(description="EMAIL_REPLIED / EMAIL_SENT")
    meeting_booked_rate: float = strawberry.field(description="MEETING / (EMAIL_SENT + CALL)")


@strawberry.type
class ConversionTrendPoint:
    date: datetime = strawberry.field(description="Start of the UTC hour (H1, H24) or day")
    rate: float = strawberry.field(description="Leads WON in the bucket / created in it")
    count: int = strawberry.field(description="Leads created in the bucket (in the window)")


@strawberry.type
class LeadQualityTrendPoint:
    date: datetime
    score: float = strawberry.field(description="Mean score of the bucket's new leads; 0: none")
    count: int = strawberry.field(description="Scored leads created in the bucket")


@strawberry.type(description="One point per bucket of the window, oldest first")
class PerformanceTrends:
    conversion_trend: list[ConversionTrendPoint]
    lead_quality_trend: list[LeadQualityTrendPoint]


@strawberry.enum
class PerformanceAlertType(Enum):
    THRESHOLD = "THRESHOLD"
    TREND = "TREND"


@strawberry.enum
class AlertSeverity(Enum):
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@strawberry.type(
    description="THRESHOLD (CRITICAL): the window's value is on the wrong side of its "
    "configured threshold; TREND (WARNING): it is worse than the previous window's by at "
    "least `maxChange`, relative. Metrics without data raise nothing"
)
class PerformanceAlert:
    type: PerformanceAlertType
    severity: AlertSeverity
    metric: str = strawberry.field(
        description="conversionRate, responseTimeHours, averageLeadScore, emailOpenRate or "
        "leadGrowth"
    )
    message: str
    threshold: float = strawberry.field(
        description="THRESHOLD: the configured value; TREND: the relative change allowed"
    )
    current: float
    previous: float | None = strawberry.field(description="The previous window's value")
    change: float | None = strawberry.field(description="(current - previous) / previous")

    @classmethod
    def from_model(cls, a: perf.Alert) -> Self:
        return cls(
            type=PerformanceAlertType(a.type),
            severity=AlertSeverity(a.severity),
            metric=a.metric,
            message=a.message,
            threshold=a.threshold,
            current=a.current,
            previous=a.previous,
            change=a.change,
        )


@strawberry.type(description="The workspace's alert thresholds (defaults until updated); null: off")
class PerformanceThresholds:
    min_conversion_rate: float | None = strawberry.field(description="Default 0.05")
    max_response_time_hours: float | None = strawberry.field(description="Default 3")
    min_average_lead_score: float | None = strawberry.field(description="Default off")
    min_email_open_rate: float | None = strawberry.field(description="Default 0.2")
    min_lead_growth: float | None = strawberry.field(description="Default -0.2")
    max_change: float = strawberry.field(description="Default 0.15")
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: perf.PerformanceThreshold) -> Self:
        return cls(
            min_conversion_rate=row.min_conversion_rate,
            max_response_time_hours=row.max_response_time_hours,
            min_average_lead_score=row.min_average_lead_score,
            min_email_open_rate=row.min_email_open_rate,
            min_lead_growth=row.min_lead_growth,
            max_change=row.max_change,
            updated_at=row.updated_at if row.updated_by is not None else None,
        )


@strawberry.type(description="Sales performance of the viewer's leads (seed 000 overview)")
class Performance:
    period: Period
    window_start: datetime
    window_end: datetime
    summary: PerformanceSummary
    lead_generation: LeadGeneration
    lead_quality: LeadQuality
    conversion: ConversionMetrics
    engagement: EngagementMetrics
    trends: PerformanceTrends
    alerts: list[PerformanceAlert]
    thresholds: PerformanceThresholds
    generated_at: datetime

    @classmethod
    def from_model(cls, p: perf.Performance) -> Self:
        n = p.current
        return cls(
            period=Period(p.period),
            window_start=p.window.start,
            window_end=p.window.end,
            summary=PerformanceSummary(
                total_leads=n.leads,
                active_leads=n.active,
                converted_leads=n.converted,
                conversion_rate=n.conversion_rate,
                average_lead_score=n.average_score,
                response_time_hours=n.response_hours,
            ),
            lead_generation=LeadGeneration(
                daily=p.daily, weekly=p.weekly, monthly=p.monthly, growth=p.growth
            ),
            lead_quality=LeadQuality(
                average_score=n.average_score,
                high_value_percentage=100 * rate(n.high_value, n.leads),
                qualified_percentage=100 * rate(n.qualified, n.leads),
            ),
            conversion=ConversionMetrics(
                overall_rate=n.conversion_rate,
                by_source=[
                    SourceConversion(key=s.key, count=s.leads, converted=s.converted, rate=s.rate)
                    for s in p.by_source
                ],
                by_agent=[
                    AgentConversion(
                        agent=Agent.from_row(a.agent),
                        count=a.leads,
                        converted=a.converted,
                        rate=a.rate,
                    )
                    for a in p.by_agent
                ],
            ),
            engagement=EngagementMetrics(
                emails_sent=n.events.get("EMAIL_SENT", 0),
                email_open_rate=n.event_rate("EMAIL_OPENED", "EMAIL_SENT"),
                response_rate=n.event_rate("EMAIL_REPLIED", "EMAIL_SENT"),
                meeting_booked_rate=n.event_rate("MEETING", "EMAIL_SENT", "CALL"),
            ),
            trends=PerformanceTrends(
                conversion_trend=[
                    ConversionTrendPoint(date=t.at, rate=t.rate, count=t.leads) for t in p.trend
                ],
                lead_quality_trend=[
                    LeadQualityTrendPoint(date=t.at, score=t.score, count=t.scored) for t in p.trend
                ],
            ),
            alerts=[PerformanceAlert.from_model(a) for a in p.alerts],
            thresholds=PerformanceThresholds.from_row(p.thresholds),
            generated_at=utcnow(),
        )


def check_performance_period(period: Period) -> None:
    check_period(period.value, perf.PERFORMANCE_PERIODS)


async def performance_report(context: Context, scope: Scope, period: Period) -> perf.Performance:
    return await perf.sales_performance(context.db, scope, period.value)


def performance_fingerprint(p: perf.Performance) -> object:
    """What a subscriber is sent again for: the numbers, not the clock."""
    t = p.thresholds
    return (
        p.current,
        p.previous,
        p.daily,
        p.weekly,
        p.monthly,
        p.by_source,
        [(a.agent.id, a.agent.name, a.leads, a.converted) for a in p.by_agent],
        p.trend,
        p.alerts,
        tuple(getattr(t, s.column) for s in perf.THRESHOLD_SETTINGS.values()),
    )


# ---- Workspace field (delegated to from resolvers/workspaces.py) ------------------------------


async def performance_field(info: Info, scope: Scope, period: Period) -> Performance:
    check_performance_period(period)
    report = await info.context.cached(
        scope,
        ("performance", period.value),
        lambda: performance_report(info.context, scope, period),
    )
    return Performance.from_model(report)


# ---- thresholds --------------------------------------------------------------------------------


@strawberry.input(description="Only the given thresholds change; null switches one off")
class PerformanceThresholdsInput:
    min_conversion_rate: float | None = strawberry.field(default=UNSET, description="0..10")
    max_response_time_hours: float | None = strawberry.field(default=UNSET, description="0..8760")
    min_average_lead_score: float | None = strawberry.field(default=UNSET, description="0..100")
    min_email_open_rate: float | None = strawberry.field(default=UNSET, description="0..10")
    min_lead_growth: float | None = strawberry.field(default=UNSET, description="-1..100")
    max_change: float | None = strawberry.field(default=UNSET, description="0.01..10; not null")


def _changes(input: PerformanceThresholdsInput) -> dict[str, Any]:
    given = {
        "minConversionRate": input.min_conversion_rate,
        "maxResponseTimeHours": input.max_response_time_hours,
        "minAverageLeadScore": input.min_average_lead_score,
        "minEmailOpenRate": input.min_email_open_rate,
        "minLeadGrowth": input.min_lead_growth,
        "maxChange": input.max_change,
    }
    return {path: value for path, value in given.items() if value is not UNSET}


@strawberry.type
class PerformanceMutations:
    @strawberry.mutation(
        description="Change the performance overview's alert thresholds (validated); ADMIN "
        "only; audited"
    )
    async def update_performance_thresholds(
        self,
        info: Info,
        input: PerformanceThresholdsInput,
        workspace_id: strawberry.ID | None = None,
    ) -> PerformanceThresholds:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.transaction() as session:
            row = await perf.update_thresholds(session, scope, _changes(input))
        await info.context.publish(scope.workspace_id, "performance_config", [scope.workspace_id])
        return PerformanceThresholds.from_row(row)
