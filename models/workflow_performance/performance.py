"""Workspace.workflowPerformance: a window's executions overall and by workflow type (with
the conversion impact), efficiency (time and cost saved, error rate), bottlenecks, insights."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from models.db import Database
from models.leads import Lead, LeadStage
from models.periods import Window, check_period, rate, window
from models.scope import Scope
from models.workflow_performance.numbers import WindowTotals, WorkflowDef
from models.workflow_performance.rollup import window_totals
from models.workflow_performance.rules import (
    WORKFLOW_PERIODS,
    Bottleneck,
    Outcome,
    WorkflowInsight,
    bottlenecks,
    insights,
    step_kind,
)
from models.workflow_performance.runs import RunScope, finished_in, run_table, workflow_defs
from models.workflow_performance.scoped import scoped_numbers


@dataclass(frozen=True, slots=True)
class TypePerformance:
    type: str
    workflows: int
    outcome: Outcome
    conversion_rate: float
    conversion_impact: float


@dataclass(frozen=True, slots=True)
class Efficiency:
    time_saved_hours: float
    cost_savings: float
    hourly_rate: float
    error_rate: float
    step_executions: int


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    period: str
    window: Window
    overall: Outcome
    baseline_conversion_rate: float
    by_type: tuple[TypePerformance, ...]
    efficiency: Efficiency
    bottlenecks: tuple[Bottleneck, ...]
    insights: tuple[WorkflowInsight, ...]


async def _conversions(
    db: Database, rs: RunScope, ids: Sequence[int], span: Window
) -> dict[int, tuple[int, int]]:
    """Per workflow: runs finished in the window, and those whose lead is WON now."""
    r = run_table("r")
    won = (
        sa.select(col(Lead.id))
        .where(col(Lead.workspace_id) == rs.scope.workspace_id, col(Lead.stage) == LeadStage.WON)
        .subquery("won")
    )
    query = (
        sa.select(r.c.workflow_id, sa.func.count(), sa.func.count(won.c.id))
        .select_from(r.outerjoin(won, won.c.id == r.c.lead_id))
        .where(rs.where(r), r.c.workflow_id.in_(ids), finished_in(r, span.start, span.end))
        .group_by(r.c.workflow_id)
    )
    async with db.custom_plans() as session:
        return {int(wf): (int(n), int(w)) for wf, n, w in await session.execute(query)}


async def _lead_counts(db: Database, scope: Scope) -> tuple[int, int]:
    """The viewer's leads, and the WON ones among them (one index-only scan)."""
    query = sa.select(
        sa.func.count(), sa.func.count().filter(col(Lead.stage) == LeadStage.WON)
    ).where(scope.leads(Lead))
    async with db.custom_plans() as session:
        leads, won = (await session.execute(query)).one()
    return int(leads), int(won)


async def _numbers(
    db: Database, rs: RunScope, ids: list[int], span: Window
) -> tuple[WindowTotals, dict[int, tuple[int, int]], int, int]:
    """(window totals, per workflow (runs, runs whose lead is WON), the viewer's leads, and
    their WON ones); a USER's or AGENT's from one statement."""
    if not ids:
        return WindowTotals(), {}, 0, 0
    if rs.everything:
        totals, conversions, (leads, won) = await asyncio.gather(
            window_totals(db, rs, ids, span),
            _conversions(db, rs, ids, span),
            _lead_counts(db, rs.scope),
        )
        return totals, conversions, leads, won
    numbers = await scoped_numbers(db, rs, ids, span, conversions=True)
    return numbers.totals, numbers.conversions, numbers.leads, numbers.won


def _by_type(
    defs: Sequence[WorkflowDef],
    totals: WindowTotals,
    conversions: dict[int, tuple[int, int]],
    baseline: float,
) -> list[TypePerformance]:
    out = []
    for kind in sorted({w.type for w in defs}):
        members = [w.id for w in defs if w.type == kind]
        runs = sum(conversions.get(i, (0, 0))[0] for i in members)
        wins = sum(conversions.get(i, (0, 0))[1] for i in members)
        out.append(
            TypePerformance(
                type=kind,
                workflows=len(members),
                outcome=Outcome.of(totals, set(members)),
                conversion_rate=rate(wins, runs),
                conversion_impact=rate(wins, runs) - baseline if runs else 0.0,
            )
        )
    return out


def _efficiency(
    defs: Sequence[WorkflowDef], totals: WindowTotals, overall: Outcome, hourly_rate: float
) -> Efficiency:
    """Time saved = each completed step x its kind's manual minutes; error rate = FAILED
    runs / step executions (completed steps + FAILED runs)."""
    steps_by_kind: dict[str, int] = {}
    for w in defs:
        for k, step in enumerate(w.steps):
            done = totals.step(w.id, k).runs
            steps_by_kind[step.type] = steps_by_kind.get(step.type, 0) + done
    saved = sum(n * step_kind(t).manual_minutes for t, n in steps_by_kind.items()) / 60
    executions = sum(steps_by_kind.values()) + overall.failed
    return Efficiency(
        time_saved_hours=saved,
        cost_savings=saved * hourly_rate,
        hourly_rate=hourly_rate,
        error_rate=rate(overall.failed, executions),
        step_executions=executions,
    )


async def workflow_performance(
    db: Database,
    scope: Scope,
    *,
    period: str = "D30",
    types: Sequence[str] | None = None,
    hourly_rate: float,
    now: datetime | None = None,
) -> PerformanceReport:
    """Workspace.workflowPerformance: executions of the window by type, efficiency,
    bottleneck steps and insights (rules in the package docstring)."""
    check_period(period, WORKFLOW_PERIODS)
    span = window(period, now)
    defs = await workflow_defs(db, scope, None, types)
    ids = [w.id for w in defs]
    totals, conversions, leads, won = await _numbers(db, RunScope(scope), ids, span)
    overall = Outcome.of(totals, set(ids))
    baseline = rate(won, leads)
    found = bottlenecks(defs, totals)
    return PerformanceReport(
        period=period,
        window=span,
        overall=overall,
        baseline_conversion_rate=baseline,
        by_type=tuple(_by_type(defs, totals, conversions, baseline)),
        efficiency=_efficiency(defs, totals, overall, hourly_rate),
        bottlenecks=tuple(found),
        insights=tuple(insights(defs, totals, found)),
    )
