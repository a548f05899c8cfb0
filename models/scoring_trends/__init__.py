"""Lead scoring trends (seed 000 "Get Lead Scoring Trends") from the score history `lead_score`,
and the rollups that keep reads fast: an ADMIN's sum the workspace's (migration 0012), a USER's
and an AGENT's those of the leads they own or are assigned (0016); only a `leadIds` filter reads
those leads' history itself.

Rules (README "Scoring trends"), for a period P (D7, D30, D90) and a bucket unit U (DAY, WEEK,
MONTH; UTC, weeks start on Monday):
- the buckets run from the one holding `now - P` to the one holding now; a bucket is listed
  when at least one of the viewer's leads was scored in it.
- a lead's score in a bucket is its LATEST scoring there; averageScore is the mean of those
  over the leads scored in the bucket; highValueCount and scoreDistribution count them (bands:
  excellent >= 80 (= high value, the workspace's rule), good 60-79, moderate 40-59, low < 40).
- a rescoring is a scoring of a lead scored before; its change = its score - the lead's score
  just before it (however long before). A lead's first scoring ever has none.
- topImprovers: per bucket, each lead's biggest rise of at least MIN_IMPROVEMENT points at one
  rescoring, the TOP_IMPROVERS biggest (ties: lower lead id); `reason` lists what the data shows
  changed between those two scorings: the lead's stage changes and activity (lead_event) in
  between, and a change of model version.
- averageImprovement: the mean change of the period's rescorings (0 when none); overallTrend
  IMPROVING at >= IMPROVING points, DECLINING at <= DECLINING, else STABLE.
- segments (the lead's source, and its property type; UNSPECIFIED when none): the same mean
  over the segment's rescorings, counted with at least MIN_SEGMENT_SAMPLE of them. Best: the
  highest mean above 0; concerning: a mean at or below CONCERNING_DROP, worst first, with a
  recommendation from RECOMMENDATIONS (the first rule matching the segment).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.db import Database, utcnow
from models.errors import NotFound
from models.leads import Lead
from models.periods import next_bucket, rate
from models.scope import Scope
from models.scoring_trends.queries import (
    SCORINGS,
    Cell,
    Found,
    best_rises,
    from_holder_rollup,
    from_lead_history,
    from_rollup,
)
from models.scoring_trends.report import improvers_of, insights_of
from models.scoring_trends.results import (
    ConcerningTrend,
    Improver,
    ScoringTrends,
    Segment,
    TrendBucket,
    TrendInsights,
)
from models.scoring_trends.rules import (
    ACTIVITY_WORDS,
    BANDS,
    CONCERNING_DROP,
    DECLINING,
    HIGH_VALUE_SCORE,
    IMPROVING,
    MAX_LEAD_IDS,
    MIN_IMPROVEMENT,
    MIN_SEGMENT_SAMPLE,
    RECOMMENDATIONS,
    TOP_IMPROVERS,
    TREND_PERIODS,
    UNITS,
    UNSPECIFIED,
    Recommendation,
    check_arguments,
    overall_trend,
    reason_text,
    recommendation_for,
    trunc,
    window_start,
)
from models.scoring_trends.tables import (
    ScoreTrend,
    ScoreTrendHolder,
    ScoreTrendHolderSegment,
    ScoreTrendHolderTop,
    ScoreTrendTop,
)

__all__ = [
    "ACTIVITY_WORDS",
    "BANDS",
    "CONCERNING_DROP",
    "DECLINING",
    "HIGH_VALUE_SCORE",
    "IMPROVING",
    "MAX_LEAD_IDS",
    "MIN_IMPROVEMENT",
    "MIN_SEGMENT_SAMPLE",
    "RECOMMENDATIONS",
    "SCORINGS",
    "TOP_IMPROVERS",
    "TREND_PERIODS",
    "UNITS",
    "UNSPECIFIED",
    "ConcerningTrend",
    "Improver",
    "Recommendation",
    "ScoreTrend",
    "ScoreTrendHolder",
    "ScoreTrendHolderSegment",
    "ScoreTrendHolderTop",
    "ScoreTrendTop",
    "ScoringTrends",
    "Segment",
    "TrendBucket",
    "TrendInsights",
    "best_rises",
    "check_arguments",
    "check_leads",
    "next_bucket",
    "overall_trend",
    "reason_text",
    "recommendation_for",
    "scoring_trends",
    "trunc",
    "window_start",
]


async def check_leads(session: AsyncSession, scope: Scope, lead_ids: Sequence[int]) -> None:
    """NOT_FOUND unless every id is a lead the viewer may see (another workspace's or another
    user's lead reads the same as a missing one)."""
    if not lead_ids:
        return
    query = sa.select(col(Lead.id)).where(scope.leads(Lead), col(Lead.id).in_(list(lead_ids)))
    seen = set((await session.execute(query)).scalars())
    missing = sorted(set(lead_ids) - seen)
    if missing:
        raise NotFound("Lead not found", leadIds=[str(i) for i in missing])


async def scoring_trends(
    db: Database,
    scope: Scope,
    *,
    period: str = "D30",
    group_by: str = "DAY",
    lead_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> ScoringTrends:
    check_arguments(period, group_by, lead_ids)
    unit = UNITS[group_by]
    end = now or utcnow()
    start = window_start(end, period, unit)
    stop = next_bucket(trunc(end, unit), unit)
    if lead_ids is not None:
        async with db.session() as session:
            await check_leads(session, scope, lead_ids)
    if lead_ids is None and scope.is_admin:
        found = await from_rollup(db, scope.workspace_id, unit, start, stop)
    elif lead_ids is None:
        found = await from_holder_rollup(db, scope, unit, start, stop)
    elif not lead_ids:
        found = Found()
    else:
        found = await from_lead_history(db, scope, unit, start, stop, lead_ids)
    improvers = await improvers_of(db, scope.workspace_id, found.rises)
    per_bucket: dict[datetime, Cell] = defaultdict(Cell)
    for row in found.cells:
        per_bucket[row["bucket"]].add(row)
    trends = [
        TrendBucket(
            period_start=bucket,
            leads_scored=c.leads,
            average_score=rate(c.score_sum, c.leads),
            high_value_count=c.excellent,
            excellent=c.excellent,
            good=c.good,
            moderate=c.moderate,
            low=c.low,
            rescorings=c.rescorings,
            average_change=rate(c.change_sum, c.rescorings),
            top_improvers=improvers.get(bucket, []),
        )
        for bucket, c in sorted(per_bucket.items())
        if c.leads > 0
    ]
    return ScoringTrends(
        period=period,
        group_by=group_by,
        window_start=start,
        window_end=end,
        trends=trends,
        insights=insights_of(found.by_segment()),
    )
