"""The reads of lead insights: the period's totals, the open leads' counts per filter, a page
of insights, and the page's score history and engagement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.lead_insights.rules import (
    ENGAGEMENT_EVENTS,
    FILTER_RULES,
    RULES,
    Cuts,
    LeadInsightFilter,
    LeadInsightSort,
    RuleInput,
    cuts_of,
    in_period,
    is_open,
    priority_points,
)
from models.leads import CurrentScore, Lead, LeadEvent, leads_query
from models.periods import Window
from models.scope import Scope

# the columns of a page's order, newest id last to break ties (all descending)
SORT_COLUMNS: dict[LeadInsightSort, tuple[str, ...]] = {
    LeadInsightSort.SCORE: ("score", "id"),
    LeadInsightSort.CREATED_AT: ("created_at", "id"),
    LeadInsightSort.PRIORITY: ("points", "score", "id"),
}


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """Every lead of the period: how many, how many WON, their scores."""

    leads: int
    won: int
    score_sum: int
    scored: int


async def period_totals(session: AsyncSession, scope: Scope, window: Window) -> PeriodTotals:
    query = leads_query(
        sa.func.count(),
        sa.func.count().filter(col(Lead.stage) == "WON"),
        sa.func.coalesce(sa.func.sum(col(CurrentScore.value)), 0),
        sa.func.count(col(CurrentScore.value)),
        scored=True,
    ).where(scope.leads(Lead), *in_period(window))
    leads, won, score_sum, scored = (await session.execute(query)).one()
    return PeriodTotals(int(leads), int(won), int(score_sum or 0), int(scored))


@dataclass(frozen=True, slots=True)
class OpenCounts:
    """The period's open leads: how many, and how many each filter rule matches."""

    cuts: Cuts
    open: int
    by_filter: dict[LeadInsightFilter, int]


async def open_counts(
    session: AsyncSession, scope: Scope, window: Window, now: datetime
) -> OpenCounts:
    cuts = cuts_of(scope)
    rules = RuleInput(cuts, window, now)
    counts = (
        leads_query(
            sa.func.count().label("open"),
            *(
                sa.func.count().filter(rule.clause(rules)).label(rule.filter.value)
                for rule in FILTER_RULES
            ),
            scored=True,
        )
        .join(cuts, sa.true())
        .where(scope.leads(Lead), is_open(), *in_period(window))
        .subquery("counts")
    )
    query = sa.select(cuts.c.q1, cuts.c.q2, cuts.c.q3, cuts.c.b3, counts).select_from(
        cuts.join(counts, sa.true())
    )
    row = (await session.execute(query)).one()._mapping
    return OpenCounts(
        cuts=Cuts(row["q1"], row["q2"], row["q3"], row["b3"]),
        open=int(row["open"]),
        by_filter={rule.filter: int(row[rule.filter.value]) for rule in FILTER_RULES},
    )


async def insight_page(
    session: AsyncSession,
    scope: Scope,
    window: Window,
    now: datetime,
    *,
    filters: Sequence[LeadInsightFilter],
    sort: LeadInsightSort,
    limit: int,
) -> list[tuple[Lead, int | None, int]]:
    """The period's open leads matching every filter, sorted, `limit` of them: (row, current
    score, points)."""
    cuts = cuts_of(scope)
    rules = RuleInput(cuts, window, now)
    columns: dict[str, Any] = {
        "id": col(Lead.id),
        "points": priority_points(cuts),
        "score": sa.func.coalesce(col(CurrentScore.value), -1),
        "created_at": col(Lead.created_at),
    }
    ranked = (
        leads_query(*(column.label(name) for name, column in columns.items()), scored=True)
        .join(cuts, sa.true())
        .where(
            scope.leads(Lead),
            is_open(),
            *in_period(window),
            *(RULES[f].clause(rules) for f in filters),
        )
    )
    order = SORT_COLUMNS[sort]
    page = ranked.order_by(*(columns[name].desc() for name in order)).limit(limit).subquery("page")
    query = (
        select(Lead, page.c.score, page.c.points)
        .join(
            page, sa.and_(col(Lead.workspace_id) == scope.workspace_id, col(Lead.id) == page.c.id)
        )
        .order_by(*(page.c[name].desc() for name in order))
    )
    return [
        (lead, None if score < 0 else int(score), int(points))
        for lead, score, points in (await session.execute(query)).all()
    ]


@dataclass(frozen=True, slots=True)
class ScoreHistory:
    """A lead's newest stored score and the one its change is measured from: the last score
    before the window, else its first score inside it (a lead first scored in the period)."""

    probability: float | None
    baseline: int | None


_SCORES = sa.text(
    """
SELECT ids.id,
       latest.probability,
       coalesce(before.value, first_in.value) AS baseline
FROM unnest(CAST(:ids AS bigint[])) AS ids(id)
LEFT JOIN LATERAL (
    SELECT s.probability FROM lead_score s
    WHERE s.workspace_id = :ws AND s.lead_id = ids.id
    ORDER BY s.scored_at DESC, s.id DESC LIMIT 1
) latest ON true
LEFT JOIN LATERAL (
    SELECT s.value FROM lead_score s
    WHERE s.workspace_id = :ws AND s.lead_id = ids.id AND s.scored_at < :start
    ORDER BY s.scored_at DESC, s.id DESC LIMIT 1
) before ON true
LEFT JOIN LATERAL (
    SELECT s.value FROM lead_score s
    WHERE s.workspace_id = :ws AND s.lead_id = ids.id AND s.scored_at >= :start
    ORDER BY s.scored_at, s.id LIMIT 1
) first_in ON true
"""
)


async def score_history(
    session: AsyncSession, workspace_id: int, lead_ids: Sequence[int], window: Window
) -> dict[int, ScoreHistory]:
    if not lead_ids:
        return {}
    rows = await session.execute(
        _SCORES, {"ids": list(lead_ids), "ws": workspace_id, "start": window.start}
    )
    return {int(r.id): ScoreHistory(r.probability, r.baseline) for r in rows}


async def engagement_counts(
    session: AsyncSession, workspace_id: int, lead_ids: Sequence[int], window: Window
) -> dict[int, tuple[int, int]]:
    """Per lead: (ENGAGEMENT_EVENTS in the window, in the window before it); absent: (0, 0)."""
    if not lead_ids:
        return {}
    before = window.previous()
    at = col(LeadEvent.occurred_at)
    query = (
        select(
            col(LeadEvent.lead_id),
            sa.func.count().filter(at >= window.start),
            sa.func.count().filter(at < window.start),
        )
        .where(
            col(LeadEvent.workspace_id) == workspace_id,
            col(LeadEvent.lead_id).in_(list(lead_ids)),
            col(LeadEvent.type).in_([t.value for t in ENGAGEMENT_EVENTS]),
            at >= before.start,
            at < window.end,
        )
        .group_by(col(LeadEvent.lead_id))
    )
    found: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for lead_id, now, previous in (await session.execute(query)).all():
        found[int(lead_id)] = (int(now), int(previous))
    return dict(found)
