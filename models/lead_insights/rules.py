"""The rules of lead insights: which leads a period holds, the score quartiles ("cuts"), the
priorities and the filter registry, each as SQL over `lead` joined with the one-row cuts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from models.errors import BadUserInput
from models.leads import CurrentScore, Lead, LeadEventType, leads_query
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


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadUserInput(
            f"`limit` must be 1..{MAX_LIMIT}", fields={"limit": f"between 1 and {MAX_LIMIT}"}
        )


@dataclass(frozen=True, slots=True)
class Cuts:
    """Score quartiles and the 75th budget percentile of the viewer's open leads (null: none)."""

    score_q1: int | None = None
    score_median: int | None = None
    score_q3: int | None = None
    budget_q3: int | None = None


# ---- the period's leads, the open ones, the cuts and priorities, as SQL -----------------------


def _literals(values: Sequence[str]) -> list[Any]:
    # literal SQL, not parameters: the planner must see that a query implies the partial
    # index's predicate, also under a generic plan of a prepared statement
    return [sa.literal_column(f"'{v}'") for v in values]


def _near() -> Any:
    return col(Lead.timeline).in_(_literals(NEAR_TIMELINES))


def _activity_at() -> Any:
    """The index expression of ix_lead_activity / ix_lead_open, written the same way."""
    return sa.func.coalesce(col(Lead.last_activity_at), col(Lead.created_at))


def in_period(window: Window) -> list[Any]:
    """The period's leads: last activity (else creation) in the window."""
    activity = _activity_at()
    return [activity >= window.start, activity < window.end]


def is_open() -> Any:
    return col(Lead.stage).not_in(_literals(("WON", "LOST")))


def cuts_of(scope: Scope) -> Any:
    """The one-row CTE `cuts` (q1, q2, q3: score quartiles, b3: 75th budget percentile) of
    every open lead the viewer may see."""

    def disc(fraction: float, column: Any) -> Any:
        return sa.func.percentile_disc(fraction).within_group(column)

    return (
        leads_query(
            disc(0.25, col(CurrentScore.value)).label("q1"),
            disc(0.5, col(CurrentScore.value)).label("q2"),
            disc(0.75, col(CurrentScore.value)).label("q3"),
            disc(0.75, col(Lead.budget)).label("b3"),
            scored=True,
        )
        .where(scope.leads(Lead), is_open())
        .cte("cuts")
    )


def priority_points(cuts: Any) -> Any:
    """Priority points (see the package docstring); 0 for an unscored lead."""
    score = col(CurrentScore.value)
    quartile = sa.case(
        (score >= cuts.c.q3, 3), (score >= cuts.c.q2, 2), (score >= cuts.c.q1, 1), else_=0
    )
    return sa.case((score.is_(None), 0), else_=quartile + sa.case((_near(), 1), else_=0))


# ---- the filters: a registry of small rules ---------------------------------------------------


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


FILTER_RULES: tuple[FilterRule, ...] = (
    FilterRule(
        LeadInsightFilter.HIGH_VALUE,
        "Open leads with a budget in the top quartile of the open leads' budgets and a score "
        "at or above the median",
        lambda r: sa.and_(col(Lead.budget) >= r.cuts.c.b3, col(CurrentScore.value) >= r.cuts.c.q2),
    ),
    FilterRule(
        LeadInsightFilter.URGENT,
        "Open leads scoring in the top quartile (at or above the 75th percentile) whose "
        "timeline is IMMEDIATE or WITHIN_3_MONTHS: the URGENT priority",
        lambda r: sa.and_(col(CurrentScore.value) >= r.cuts.c.q3, _near()),
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
        lambda r: col(CurrentScore.value) <= r.cuts.c.q1,
    ),
)
RULES = {rule.filter: rule for rule in FILTER_RULES}
