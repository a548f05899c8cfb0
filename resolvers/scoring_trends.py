"""Lead scoring trends: the types and the resolver behind `Workspace.scoringTrends` (rules in
models/scoring_trends/)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Self

import strawberry

from models import scoring_trends as model
from models.db import utcnow
from models.scope import Scope
from resolvers.context import Info
from resolvers.enums import Granularity, Period
from resolvers.ids import parse_id


@strawberry.enum(
    description="IMPROVING: the mean change per rescoring >= +1 point; DECLINING: "
    "<= -1 point; else STABLE (also when nothing was rescored)"
)
class ScoringTrendDirection(Enum):
    IMPROVING = "IMPROVING"
    STABLE = "STABLE"
    DECLINING = "DECLINING"


@strawberry.enum
class ScoringSegmentDimension(Enum):
    SOURCE = "SOURCE"
    PROPERTY_TYPE = "PROPERTY_TYPE"


@strawberry.type(description="Leads of the bucket by their latest score there")
class ScoreDistribution:
    excellent: int = strawberry.field(description="Score >= 80")
    good: int = strawberry.field(description="60-79")
    moderate: int = strawberry.field(description="40-59")
    low: int = strawberry.field(description="< 40")


@strawberry.type(description="A lead's biggest rise at one rescoring in the bucket")
class ScoreImprover:
    lead_id: strawberry.ID
    name: str
    score_increase: int = strawberry.field(
        description="Its score minus the lead's score just before it (>= 10 points)"
    )
    score: int
    previous_score: int
    scored_at: datetime
    previous_scored_at: datetime
    reason: str = strawberry.field(
        description="What the data shows changed between the two scorings: stage changes and "
        "activity recorded in between (lead events), and a change of model version"
    )

    @classmethod
    def from_model(cls, i: model.Improver) -> Self:
        return cls(
            lead_id=strawberry.ID(str(i.lead_id)),
            name=i.name,
            score_increase=i.score_increase,
            score=i.score,
            previous_score=i.previous_score,
            scored_at=i.scored_at,
            previous_scored_at=i.previous_scored_at,
            reason=i.reason,
        )


@strawberry.type
class ScoringTrendPoint:
    period_start: datetime = strawberry.field(description="Start of the UTC bucket")
    date: date = strawberry.field(description="UTC date of `periodStart`")
    leads_scored: int = strawberry.field(description="Leads scored in the bucket")
    average_score: float = strawberry.field(
        description="Mean of each scored lead's latest score in the bucket"
    )
    high_value_count: int = strawberry.field(description="Of those, latest score >= 80")
    score_distribution: ScoreDistribution
    rescorings: int = strawberry.field(description="Scorings of leads scored before")
    average_change: float = strawberry.field(
        description="Mean change of those rescorings (score - the lead's score just before)"
    )
    top_improvers: list[ScoreImprover] = strawberry.field(
        description="The 5 biggest rises of >= 10 points, each lead once; ties: lower lead id"
    )

    @classmethod
    def from_model(cls, b: model.TrendBucket) -> Self:
        return cls(
            period_start=b.period_start,
            date=b.period_start.date(),
            leads_scored=b.leads_scored,
            average_score=b.average_score,
            high_value_count=b.high_value_count,
            score_distribution=ScoreDistribution(
                excellent=b.excellent, good=b.good, moderate=b.moderate, low=b.low
            ),
            rescorings=b.rescorings,
            average_change=b.average_change,
            top_improvers=[ScoreImprover.from_model(i) for i in b.top_improvers],
        )


@strawberry.type
class ScoringSegment:
    dimension: ScoringSegmentDimension
    value: str = strawberry.field(description="The source or property type; UNSPECIFIED: none")
    average_improvement: float = strawberry.field(
        description="Mean change of the segment's rescorings in the period"
    )
    sample_size: int = strawberry.field(description="Its rescorings (at least 20 to count)")

    @classmethod
    def from_model(cls, s: model.Segment) -> Self:
        return cls(
            dimension=ScoringSegmentDimension(s.dimension),
            value=s.value,
            average_improvement=s.average_improvement,
            sample_size=s.sample_size,
        )


@strawberry.type(description="A segment whose scores fell >= 2 points per rescoring on average")
class ConcerningScoreTrend:
    segment: ScoringSegment
    issue: str = strawberry.field(description="The numbers behind it")
    recommendation: str = strawberry.field(description="From a rule registry keyed by segment")


@strawberry.type
class ScoringInsights:
    overall_trend: ScoringTrendDirection
    average_improvement: float = strawberry.field(
        description="Mean change of every rescoring in the period (0 when none)"
    )
    rescorings: int
    best_performing_segment: ScoringSegment | None = strawberry.field(
        description="Highest averageImprovement above 0 among segments of >= 20 rescorings"
    )
    segments: list[ScoringSegment] = strawberry.field(
        description="Every segment of >= 20 rescorings, best first"
    )
    concerning_trends: list[ConcerningScoreTrend] = strawberry.field(description="Worst first")

    @classmethod
    def from_model(cls, i: model.TrendInsights) -> Self:
        best = i.best_performing_segment
        return cls(
            overall_trend=ScoringTrendDirection(i.overall_trend),
            average_improvement=i.average_improvement,
            rescorings=i.rescorings,
            best_performing_segment=None if best is None else ScoringSegment.from_model(best),
            segments=[ScoringSegment.from_model(s) for s in i.segments],
            concerning_trends=[
                ConcerningScoreTrend(
                    segment=ScoringSegment.from_model(c.segment),
                    issue=c.issue,
                    recommendation=c.recommendation,
                )
                for c in i.concerning_trends
            ],
        )


@strawberry.type(description="Score history of the viewer's leads (seed 000 scoring trends)")
class ScoringTrends:
    period: Period
    group_by: Granularity
    window_start: datetime = strawberry.field(description="Start of the first bucket")
    window_end: datetime = strawberry.field(description="Now")
    trends: list[ScoringTrendPoint] = strawberry.field(
        description="Buckets in which a lead was scored, oldest first"
    )
    insights: ScoringInsights
    generated_at: datetime

    @classmethod
    def from_model(cls, t: model.ScoringTrends) -> Self:
        return cls(
            period=Period(t.period),
            group_by=Granularity(t.group_by),
            window_start=t.window_start,
            window_end=t.window_end,
            trends=[ScoringTrendPoint.from_model(b) for b in t.trends],
            insights=ScoringInsights.from_model(t.insights),
            generated_at=utcnow(),
        )


# ---- the Workspace field (delegated to from resolvers/workspaces.py) ---------------------------


async def scoring_trends_field(
    info: Info,
    scope: Scope,
    period: Period,
    group_by: Granularity,
    lead_ids: list[strawberry.ID] | None,
) -> ScoringTrends:
    model.check_arguments(period.value, group_by.value, lead_ids)
    ids = None if lead_ids is None else sorted({parse_id(i, "leadIds") for i in lead_ids})
    key = ("scoringTrends", period.value, group_by.value, None if ids is None else tuple(ids))
    db = info.context.db

    async def compute() -> model.ScoringTrends:
        return await model.scoring_trends(
            db, scope, period=period.value, group_by=group_by.value, lead_ids=ids
        )

    found = await info.context.cached(scope, key, compute)
    return ScoringTrends.from_model(found)
