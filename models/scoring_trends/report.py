"""Turning cells and rises into the report: improvers with names and reasons, and the insights
(overall trend, segments, concerning trends)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from models.db import Database
from models.periods import rate
from models.scoring_trends.queries import Cell, Rise
from models.scoring_trends.results import ConcerningTrend, Improver, Segment, TrendInsights
from models.scoring_trends.rules import (
    CONCERNING_DROP,
    MIN_SEGMENT_SAMPLE,
    overall_trend,
    reason_text,
    recommendation_for,
)

_REASONS = sa.text(
    """
    SELECT i.k, e.type, count(*) AS n,
           (array_agg(e.from_stage ORDER BY e.occurred_at, e.id)
                FILTER (WHERE e.type = 'STAGE_CHANGE'))[1] AS first_from,
           (array_agg(e.to_stage ORDER BY e.occurred_at DESC, e.id DESC)
                FILTER (WHERE e.type = 'STAGE_CHANGE'))[1] AS last_to
    FROM unnest(CAST(:ks AS int[]), CAST(:leads AS bigint[]), CAST(:froms AS timestamptz[]),
                CAST(:tos AS timestamptz[])) AS i(k, lead_id, from_at, to_at)
    JOIN lead_event e ON e.workspace_id = :ws AND e.lead_id = i.lead_id
                     AND e.occurred_at > i.from_at AND e.occurred_at <= i.to_at
    WHERE e.type <> 'CREATED'
    GROUP BY 1, 2
    """
)
_VERSIONS = sa.text(
    """
    SELECT i.k, l.name,
           (SELECT s.model_version FROM lead_score s
            WHERE s.workspace_id = :ws AND s.lead_id = i.lead_id AND s.scored_at <= i.to_at
            ORDER BY s.scored_at DESC, s.id DESC LIMIT 1) AS version,
           (SELECT s.model_version FROM lead_score s
            WHERE s.workspace_id = :ws AND s.lead_id = i.lead_id AND s.scored_at <= i.from_at
            ORDER BY s.scored_at DESC, s.id DESC LIMIT 1) AS before_version
    FROM unnest(CAST(:ks AS int[]), CAST(:leads AS bigint[]), CAST(:froms AS timestamptz[]),
                CAST(:tos AS timestamptz[])) AS i(k, lead_id, from_at, to_at)
    JOIN lead l ON l.workspace_id = :ws AND l.id = i.lead_id
    """
)


async def improvers_of(
    db: Database, workspace_id: int, candidates: list[Rise]
) -> dict[datetime, list[Improver]]:
    """Names and reasons of the candidates (two statements at once), grouped by bucket."""
    if not candidates:
        return {}
    params = {
        "ws": workspace_id,
        "ks": list(range(len(candidates))),
        "leads": [c.lead_id for c in candidates],
        "froms": [c.before_at for c in candidates],
        "tos": [c.scored_at for c in candidates],
    }

    async def read(statement: Any) -> list[Any]:
        async with db.custom_plans() as session:
            return list((await session.execute(statement, params)).all())

    events, versions = await asyncio.gather(read(_REASONS), read(_VERSIONS))
    activity: dict[int, dict[str, int]] = defaultdict(dict)
    stages: dict[int, tuple[str | None, str | None]] = {}
    for k, kind, n, first_from, last_to in events:
        if kind == "STAGE_CHANGE":
            stages[k] = (first_from, last_to)
        else:
            activity[k][kind] = int(n)
    by_bucket: dict[datetime, list[Improver]] = defaultdict(list)
    for k, name, version, before_version in sorted(versions, key=lambda r: r[0]):
        c = candidates[k]
        by_bucket[c.bucket].append(
            Improver(
                lead_id=c.lead_id,
                name=name,
                score=c.value,
                previous_score=c.before,
                score_increase=c.change,
                scored_at=c.scored_at,
                previous_scored_at=c.before_at,
                reason=reason_text(activity[k], stages.get(k), version, before_version),
            )
        )
    for found in by_bucket.values():
        found.sort(key=lambda i: (-i.score_increase, i.lead_id))
    return by_bucket


def insights_of(rows: list[dict[str, Any]]) -> TrendInsights:
    """From rescorings and change_sum per segment (`dimension`, `value`): each rescoring is in
    one segment of each dimension."""
    total = Cell()
    by_segment: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for row in rows:
        if row["dimension"] == "SOURCE":
            total.add_changes(row)
        by_segment[(row["dimension"], row["value"])].add_changes(row)
    average = rate(total.change_sum, total.rescorings)
    segments = sorted(
        (
            Segment(dim, value, rate(c.change_sum, c.rescorings), c.rescorings)
            for (dim, value), c in by_segment.items()
            if c.rescorings >= MIN_SEGMENT_SAMPLE
        ),
        key=lambda s: (-s.average_improvement, s.dimension, s.value),
    )
    best = next((s for s in segments if s.average_improvement > 0), None)
    concerning = [
        ConcerningTrend(
            segment=s,
            issue=f"Scores fell {-s.average_improvement:.1f} points on average per rescoring "
            f"({s.sample_size} rescorings; all leads: {average:+.1f})",
            recommendation=recommendation_for(s),
        )
        for s in reversed(segments)
        if s.average_improvement <= CONCERNING_DROP
    ]
    return TrendInsights(
        overall_trend=overall_trend(average),
        average_improvement=average,
        rescorings=total.rescorings,
        best_performing_segment=best,
        segments=segments,
        concerning_trends=concerning,
    )
