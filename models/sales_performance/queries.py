"""The overview's reads: each takes a connection of its own, so they run at once. Every read
covers the window and the one before it (`cur` tells them apart)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from models.agents import Agent
from models.db import Database
from models.leads import CurrentScore, Lead, LeadEngagement, LeadEvent, LeadStage, leads_query
from models.periods import HIGH_VALUE_SCORE, Window, next_bucket, trunc, trunc_sql
from models.sales_performance.numbers import CLOSED_STAGES, ENGAGEMENT_TYPES, QUALIFIED_STAGES
from models.sales_performance.tables import LeadEventHour, PerformanceThreshold
from models.sales_performance.thresholds import load_thresholds
from models.scope import Scope

BY_BUCKET, BY_SOURCE, BY_AGENT = 3, 5, 6  # grouping() of the three sets of `_grouped`


def _grouped(base: Any, *measures: Any) -> Any:
    """Aggregates of `base` (cur, bucket, source, agent_id, ...) per (cur, bucket),
    (cur, source) and (cur, agent_id) at once; `kind` tells the grouping apart."""
    c = base.c
    return sa.select(
        sa.func.grouping(c.bucket, c.source, c.agent_id).label("kind"),
        c.cur,
        c.bucket,
        c.source,
        c.agent_id,
        *measures,
    ).group_by(
        sa.func.grouping_sets(
            sa.tuple_(c.cur, c.bucket), sa.tuple_(c.cur, c.source), sa.tuple_(c.cur, c.agent_id)
        )
    )


def _leads_at(
    scope: Scope,
    w: Window,
    unit: str,
    at: Any,
    *columns: Any,
    where: Any = (),
    scored: bool = False,
) -> Any:
    """The viewer's leads whose time `at` falls in the window or the one before (matching
    `where`): cur, bucket (of `at`), source, agent_id and `columns`, for `_grouped`; `scored`
    joins each lead's CurrentScore for `columns` to read."""
    at = col(at)
    query = leads_query(
        (at >= w.start).label("cur"),
        trunc_sql(unit, at).label("bucket"),
        col(Lead.source),
        col(Lead.agent_id),
        *columns,
        scored=scored,
    )
    return query.where(scope.leads(Lead), *where, at >= w.previous().start, at < w.end).subquery(
        "l"
    )


async def cohort(db: Database, scope: Scope, w: Window, unit: str) -> list[Any]:
    """Leads created in the window and the one before: counts, stages and scores."""
    base = _leads_at(
        scope,
        w,
        unit,
        Lead.created_at,
        col(Lead.stage),
        col(CurrentScore.value).label("score"),
        scored=True,
    )
    c = base.c
    query = _grouped(
        base,
        sa.func.count().label("leads"),
        sa.func.count().filter(c.stage.not_in([s.value for s in CLOSED_STAGES])).label("active"),
        sa.func.count(c.score).label("scored"),
        sa.func.coalesce(sa.func.sum(c.score), 0).label("score_sum"),
        sa.func.count().filter(c.score >= HIGH_VALUE_SCORE).label("high_value"),
        sa.func.count().filter(c.stage.in_([s.value for s in QUALIFIED_STAGES])).label("qualified"),
    )
    async with db.custom_plans() as session:
        return list((await session.execute(query)).all())


async def conversions(db: Database, scope: Scope, w: Window, unit: str) -> list[Any]:
    """Leads WON in the window and the one before (the partial index on `converted_at`)."""
    won = col(Lead.stage) == LeadStage.WON.value
    base = _leads_at(scope, w, unit, Lead.converted_at, where=[won])
    async with db.custom_plans() as session:
        return list((await session.execute(_grouped(base, sa.func.count().label("n")))).all())


async def response_hours(db: Database, scope: Scope, w: Window) -> dict[bool, tuple[int, float]]:
    """Per window (True: current): leads with a first response and the median hours to it."""
    G = LeadEngagement
    leads = (
        sa.select(col(Lead.id), col(Lead.created_at))
        .where(
            scope.leads(Lead),
            col(Lead.created_at) >= w.previous().start,
            col(Lead.created_at) < w.end,
        )
        .cte("c")
        .prefix_with("MATERIALIZED")
    )
    hours = sa.extract("epoch", col(G.first_response_at) - leads.c.created_at) / 3600.0
    # the cohort's id range bounds the rollup's key range (leads get ids in creation order,
    # so the range is tight): one range scan and a hash join instead of a probe per lead
    query = (
        sa.select(
            (leads.c.created_at >= w.start).label("cur"),
            sa.func.count(),
            sa.func.percentile_cont(0.5).within_group(hours),
        )
        .select_from(leads)
        .join(
            G,
            sa.and_(
                col(G.workspace_id) == scope.workspace_id,
                col(G.lead_id) == leads.c.id,
                col(G.lead_id) >= sa.select(sa.func.min(leads.c.id)).scalar_subquery(),
                col(G.lead_id) <= sa.select(sa.func.max(leads.c.id)).scalar_subquery(),
            ),
        )
        .where(col(G.first_response_at).is_not(None))
        .group_by(sa.text("1"))
    )
    async with db.custom_plans() as session:
        rows = (await session.execute(query)).all()
    return {bool(cur): (int(n), float(median or 0.0)) for cur, n, median in rows}


def _ragged(points: list[datetime]) -> tuple[list[tuple[datetime, datetime]], set[datetime]]:
    """Hours the rollup cannot answer (they hold a window boundary) as raw ranges, clipped
    to [first point, last point), and the set of those hours' starts."""
    lo, hi = points[0], points[-1]
    ranges, hours = [], set()
    for p in points:
        floor = trunc(p, "hour")
        if floor == p:
            continue
        hours.add(floor)
        ranges.append((max(floor, lo), min(next_bucket(floor, "hour"), hi)))
    return ranges, hours


def _event_counts(split: datetime, *where: Any) -> Any:
    """Lead events per (type, cur) where `where` holds; cur: at or after `split`."""
    E = LeadEvent
    return (
        sa.select(col(E.type), (col(E.occurred_at) >= split).label("cur"), sa.func.count())
        .where(*where)
        .group_by(sa.text("1, 2"))
    )


async def events(db: Database, scope: Scope, w: Window) -> dict[bool, dict[str, int]]:
    """Engagement events per window (True: current) and type."""
    start, split, end = w.previous().start, w.start, w.end
    E = LeadEvent
    of_workspace = (col(E.workspace_id) == scope.workspace_id, col(E.type).in_(ENGAGEMENT_TYPES))
    if scope.is_admin:
        # whole hours from the rollup, the hours holding a boundary from the events
        ranges, ragged = _ragged([start, split, end])
        R = LeadEventHour
        rolled = sa.select(
            col(R.type), (col(R.hour) >= split).label("cur"), sa.func.sum(col(R.events))
        ).where(
            col(R.workspace_id) == scope.workspace_id,
            col(R.type).in_(ENGAGEMENT_TYPES),
            col(R.hour) >= start,
            col(R.hour) < end,
            col(R.hour).not_in(list(ragged)) if ragged else sa.true(),
        )
        queries = [rolled.group_by(sa.text("1, 2"))]
        queries += [
            _event_counts(split, *of_workspace, col(E.occurred_at) >= lo, col(E.occurred_at) < hi)
            for lo, hi in ranges
        ]
    else:
        queries = [
            _event_counts(
                split,
                scope.leads(Lead),
                # every event write keeps last_activity_at >= its time: only the leads active
                # since the span's start are looked into (their events by ix_lead_event_lead)
                col(Lead.last_activity_at) >= start,
                *of_workspace,
                col(E.occurred_at) >= start,
                col(E.occurred_at) < end,
            ).join(
                Lead,
                sa.and_(col(Lead.workspace_id) == E.workspace_id, col(Lead.id) == col(E.lead_id)),
            )
        ]
    out: dict[bool, dict[str, int]] = {True: {}, False: {}}
    async with db.custom_plans() as session:
        for query in queries:
            for type_, cur, n in (await session.execute(query)).all():
                bucket = out[bool(cur)]
                bucket[type_] = bucket.get(type_, 0) + int(n)
    return out


async def generation(db: Database, scope: Scope, end: datetime) -> tuple[int, int, int]:
    """New leads in the last day, 7 days and 30 days."""
    created = col(Lead.created_at)
    query = sa.select(
        sa.func.count().filter(created >= end - timedelta(days=1)),
        sa.func.count().filter(created >= end - timedelta(days=7)),
        sa.func.count(),
    ).where(scope.leads(Lead), created >= end - timedelta(days=30), created < end)
    async with db.custom_plans() as session:
        daily, weekly, monthly = (await session.execute(query)).one()
    return int(daily), int(weekly), int(monthly)


async def agents_and_thresholds(
    db: Database, scope: Scope
) -> tuple[dict[int, Agent], PerformanceThreshold]:
    """The workspace's agents (a lead's agent is visible to whoever sees the lead) and its
    alert thresholds."""
    async with db.custom_plans() as session:
        rows = (await session.execute(select(Agent).where(scope.where(Agent)))).scalars()
        agents = {row.id: row for row in rows if row.id is not None}
        return agents, await load_thresholds(session, scope.workspace_id)
