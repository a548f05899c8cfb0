"""A window's finished runs and their steps. ADMIN: the per-day rollups of migration 0015
(`workflow_run_day`, `workflow_step_day`, kept by triggers on `workflow_run`) for the whole
UTC days, plus the partial first day from `workflow_run` itself (index-only); others: their
leads' runs in one statement (scoped.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from models.db import Database
from models.periods import Window
from models.workflow_performance.numbers import WindowTotals
from models.workflow_performance.runs import (
    RunScope,
    finished_in,
    run_sums,
    run_table,
    step_elements,
    step_sums,
    table,
)
from models.workflow_performance.scoped import scoped_numbers
from models.workflows import WorkflowRunDay, WorkflowStepDay


async def raw_totals(
    db: Database,
    rs: RunScope,
    ids: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    steps: bool,
) -> WindowTotals:
    """Runs finished in [start, end) counted from `workflow_run` itself (with `steps`, their
    steps too)."""
    r = run_table("r")
    where = sa.and_(rs.where(r), finished_in(r, start, end), r.c.workflow_id.in_(ids))
    runs = (
        sa.select(r.c.workflow_id, r.c.status, *run_sums(r))
        .where(where)
        .group_by(r.c.workflow_id, r.c.status)
    )
    out = WindowTotals()
    async with db.custom_plans() as session:
        for wf, status, n, seconds, done in await session.execute(runs):
            out.add_run(wf, status, n, seconds, done)
        if steps:
            elements = step_elements(r)
            query = (
                sa.select(r.c.workflow_id, *step_sums(elements))
                .select_from(r.join(elements, sa.true()))
                .where(where)
                .group_by(r.c.workflow_id, elements.c.ord)
            )
            for wf, step, n, seconds in await session.execute(query):
                out.add_step(wf, step, n, seconds)
    return out


def _day_sums(
    model: Any,
    key: str,
    sums: Sequence[str],
    workspace_id: int,
    ids: Sequence[int],
    first_day: date,
    last_day: date,
) -> Any:
    """(workflow_id, key, sum of each of `sums`) over a rollup's days [first_day, last_day]."""
    t = table(model)
    return (
        sa.select(t.c.workflow_id, t.c[key], *(sa.func.sum(t.c[s]) for s in sums))
        .where(
            t.c.workspace_id == workspace_id,
            t.c.workflow_id.in_(ids),
            t.c.day.between(first_day, last_day),
        )
        .group_by(t.c.workflow_id, t.c[key])
    )


async def rollup_totals(
    db: Database, workspace_id: int, ids: Sequence[int], first_day: date, last_day: date
) -> WindowTotals:
    """Runs finished on whole UTC days [first_day, last_day] from the rollups (ADMIN only)."""
    days = (workspace_id, ids, first_day, last_day)
    out = WindowTotals()
    async with db.custom_plans() as session:
        runs = _day_sums(WorkflowRunDay, "status", ("runs", "seconds", "steps"), *days)
        for wf, status, n, seconds, done in await session.execute(runs):
            out.add_run(wf, status, n, seconds, done)
        steps = _day_sums(WorkflowStepDay, "step", ("runs", "seconds"), *days)
        for wf, step, n, seconds in await session.execute(steps):
            out.add_step(wf, step, n, seconds)
    return out


async def window_totals(
    db: Database, rs: RunScope, ids: Sequence[int], span: Window
) -> WindowTotals:
    """Runs finished in the window and their steps. ADMIN: the rollups' whole UTC days after
    the window's first day plus that partial day from the runs; others: their runs."""
    if not ids:
        return WindowTotals()
    if not rs.everything:
        return (await scoped_numbers(db, rs, ids, span)).totals
    start_utc = span.start.astimezone(UTC)
    next_midnight = datetime.combine(start_utc.date() + timedelta(days=1), time(), UTC)
    edge, whole = await asyncio.gather(
        raw_totals(db, rs, ids, span.start, min(next_midnight, span.end), steps=True),
        rollup_totals(db, rs.scope.workspace_id, ids, next_midnight.date(), span.end.date()),
    )
    edge.merge(whole)
    return edge
