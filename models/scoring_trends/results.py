"""What `scoring_trends` returns: plain frozen dataclasses (the resolver maps them to types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Improver:
    lead_id: int
    name: str
    score: int
    previous_score: int
    score_increase: int
    scored_at: datetime
    previous_scored_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class TrendBucket:
    period_start: datetime
    leads_scored: int
    average_score: float
    high_value_count: int
    excellent: int
    good: int
    moderate: int
    low: int
    rescorings: int
    average_change: float
    top_improvers: list[Improver]


@dataclass(frozen=True, slots=True)
class Segment:
    dimension: str  # SOURCE or PROPERTY_TYPE
    value: str
    average_improvement: float
    sample_size: int


@dataclass(frozen=True, slots=True)
class ConcerningTrend:
    segment: Segment
    issue: str
    recommendation: str


@dataclass(frozen=True, slots=True)
class TrendInsights:
    overall_trend: str  # IMPROVING / STABLE / DECLINING
    average_improvement: float
    rescorings: int
    best_performing_segment: Segment | None
    segments: list[Segment]
    concerning_trends: list[ConcerningTrend]


@dataclass(frozen=True, slots=True)
class ScoringTrends:
    period: str
    group_by: str
    window_start: datetime
    window_end: datetime
    trends: list[TrendBucket]
    insights: TrendInsights
