"""Lead insights (seed 000 "Get Lead Insights Overview"): the period's leads, the rules behind
the priorities and filters (rules.py), and the reads of `Workspace.leadInsights`
(queries.py).

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
- the filters are the FILTER_RULES registry (rules.py; each open; several combine with AND).

Reads use two indexes of migration 0011 (index-only scans): `ix_lead_activity` over every lead
and the partial `ix_lead_open` over the open ones.
"""

from __future__ import annotations

from models.lead_insights.queries import (
    SORT_COLUMNS,
    OpenCounts,
    PeriodTotals,
    ScoreHistory,
    engagement_counts,
    insight_page,
    open_counts,
    period_totals,
    score_history,
)
from models.lead_insights.rules import (
    ENGAGED_STAGES,
    ENGAGED_WITHIN,
    ENGAGEMENT_EVENTS,
    FILTER_RULES,
    MAX_LIMIT,
    NEAR_TIMELINES,
    RULES,
    Cuts,
    FilterRule,
    LeadInsightFilter,
    LeadInsightSort,
    LeadPriority,
    RuleInput,
    check_limit,
    priority_of,
)

__all__ = [
    "ENGAGED_STAGES",
    "ENGAGED_WITHIN",
    "ENGAGEMENT_EVENTS",
    "FILTER_RULES",
    "MAX_LIMIT",
    "NEAR_TIMELINES",
    "RULES",
    "SORT_COLUMNS",
    "Cuts",
    "FilterRule",
    "LeadInsightFilter",
    "LeadInsightSort",
    "LeadPriority",
    "OpenCounts",
    "PeriodTotals",
    "RuleInput",
    "ScoreHistory",
    "check_limit",
    "engagement_counts",
    "insight_page",
    "open_counts",
    "period_totals",
    "priority_of",
    "score_history",
]
