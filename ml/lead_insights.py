"""Lead insights (seed 000 "Get Lead Insights Overview"): the summary of the period's leads and,
per lead of the page, its score, priority, sentences and recommendations (ml/lead_advice.py)
and trends. The rules of the period, priorities and filters are in models/lead_insights/.

Trends: scoreChange = current score - the last stored score before the window (else the first
one inside it); engagementChange = (events in the window - events in the window before) /
events in the window before, null when there were none before; events are the lead's own
moves (models.lead_insights.ENGAGEMENT_EVENTS). Sentences only for scored leads: they explain
the score (none without a model).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ml import registry
from ml.explain import Explanation, explain_leads
from ml.lead_advice import (
    LeadFacts,
    LeadTrends,
    Recommendation,
    activity_sentences,
    factor_sentences,
    recommendations,
)
from models.db import Database
from models.lead_insights import (
    Cuts,
    LeadInsightFilter,
    LeadInsightSort,
    LeadPriority,
    check_limit,
    priority_of,
    queries,
)
from models.leads import Lead
from models.ml_models import MlModel
from models.periods import Window, change, rate, window
from models.scope import Scope

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LeadInsight:
    lead: Lead
    current_score: int | None
    conversion_probability: float | None
    priority: LeadPriority
    insights: tuple[str, ...]
    recommendations: tuple[Recommendation, ...]
    trends: LeadTrends

    def fingerprint(self) -> object:
        """What a subscriber is sent again for (the row by its id and last change)."""
        return (
            self.lead.id,
            self.lead.updated_at,
            self.lead.stage,
            self.current_score,
            self.conversion_probability,
            self.priority,
            self.insights,
            self.recommendations,
            self.trends,
        )


@dataclass(frozen=True, slots=True)
class LeadInsightsSummary:
    total_leads: int
    open_leads: int
    won_leads: int
    high_value_leads: int
    urgent_leads: int
    conversion_rate: float  # WON / all the period's leads
    average_score: float | None


@dataclass(frozen=True, slots=True)
class LeadInsightsReport:
    period: str
    window: Window
    summary: LeadInsightsSummary
    insights: tuple[LeadInsight, ...]
    applied: tuple[LeadInsightFilter, ...]
    counts: dict[LeadInsightFilter, int]
    cuts: Cuts
    computed_at: datetime

    def fingerprint(self) -> object:
        """Everything but the clock: an unchanged report is not sent again."""
        return (
            self.summary,
            tuple(i.fingerprint() for i in self.insights),
            self.applied,
            tuple(self.counts.items()),
            self.cuts,
        )


# ---- explanations, remembered per (lead, its last change, model version) ---------------------

# A lead's features change only with the lead (`updated_at` moves with every edit and every
# recorded event) and a model version never changes, so a page read again after an unrelated
# write explains only the leads that changed. LRU, per process; ~3 KB an explanation.
EXPLAINED_SIZE = 5000
ExplanationKey = tuple[str, int, int, datetime, int, int]
_explained: OrderedDict[ExplanationKey, Explanation] = OrderedDict()


async def explain_page(
    db: Database, workspace_id: int, leads: Sequence[Lead]
) -> dict[int, Explanation]:
    """`explain.explain_leads` for a page, skipping the leads explained before unchanged."""
    if not leads:
        return {}
    async with db.session() as session:
        champion, challenger = await registry.serving_models(session, workspace_id)
    found: dict[int, Explanation] = {}
    missing: dict[int, tuple[MlModel, list[Lead]]] = {}
    for lead in leads:
        assert lead.id is not None  # a stored row
        serving = registry.route(lead.id, champion, challenger)
        if serving is None or serving.id is None:
            continue
        key = (db.url, workspace_id, lead.id, lead.updated_at, serving.id, serving.version)
        hit = _explained.get(key)
        if hit is not None:
            _explained.move_to_end(key)
            found[lead.id] = hit
        else:
            missing.setdefault(serving.id, (serving, []))[1].append(lead)
    for model, group in missing.values():
        explained = await explain_leads(db, workspace_id, group, model=model)
        for lead in group:
            assert lead.id is not None and model.id is not None
            e = explained.get(lead.id)
            if e is not None:
                found[lead.id] = e
                key = (db.url, workspace_id, lead.id, lead.updated_at, model.id, model.version)
                _explained[key] = e
    while len(_explained) > EXPLAINED_SIZE:
        _explained.popitem(last=False)
    return found


# ---- the report ------------------------------------------------------------------------------


def lead_insight(
    lead: Lead,
    score: int | None,
    points: int,
    now: datetime,
    explanation: Explanation | None,
    probability: float | None,
    baseline: int | None,
    events: tuple[int, int],
) -> LeadInsight:
    """One lead's insight from its facts (pure)."""
    now_events, previous = events
    trends = LeadTrends(
        score_change=None if score is None or baseline is None else score - baseline,
        engagement_events=now_events,
        previous_engagement_events=previous,
        engagement_change=change(now_events, previous),
        last_activity=lead.last_activity_at,
    )
    last = lead.last_activity_at or lead.created_at
    quiet_days = max(0, (now - last).days)
    facts = LeadFacts(
        lead=lead,
        priority=priority_of(points),
        probability=probability,
        trends=trends,
        quiet_days=quiet_days,
        hours_old=(now - lead.created_at).total_seconds() / 3600,
        explanation=explanation,
        score=score,
    )
    sentences: list[str] = []
    if explanation is not None:
        sentences = factor_sentences(explanation) + activity_sentences(trends, quiet_days)
    return LeadInsight(
        lead=lead,
        current_score=score,
        conversion_probability=probability if score is not None else None,
        priority=facts.priority,
        insights=tuple(sentences),
        recommendations=recommendations(facts),
        trends=trends,
    )


async def lead_insights(
    db: Database,
    scope: Scope,
    *,
    period: str = "H24",
    filters: Sequence[LeadInsightFilter] = (),
    limit: int = 50,
    sort: LeadInsightSort = LeadInsightSort.SCORE,
    now: datetime | None = None,
) -> LeadInsightsReport:
    """The lead insights of the viewer's leads over `period` (a models.periods.PERIODS name)."""
    check_limit(limit)
    w = window(period, now)
    applied = tuple(dict.fromkeys(filters))

    async def read(query: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        # a session each: Postgres works on the statements in parallel
        async with db.custom_plans() as session:
            return await query(session, *args, **kwargs)

    totals, counts, page = await asyncio.gather(
        read(queries.period_totals, scope, w),
        read(queries.open_counts, scope, w, w.end),
        read(queries.insight_page, scope, w, w.end, filters=applied, sort=sort, limit=limit),
    )
    ids = [lead.id for lead, _, _ in page if lead.id is not None]
    scored = [lead for lead, score, _ in page if score is not None]
    explanations, history, engagement = await asyncio.gather(
        explain_page(db, scope.workspace_id, scored),
        read(queries.score_history, scope.workspace_id, ids, w),
        read(queries.engagement_counts, scope.workspace_id, ids, w),
    )
    insights = []
    for lead, score, points in page:
        assert lead.id is not None  # a stored row
        found = history.get(lead.id)
        insights.append(
            lead_insight(
                lead,
                score,
                points,
                w.end,
                explanations.get(lead.id) if score is not None else None,
                found.probability if found else None,
                found.baseline if found else None,
                engagement.get(lead.id, (0, 0)),
            )
        )
    return LeadInsightsReport(
        period=period,
        window=w,
        summary=LeadInsightsSummary(
            total_leads=totals.leads,
            open_leads=counts.open,
            won_leads=totals.won,
            high_value_leads=counts.by_filter[LeadInsightFilter.HIGH_VALUE],
            urgent_leads=counts.by_filter[LeadInsightFilter.URGENT],
            conversion_rate=rate(totals.won, totals.leads),
            average_score=totals.score_sum / totals.scored if totals.scored else None,
        ),
        insights=tuple(insights),
        applied=applied,
        counts=counts.by_filter,
        cuts=counts.cuts,
        computed_at=w.end,
    )
