"""The performance overview: `Workspace.performance` (delegated to from workspaces.py) and
the `performanceUpdated` subscription's pieces (this file), its types (overview.py), the
thresholds and `updatePerformanceThresholds` (thresholds.py). The rules behind each number are
in models/sales_performance/."""

from __future__ import annotations

from models import sales_performance as perf
from models.periods import check_period
from models.scope import Scope
from resolvers.context import Context, Info
from resolvers.enums import Period
from resolvers.sales_performance.overview import (
    AgentConversion,
    AlertSeverity,
    ConversionMetrics,
    ConversionTrendPoint,
    EngagementMetrics,
    LeadGeneration,
    LeadQuality,
    LeadQualityTrendPoint,
    Performance,
    PerformanceAlert,
    PerformanceAlertType,
    PerformanceSummary,
    PerformanceTrends,
    SourceConversion,
)
from resolvers.sales_performance.thresholds import (
    PerformanceMutations,
    PerformanceThresholds,
    PerformanceThresholdsInput,
)

__all__ = [
    "AgentConversion",
    "AlertSeverity",
    "ConversionMetrics",
    "ConversionTrendPoint",
    "EngagementMetrics",
    "LeadGeneration",
    "LeadQuality",
    "LeadQualityTrendPoint",
    "Performance",
    "PerformanceAlert",
    "PerformanceAlertType",
    "PerformanceMutations",
    "PerformanceSummary",
    "PerformanceThresholds",
    "PerformanceThresholdsInput",
    "PerformanceTrends",
    "SourceConversion",
    "check_performance_period",
    "performance_field",
    "performance_fingerprint",
    "performance_report",
]


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
        [(a.key.id, a.key.name, a.leads, a.converted) for a in p.by_agent],
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
