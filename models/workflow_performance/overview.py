"""Workspace.workflows: today's summary (since local midnight), each workflow with its step
averages and its first runs in progress, and the last OVERVIEW_PERIOD's success rate and
bottlenecks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import col

from models.db import Database, utcnow
from models.leads import Lead
from models.periods import Window, rate, window
from models.scope import Scope
from models.workflow_performance.numbers import WindowTotals, WorkflowDef
from models.workflow_performance.rollup import raw_totals, window_totals
from models.workflow_performance.rules import (
    ACTIVE,
    OVERVIEW_PERIOD,
    Bottleneck,
    Outcome,
    StepStats,
    bottlenecks,
    check_first,
    step_stats,
)
from models.workflow_performance.runs import RunScope, run_table, table, workflow_defs
from models.workflow_performance.scoped import scoped_numbers
from models.workflows import RunStatus, Workflow
from models.workspaces import Workspace


@dataclass(frozen=True, slots=True)
class NextAction:
    type: str
    step_name: str
    description: str
    scheduled: datetime | None


@dataclass(frozen=True, slots=True)
class ActiveRun:
    id: int
    workflow_id: int
    status: str
    lead_id: int | None
    lead_name: str | None
    completed_steps: int
    total_steps: int
    started_at: datetime
    estimated_completion: datetime | None
    next_action: NextAction | None


@dataclass(frozen=True, slots=True)
class WorkflowOverview:
    workflow: WorkflowDef
    steps: tuple[StepStats, ...]
    active: int
    stalled: int
    runs: tuple[ActiveRun, ...]


@dataclass(frozen=True, slots=True)
class WorkflowsSummary:
    total_active: int
    running: int
    stalled: int
    completed_today: int
    failed_today: int
    average_completion_hours: float
    today_start: datetime


@dataclass(frozen=True, slots=True)
class WorkflowsReport:
    summary: WorkflowsSummary
    workflows: tuple[WorkflowOverview, ...]
    performance: Outcome
    bottlenecks: tuple[Bottleneck, ...]
    window: Window
    generated_at: datetime


def local_midnight(now: datetime, timezone: str) -> datetime:
    try:
        zone: tzinfo = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(), zone).astimezone(UTC)


async def _workspace_timezone(db: Database, workspace_id: int) -> str:
    async with db.custom_plans() as session:
        tz = await session.scalar(
            sa.select(col(Workspace.timezone)).where(col(Workspace.id) == workspace_id)
        )
    return tz or "UTC"


async def _active_counts(
    db: Database, rs: RunScope, ids: Sequence[int]
) -> dict[tuple[int, str], int]:
    """Runs in progress per (workflow, status)."""
    r = run_table("r")
    query = (
        sa.select(r.c.workflow_id, r.c.status, sa.func.count())
        .where(rs.in_progress(r, ids))
        .group_by(r.c.workflow_id, r.c.status)
    )
    async with db.custom_plans() as session:
        return {(int(wf), str(s)): int(n) for wf, s, n in await session.execute(query)}


async def _active_runs(
    db: Database, rs: RunScope, ids: Sequence[int], first: int
) -> dict[int, list[Any]]:
    """Per workflow, its `first` runs in progress, soonest next action first."""
    w = table(Workflow).alias("w")
    r = run_table("r")
    lead = table(Lead).alias("l")
    runs = (
        sa.select(
            r.c.id,
            r.c.lead_id,
            r.c.status,
            r.c.current_step,
            r.c.started_at,
            r.c.next_action_at,
            r.c.step_seconds,
        )
        .where(rs.where(r), r.c.workflow_id == w.c.id, r.c.status.in_(ACTIVE))
        .order_by(r.c.next_action_at.asc().nulls_last(), r.c.id)
        .limit(first)
        .lateral("runs")
    )
    query = (
        sa.select(w.c.id.label("workflow_id"), runs, lead.c.name.label("lead_name"))
        .select_from(
            w.join(runs, sa.true()).outerjoin(
                lead, sa.and_(lead.c.workspace_id == w.c.workspace_id, lead.c.id == runs.c.lead_id)
            )
        )
        .where(w.c.workspace_id == rs.scope.workspace_id, w.c.id.in_(ids))
        .order_by(w.c.id, runs.c.next_action_at.asc().nulls_last(), runs.c.id)
    )
    out: dict[int, list[Any]] = {}
    async with db.custom_plans() as session:
        for row in await session.execute(query):
            out.setdefault(int(row.workflow_id), []).append(row)
    return out


def _active_run(workflow: WorkflowDef, stats: Sequence[StepStats], row: Any) -> ActiveRun:
    """A run in progress; estimated completion = when the step in progress is due (or its
    start + the step's average), plus the averages of the later steps."""
    total = len(workflow.steps)
    current = int(row.current_step)
    later = sum(s.average_seconds for s in stats[current + 1 :])
    if row.next_action_at is not None:
        current_end = row.next_action_at
    else:
        done = sum(int(v) for v in row.step_seconds or [])
        average = stats[current].average_seconds if current < total else 0.0
        current_end = row.started_at + timedelta(seconds=done + average)
    step = workflow.steps[current] if current < total else None
    return ActiveRun(
        id=int(row.id),
        workflow_id=workflow.id,
        status=str(row.status),
        lead_id=None if row.lead_id is None else int(row.lead_id),
        lead_name=row.lead_name,
        completed_steps=current,
        total_steps=total,
        started_at=row.started_at,
        estimated_completion=current_end + timedelta(seconds=later),
        next_action=None
        if step is None
        else NextAction(step.type, step.name, step.description, row.next_action_at),
    )


async def _numbers(
    db: Database, rs: RunScope, ids: list[int], span: Window, today: Window, first: int
) -> tuple[WindowTotals, WindowTotals, dict[tuple[int, str], int], dict[int, list[Any]]]:
    """(window totals, today's totals, runs in progress per (workflow, status), the first
    runs in progress per workflow). A USER or AGENT whose today lies inside the window gets
    the first three from one statement."""
    if not ids:
        return WindowTotals(), WindowTotals(), {}, {}
    if rs.everything or today.start < span.start:
        return await asyncio.gather(
            window_totals(db, rs, ids, span),
            raw_totals(db, rs, ids, today.start, today.end, steps=False),
            _active_counts(db, rs, ids),
            _active_runs(db, rs, ids, first),
        )
    numbers, runs = await asyncio.gather(
        scoped_numbers(db, rs, ids, span, today=today), _active_runs(db, rs, ids, first)
    )
    return numbers.totals, numbers.today, numbers.active, runs


async def workflows_report(
    db: Database,
    scope: Scope,
    *,
    status: str | None = None,
    types: Sequence[str] | None = None,
    first: int = 20,
    now: datetime | None = None,
) -> WorkflowsReport:
    """Workspace.workflows: today's summary, each workflow with its step averages and runs in
    progress, and the last OVERVIEW_PERIOD's success rate and bottlenecks."""
    check_first(first)
    now = now or utcnow()
    span = window(OVERVIEW_PERIOD, now)
    defs, tz = await asyncio.gather(
        workflow_defs(db, scope, status, types), _workspace_timezone(db, scope.workspace_id)
    )
    ids = [w.id for w in defs]
    midnight = local_midnight(now, tz)
    totals, today, counts, runs = await _numbers(
        db, RunScope(scope), ids, span, Window(midnight, now), first
    )

    running = {wf: n for (wf, s), n in counts.items() if s == RunStatus.RUNNING}
    stalled = {wf: n for (wf, s), n in counts.items() if s == RunStatus.STALLED}
    overviews = []
    for w in defs:
        stats = step_stats(w, totals)
        overviews.append(
            WorkflowOverview(
                workflow=w,
                steps=stats,
                active=running.get(w.id, 0) + stalled.get(w.id, 0),
                stalled=stalled.get(w.id, 0),
                runs=tuple(_active_run(w, stats, row) for row in runs.get(w.id, [])),
            )
        )
    id_set = set(ids)
    done_today = today.count(id_set, RunStatus.COMPLETED)
    return WorkflowsReport(
        summary=WorkflowsSummary(
            total_active=sum(running.values()) + sum(stalled.values()),
            running=sum(running.values()),
            stalled=sum(stalled.values()),
            completed_today=done_today.runs,
            failed_today=today.count(id_set, RunStatus.FAILED).runs,
            average_completion_hours=rate(done_today.seconds, done_today.runs) / 3600,
            today_start=midnight,
        ),
        workflows=tuple(overviews),
        performance=Outcome.of(totals, id_set),
        bottlenecks=tuple(bottlenecks(defs, totals)),
        window=span,
        generated_at=now,
    )
