"""Insight sentences about an agent: a registry of small rules over its numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.agent_performance.numbers import (
    AgentStats,
    Benchmarks,
    TrendLabel,
)

# ---- insights: a registry of small rules -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsightRule:
    slug: str
    applies: Callable[[AgentStats, Benchmarks], bool]
    text: str


def _ratio(value: float | None, baseline: float | None) -> float | None:
    return value / baseline if value is not None and baseline else None


INSIGHT_RULES: tuple[InsightRule, ...] = (
    InsightRule(
        "no-leads", lambda s, b: s.current.assigned == 0, "No leads assigned in this period"
    ),
    InsightRule(
        "top-conversion",
        lambda s, b: s.rank == 1 and s.ranked > 1,
        "Top performer in conversion rate",
    ),
    InsightRule(
        "top-quartile",
        lambda s, b: s.rank is not None and s.rank > 1 and (s.percentile or 0) >= 75,
        "Conversion rate in the top quarter of the workspace",
    ),
    InsightRule(
        "low-conversion",
        lambda s, b: (
            s.current.assigned > 0
            and b.average_conversion_rate > 0
            and s.current.conversion_rate < 0.8 * b.average_conversion_rate
        ),
        "Conversion rate more than 20% below the workspace average",
    ),
    InsightRule(
        "fast-response",
        lambda s, b: (
            (r := _ratio(s.current.response_hours, b.average_response_time_hours)) is not None
            and r <= 0.75
        ),
        "Excellent response time",
    ),
    InsightRule(
        "slow-response",
        lambda s, b: (
            (r := _ratio(s.current.response_hours, b.average_response_time_hours)) is not None
            and r >= 1.5
        ),
        "Response time 50% slower than the workspace average",
    ),
    InsightRule(
        "strong-quality",
        lambda s, b: (
            s.current.average_score is not None
            and b.average_lead_score is not None
            and s.current.average_score >= b.average_lead_score + 5
        ),
        "Strong lead quality management",
    ),
    InsightRule(
        "conversion-improving",
        lambda s, b: s.trends.conversion is TrendLabel.IMPROVING,
        "Conversion rate improving on the previous period",
    ),
    InsightRule(
        "conversion-declining",
        lambda s, b: s.trends.conversion is TrendLabel.DECLINING,
        "Conversion rate declining on the previous period",
    ),
    InsightRule(
        "high-error-rate",
        lambda s, b: s.ai is not None and s.ai.finished > 0 and s.ai.error_rate > 0.10,
        "Error rate above 10% of executions",
    ),
    InsightRule(
        "high-satisfaction",
        lambda s, b: s.ai is not None and (s.ai.satisfaction or 0) >= 4.5,
        "Users rate its runs highly (satisfaction 4.5 or more)",
    ),
    InsightRule(
        "low-satisfaction",
        lambda s, b: s.ai is not None and s.ai.satisfaction is not None and s.ai.satisfaction < 3.5,
        "Low user satisfaction (under 3.5 of 5)",
    ),
)


def insights_of(stats: AgentStats, benchmarks: Benchmarks) -> list[str]:
    return [rule.text for rule in INSIGHT_RULES if rule.applies(stats, benchmarks)]
