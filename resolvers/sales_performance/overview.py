"""The types of `Workspace.performance` and their mappers from models.sales_performance."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Self

import strawberry

from models import sales_performance as perf
from models.db import utcnow
from models.periods import rate
from resolvers.agents import Agent
from resolvers.enums import Period
from resolvers.sales_performance.thresholds import PerformanceThresholds


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
                        agent=Agent.from_row(a.key),
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
