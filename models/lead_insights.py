"""Lead insights (seed 000 "Get Lead Insights Overview"): the period's leads, the rules behind
the priorities and filters, and the queries of `Workspace.leadInsights`.

The period's leads are the leads the viewer may see whose last activity (`last_activity_at`,
or `created_at` for a lead without events) falls in the period's window: every lead created or
worked on in the period. The summary covers all of them; the list, the filters and the
priorities cover the open ones (not WON or LOST: nothing is left to do for a closed lead).

Priorities and three filters stand on the score quartiles (percentile_disc 0.25 / 0.5 / 0.75)
of the current scores of every open lead the viewer may see, whatever the period, so that a
lead's priority does not change with the window looked through:
- priority: quartile points (3 at or above the 75th percentile, 2 at or above the median, 1 at
  or above the 25th percentile, else 0) plus 1 when the timeline is IMMEDIATE or
  WITHIN_3_MONTHS; 4 is URGENT, 3 HIGH, 2 MEDIUM, less LOW; an unscored lead is LOW.
- the filters are FILTER_RULES below (each open; several combine with AND).

Reads use two indexes of migration 0011 (index-only scans): `ix_lead_activity` over every lead
and the partial `ix_lead_open` over the open ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.errors import BadUserInput
from models.leads import Lead, LeadEventType
from models.leads import LeadEvent as LeadEventRow
from models.periods import Window
from models.scope import Scope

MAX_LIMIT = 100
NEAR_TIMELINES = ("IMMEDIATE", "WITHIN_3_MONTHS")
ENGAGED_STAGES = ("QUALIFIED", "SHOWING", "OFFER")
ENGAGED_WITHIN = timedelta(days=7)
# the lead's own moves: what `engagementChange` counts (not our emails out, notes or stages)
ENGAGEMENT_EVENTS = (
    LeadEventType.EMAIL_OPENED,
    LeadEventType.EMAIL_REPLIED,
    LeadEventType.CALL,
    LeadEventType.MEETING,
    LeadEventType.SHOWING,
    LeadEventType.WEBSITE_VISIT,
)


class LeadInsightFilter(StrEnum):
    HIGH_VALUE = "HIGH_VALUE"
    URGENT = "URGENT"
    NEW = "NEW"
    ENGAGED = "ENGAGED"
    COLD = "COLD"


class LeadInsightSort(StrEnum):
    SCORE = "SCORE"
    CREATED_AT = "CREATED_AT"
    PRIORITY = "PRIORITY"


class LeadPriority(StrEnum):
    URGENT = "URGENT"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


_PRIORITY_BY_POINTS = {4: LeadPriority.URGENT, 3: LeadPriority.HIGH, 2: LeadPriority.MEDIUM}


def priority_of(points: int) -> LeadPriority:
    return _PRIORITY_BY_POINTS.get(points, LeadPriority.LOW)


@dataclass(frozen=True, slots=True)
class Cuts:
    """Score quartiles and the 75th budget percentile of the viewer's open leads (null: none)."""

    score_q1: int | None = None
    score_median: int | None = None
    score_q3: int | None = None
    budget_q3: int | None = None


# ---- the rules, as SQL over `lead` joined with the one-row `cuts` -----------------------------


@dataclass(frozen=True, slots=True)
class RuleInput:
    cuts: Any  # the cuts CTE (columns q1, q2, q3, b3)
    window: Window
    now: datetime


@dataclass(frozen=True, slots=True)
class FilterRule:
    filter: LeadInsightFilter
    description: str
    clause: Callable[[RuleInput], Any]


def _literals(values: Sequence[str]) -> list[Any]:
    # literal SQL, not parameters: the planner must see that a query implies the partial
    # index's predicate, also under a generic plan of a prepared statement
    return [sa.literal_column(f"'{v}'") for v in values]


def _near() -> Any:
    return col(Lead.timeline).in_(_literals(NEAR_TIMELINES))


FILTER_RULES: tuple[FilterRule, ...] = (
    FilterRule(
        LeadInsightFilter.HIGH_VALUE,
        "Open leads with a budget in the top quartile of the open leads' budgets and a score "
        "at or above the median",
        lambda r: sa.and_(col(Lead.budget) >= r.cuts.c.b3, col(Lead.score) >= r.cuts.c.q2),
    ),
    FilterRule(
        LeadInsightFilter.URGENT,
        "Open leads scoring in the top quartile (at or above the 75th percentile) whose "
        "timeline is IMMEDIATE or WITHIN_3_MONTHS: the URGENT priority",
        lambda r: sa.and_(col(Lead.score) >= r.cuts.c.q3, _near()),
    ),
    FilterRule(
        LeadInsightFilter.NEW,
        "Open leads created in the period",
        lambda r: sa.and_(
            col(Lead.created_at) >= r.window.start, col(Lead.created_at) < r.window.end
        ),
    ),
    FilterRule(
        LeadInsightFilter.ENGAGED,
        f"Open leads in conversation: stage {', '.join(ENGAGED_STAGES)} and active in the "
        f"last {ENGAGED_WITHIN.days} days",
        lambda r: sa.and_(
            col(Lead.stage).in_(_literals(ENGAGED_STAGES)),
            col(Lead.last_activity_at) >= r.now - ENGAGED_WITHIN,
        ),
    ),
    FilterRule(
        LeadInsightFilter.COLD,
        "Open leads scoring in the bottom quartile (at or below the 25th percentile)",
        lambda r: col(Lead.score) <= r.cuts.c.q1,
    ),
)
RULES = {rule.filter: rule for rule in FILTER_RULES}


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadUserInput(
            f"`limit` must be 1..{MAX_LIMIT}", fields={"limit": f"between 1 and {MAX_LIMIT}"}
        )


def _activity_at() -> Any:
    """The index expression of ix_lead_activity / ix_lead_open, written the same way."""
    return sa.func.coalesce(col(Lead.last_activity_at), col(Lead.created_at))


def _in_window(window: Window) -> list[Any]:
    activity = _activity_at()
    return [activity >= window.start, activity < window.end]


def _open() -> Any:
    return col(Lead.stage).not_in(_literals(("WON", "LOST")))


def _cuts(scope: Scope) -> Any:
    def disc(fraction: float, column: Any) -> Any:
        return sa.func.percentile_disc(fraction).within_group(column)

    return (
        select(
            disc(0.25, col(Lead.score)).label("q1"),
            disc(0.5, col(Lead.score)).label("q2"),
            disc(0.75, col(Lead.score)).label("q3"),
            disc(0.75, col(Lead.budget)).label("b3"),
        )
        .where(scope.leads(Lead), _open())
        .cte("cuts")
    )


def _points(cuts: Any) -> Any:
    """Priority points (see the module docstring); 0 for an unscored lead."""
    score = col(Lead.score)
    quartile = sa.case(
        (score >= cuts.c.q3, 3), (score >= cuts.c.q2, 2), (score >= cuts.c.q1, 1), else_=0
    )
    return sa.case((score.is_(None), 0), else_=quartile + sa.case((_near(), 1), else_=0))


# ---- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """Every lead of the period: how many, how many WON, their scores."""

    leads: int
    won: int
    score_sum: int
    scored: int


async def period_totals(session: AsyncSession, scope: Scope, window: Window) -> PeriodTotals:
    query = select(
        sa.func.count(),
        sa.func.count().filter(col(Lead.stage) == "WON"),
        sa.func.coalesce(sa.func.sum(col(Lead.score)), 0),
        sa.func.count(col(Lead.score)),
    ).where(scope.leads(Lead), *_in_window(window))
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
    cuts = _cuts(scope)
    rules = RuleInput(cuts, window, now)
    counts = (
        select(
            sa.func.count().label("open"),
            *(
                sa.func.count().filter(rule.clause(rules)).label(rule.filter.value)
                for rule in FILTER_RULES
            ),
        )
        .select_from(Lead)
        .join(cuts, sa.true())
        .where(scope.leads(Lead), _open(), *_in_window(window))
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
) -> list[tuple[Lead, int]]:
    """The period's open leads matching every filter, sorted, `limit` of them: (row, points)."""
    cuts = _cuts(scope)
    rules = RuleInput(cuts, window, now)
    points, score = _points(cuts), sa.func.coalesce(col(Lead.score), -1)
    lead_id, created_at = col(Lead.id), col(Lead.created_at)
    ranked = (
        sa.select(
            lead_id.label("id"),
            points.label("points"),
            score.label("score"),
            created_at.label("created_at"),
        )
        .select_from(Lead)
        .join(cuts, sa.true())
        .where(
            scope.leads(Lead),
            _open(),
            *_in_window(window),
            *(RULES[f].clause(rules) for f in filters),
        )
    )
    orders: dict[LeadInsightSort, tuple[Any, ...]] = {
        LeadInsightSort.SCORE: (score.desc(), lead_id.desc()),
        LeadInsightSort.CREATED_AT: (created_at.desc(), lead_id.desc()),
        LeadInsightSort.PRIORITY: (points.desc(), score.desc(), lead_id.desc()),
    }
    page = ranked.order_by(*orders[sort]).limit(limit).subquery("page")
    outer: dict[LeadInsightSort, tuple[Any, ...]] = {
        LeadInsightSort.SCORE: (page.c.score.desc(), page.c.id.desc()),
        LeadInsightSort.CREATED_AT: (page.c.created_at.desc(), page.c.id.desc()),
        LeadInsightSort.PRIORITY: (page.c.points.desc(), page.c.score.desc(), page.c.id.desc()),
    }
    query = (
        select(Lead, page.c.points)
        .join(
            page, sa.and_(col(Lead.workspace_id) == scope.workspace_id, col(Lead.id) == page.c.id)
        )
        .order_by(*outer[sort])
    )
    return [(lead, int(points)) for lead, points in (await session.execute(query)).all()]


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
    at = col(LeadEventRow.occurred_at)
    query = (
        select(
            col(LeadEventRow.lead_id),
            sa.func.count().filter(at >= window.start),
            sa.func.count().filter(at < window.start),
        )
        .where(
            col(LeadEventRow.workspace_id) == workspace_id,
            col(LeadEventRow.lead_id).in_(list(lead_ids)),
            col(LeadEventRow.type).in_([t.value for t in ENGAGEMENT_EVENTS]),
            at >= before.start,
            at < window.end,
        )
        .group_by(col(LeadEventRow.lead_id))
    )
    found: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for lead_id, now, previous in (await session.execute(query)).all():
        found[int(lead_id)] = (int(now), int(previous))
    return dict(found)
