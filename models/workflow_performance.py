"""Workflow analytics (seed 000 "Workflow Dashboard"): `Workspace.workflows` (runs in progress,
today's counts, step averages, bottlenecks) and `Workspace.workflowPerformance` (executions by
type, conversion impact, efficiency, insights).

Rules (constants below; README "Workflows" repeats them):
- Scope: every viewer sees the workspace's workflow definitions; run numbers cover the runs
  of the leads the viewer may see (ADMIN: every run; USER: runs of their own leads; AGENT:
  runs of their assigned leads).
- An execution is a run that finished (COMPLETED or FAILED) inside the window; success rate
  = COMPLETED / executions; average hours = mean finished_at - started_at of COMPLETED runs.
- A step's average = mean seconds of that step over the executions that completed it.
- Bottleneck: a step whose average is more than BOTTLENECK_FACTOR x the median of its
  workflow's step averages (workflows with at least two measured steps). Its potential
  improvement = (average - factor x median) / the workflow's summed step averages.
- Conversion impact of a type = the share of its executions whose lead is WON now, minus
  the share of WON among all the viewer's leads (percentage points; selection, not cause).
- Time saved = each completed step x its kind's manual minutes (STEP_KINDS); cost savings =
  hours x the hourly rate setting; error rate = FAILED runs / step executions (completed
  steps + FAILED runs).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import col, select

from models.db import TZ, Database, utcnow
from models.errors import BadUserInput
from models.leads import Lead, LeadStage
from models.periods import Window, check_period, rate, window
from models.scope import Scope
from models.workflows import RunStatus, Workflow, WorkflowRun, WorkflowRunDay, WorkflowStepDay
from models.workspaces import Workspace

ACTIVE = (RunStatus.RUNNING.value, RunStatus.STALLED.value)
WORKFLOW_PERIODS = ("D7", "D30", "D90")
OVERVIEW_PERIOD = "D30"  # window of Workspace.workflows' step averages and performance
BOTTLENECK_FACTOR = 3.0
RELIABILITY_FACTOR = 1.5  # x the workspace's failure rate, and at least MIN_FAILURE_RATE
MIN_FAILURE_RATE = 0.05
MIN_RELIABILITY_RUNS = 20
MAX_RUNS = 100


@dataclass(frozen=True, slots=True)
class StepKind:
    """What a step type costs by hand, and what to do when it is a bottleneck."""

    manual_minutes: float
    issue: str
    recommendation: str


STEP_KINDS: dict[str, StepKind] = {
    "email": StepKind(5, "Slow send or approval queue", "Send from a template without approval"),
    "call": StepKind(0, "Agents reach the call late", "Put the call in the agent's queue at once"),
    "wait": StepKind(
        0, "Long wait for the lead", "Shorten the wait or send a reminder half way through"
    ),
    "task": StepKind(10, "Manual task waits for a person", "Assign the task with a due date"),
    "api": StepKind(
        10, "External API latency", "Cache and batch the external lookups, retry on timeouts"
    ),
    "ml": StepKind(2, "Model scoring is slow", "Score in batches ahead of the workflow"),
    "validation": StepKind(3, "Slow contact checks", "Validate contacts when the lead is created"),
    "assignment": StepKind(
        5, "No agent free to assign", "Assign by capacity and add an overflow agent"
    ),
    "trigger": StepKind(2, "Trigger fires late", "Evaluate the trigger on every change event"),
    "notification": StepKind(
        2, "Notifications are acted on late", "Escalate sooner and notify a second channel"
    ),
}
OTHER_STEP = StepKind(0, "Step takes long", "Review the step's configuration")


def step_kind(step_type: str) -> StepKind:
    return STEP_KINDS.get(step_type, OTHER_STEP)


@dataclass(frozen=True, slots=True)
class StepDef:
    name: str
    type: str
    description: str


@dataclass(frozen=True, slots=True)
class WorkflowDef:
    id: int
    name: str
    type: str
    status: str
    steps: tuple[StepDef, ...]


@dataclass(slots=True)
class RunTotals:
    runs: int = 0
    seconds: float = 0.0
    steps: int = 0


@dataclass(slots=True)
class StepTotals:
    runs: int = 0
    seconds: float = 0.0

    @property
    def average(self) -> float:
        return self.seconds / self.runs if self.runs else 0.0


@dataclass(slots=True)
class WindowTotals:
    """Runs finished in a window per (workflow, status), their steps per (workflow, step)."""

    runs: dict[tuple[int, str], RunTotals] = field(default_factory=dict)
    steps: dict[tuple[int, int], StepTotals] = field(default_factory=dict)

    def add_run(self, key: tuple[int, str], runs: int, seconds: float, steps: int) -> None:
        found = self.runs.setdefault(key, RunTotals())
        found.runs += runs
        found.seconds += seconds
        found.steps += steps

    def add_step(self, key: tuple[int, int], runs: int, seconds: float) -> None:
        found = self.steps.setdefault(key, StepTotals())
        found.runs += runs
        found.seconds += seconds

    def count(self, ids: set[int], status: str) -> RunTotals:
        out = RunTotals()
        for (wf, s), t in self.runs.items():
            if wf in ids and s == status:
                out.runs += t.runs
                out.seconds += t.seconds
                out.steps += t.steps
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """Executions of some workflows in a window."""

    executed: int
    completed: int
    failed: int
    success_rate: float
    average_hours: float
    completed_steps: int

    @classmethod
    def of(cls, totals: WindowTotals, ids: set[int]) -> Outcome:
        done = totals.count(ids, RunStatus.COMPLETED)
        failed = totals.count(ids, RunStatus.FAILED)
        executed = done.runs + failed.runs
        return cls(
            executed=executed,
            completed=done.runs,
            failed=failed.runs,
            success_rate=rate(done.runs, executed),
            average_hours=rate(done.seconds, done.runs) / 3600,
            completed_steps=done.steps + failed.steps,
        )


@dataclass(frozen=True, slots=True)
class Bottleneck:
    workflow_id: int
    workflow_name: str
    step: int
    step_name: str
    step_type: str
    average_seconds: float
    median_step_seconds: float
    issue: str
    recommendation: str
    potential_improvement: float


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
class StepStats:
    step: StepDef
    average_seconds: float
    executions: int


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


def _at(value: datetime) -> Any:
    """A window bound rendered into the statement: with bind parameters Postgres switches to a
    generic plan after five runs, and without the bound it picks per-run probes (~2 s)."""
    return sa.bindparam(None, value, type_=TZ, literal_execute=True)


def _table(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


def _run_table() -> sa.Table:
    return _table(WorkflowRun)


@dataclass(frozen=True, slots=True)
class RunScope:
    """The role rule on runs: ADMIN every run of the workspace, others the runs of the leads
    they may see (hash-joined with those leads: one scan of `lead` per statement)."""

    scope: Scope

    @property
    def everything(self) -> bool:
        return self.scope.is_admin

    def where(self, run: Any, visible: Any = None) -> Any:
        """Runs of the workspace; unless ADMIN, only those of the viewer's leads (a semi-join:
        Postgres hashes the leads and streams the runs)."""
        clause = run.c.workspace_id == self.scope.workspace_id
        if self.everything:
            return clause
        leads = self.visible() if visible is None else visible
        return sa.and_(clause, run.c.lead_id.in_(sa.select(leads.c.id)))

    def visible(self) -> Any:
        """The viewer's leads (id, won) as a CTE."""
        return (
            sa.select(col(Lead.id).label("id"), (col(Lead.stage) == LeadStage.WON).label("won"))
            .where(self.scope.leads(Lead))
            .cte("visible")
        )


@dataclass(slots=True)
class ScopedNumbers:
    """A USER's or AGENT's numbers, read in one statement (one scan of their leads)."""

    totals: WindowTotals = field(default_factory=WindowTotals)
    today: WindowTotals = field(default_factory=WindowTotals)
    active: dict[tuple[int, str], int] = field(default_factory=dict)
    conversions: dict[int, tuple[int, int]] = field(default_factory=dict)
    leads: int = 0
    won: int = 0


async def _scoped_numbers(
    db: Database,
    rs: RunScope,
    ids: list[int],
    span: Window,
    *,
    today: Window | None = None,
    conversions: bool = False,
) -> ScopedNumbers:
    """Runs of the viewer's leads finished in `span` and their steps; with `today` (inside
    `span`) those finished then and the runs in progress; with `conversions` the runs whose
    lead is WON and the viewer's leads."""
    visible = rs.visible()
    r = _run_table().alias("r")
    finished = (
        sa.select(
            r.c.workflow_id,
            r.c.status,
            r.c.started_at,
            r.c.finished_at,
            r.c.step_seconds,
            r.c.lead_id.in_(sa.select(visible.c.id).where(visible.c.won)).label("won"),
        )
        .where(
            rs.where(r, visible),
            r.c.workflow_id.in_(ids),
            r.c.finished_at >= _at(span.start),
            r.c.finished_at < _at(span.end),
        )
        .cte("finished")
    )
    f = finished.c
    elements = (
        sa.func.jsonb_array_elements_text(f.step_seconds)
        .table_valued("value", with_ordinality="ord")
        .render_derived(name="s")
    )

    def part(kind: str, key: Any, amount: Any, extra: Any) -> Any:
        return sa.select(
            sa.literal(kind).label("kind"),
            f.workflow_id,
            sa.cast(key, sa.Text).label("key"),
            sa.func.count().label("n"),
            sa.cast(amount, sa.Float).label("amount"),
            sa.cast(extra, sa.BigInteger).label("extra"),
        ).select_from(finished)

    duration = sa.func.sum(sa.extract("epoch", f.finished_at - f.started_at))
    parts = [
        part(
            "run", f.status, duration, sa.func.sum(sa.func.jsonb_array_length(f.step_seconds))
        ).group_by(f.workflow_id, f.status),
        part("step", elements.c.ord - 1, sa.func.sum(sa.cast(elements.c.value, sa.Numeric)), 0)
        .join(elements, sa.true())
        .group_by(f.workflow_id, elements.c.ord),
    ]
    if conversions:
        parts.append(
            part("conversion", "", sa.func.count().filter(f.won), 0).group_by(f.workflow_id)
        )
        parts.append(
            sa.select(
                sa.literal("leads"),
                sa.cast(0, sa.BigInteger),
                sa.cast("", sa.Text),
                sa.func.count(),
                sa.cast(sa.func.count().filter(visible.c.won), sa.Float),
                sa.cast(0, sa.BigInteger),
            ).select_from(visible)
        )
    if today is not None:
        parts.append(
            part("today", f.status, duration, 0)
            .where(f.finished_at >= _at(today.start), f.finished_at < _at(today.end))
            .group_by(f.workflow_id, f.status)
        )
        a = _run_table().alias("a")
        parts.append(
            sa.select(
                sa.literal("active"),
                a.c.workflow_id,
                sa.cast(a.c.status, sa.Text),
                sa.func.count(),
                sa.cast(0, sa.Float),
                sa.cast(0, sa.BigInteger),
            )
            .where(rs.where(a, visible), a.c.workflow_id.in_(ids), a.c.status.in_(ACTIVE))
            .group_by(a.c.workflow_id, a.c.status)
        )
    out = ScopedNumbers()
    async with db.session() as session:
        rows = await session.execute(sa.union_all(*parts))
    for kind, wf, key, n, amount, extra in rows:
        if kind == "run":
            out.totals.add_run((int(wf), str(key)), int(n), float(amount or 0), int(extra or 0))
        elif kind == "step":
            out.totals.add_step((int(wf), int(key)), int(n), float(amount or 0))
        elif kind == "conversion":
            out.conversions[int(wf)] = (int(n), int(amount or 0))
        elif kind == "leads":
            out.leads, out.won = int(n), int(amount or 0)
        elif kind == "today":
            out.today.add_run((int(wf), str(key)), int(n), float(amount or 0), 0)
        else:
            out.active[(int(wf), str(key))] = int(n)
    return out


async def workflow_defs(
    db: Database, scope: Scope, status: str | None = None, types: Sequence[str] | None = None
) -> list[WorkflowDef]:
    query = select(Workflow).where(col(Workflow.workspace_id) == scope.workspace_id)
    if status is not None:
        query = query.where(col(Workflow.status) == status)
    if types is not None:
        query = query.where(col(Workflow.type).in_(list(types)))
    async with db.session() as session:
        rows = (await session.execute(query.order_by(col(Workflow.id)))).scalars().all()
    return [
        WorkflowDef(
            id=int(w.id or 0),
            name=w.name,
            type=w.type,
            status=w.status,
            steps=tuple(
                StepDef(
                    str(s.get("name", "")), str(s.get("type", "")), str(s.get("description", ""))
                )
                for s in w.steps
            ),
        )
        for w in rows
    ]


async def _raw_totals(
    db: Database, rs: RunScope, ids: list[int], start: datetime, end: datetime, *, steps: bool
) -> WindowTotals:
    """Runs finished in [start, end) counted from `workflow_run` itself."""
    r = _run_table().alias("r")
    where = sa.and_(
        rs.where(r),
        r.c.finished_at >= _at(start),
        r.c.finished_at < _at(end),
        r.c.workflow_id.in_(ids),
    )
    out = WindowTotals()
    async with db.session() as session:
        runs = sa.select(
            r.c.workflow_id,
            r.c.status,
            sa.func.count(),
            sa.func.sum(sa.extract("epoch", r.c.finished_at - r.c.started_at)),
            sa.func.sum(sa.func.jsonb_array_length(r.c.step_seconds)),
        ).where(where)
        for wf, status, n, seconds, done in await session.execute(
            runs.group_by(r.c.workflow_id, r.c.status)
        ):
            out.add_run((int(wf), str(status)), int(n), float(seconds or 0), int(done or 0))
        if steps:
            element = sa.func.jsonb_array_elements_text(r.c.step_seconds).table_valued(
                "value", with_ordinality="ord"
            )
            elements = element.render_derived(name="s")
            query = (
                sa.select(
                    r.c.workflow_id,
                    elements.c.ord - 1,
                    sa.func.count(),
                    sa.func.sum(sa.cast(elements.c.value, sa.Numeric)),
                )
                .select_from(r.join(elements, sa.true()))
                .where(where)
                .group_by(r.c.workflow_id, elements.c.ord)
            )
            for wf, step, n, seconds in await session.execute(query):
                out.add_step((int(wf), int(step)), int(n), float(seconds or 0))
    return out


async def _rollup_totals(
    db: Database, workspace_id: int, ids: list[int], first_day: date, last_day: date
) -> WindowTotals:
    """Runs finished on whole UTC days [first_day, last_day] from the rollups (ADMIN only)."""
    out = WindowTotals()
    async with db.session() as session:
        runs = sa.select(
            col(WorkflowRunDay.workflow_id),
            col(WorkflowRunDay.status),
            sa.func.sum(col(WorkflowRunDay.runs)),
            sa.func.sum(col(WorkflowRunDay.seconds)),
            sa.func.sum(col(WorkflowRunDay.steps)),
        ).where(
            col(WorkflowRunDay.workspace_id) == workspace_id,
            col(WorkflowRunDay.workflow_id).in_(ids),
            col(WorkflowRunDay.day).between(first_day, last_day),
        )
        for wf, status, n, seconds, done in await session.execute(
            runs.group_by(col(WorkflowRunDay.workflow_id), col(WorkflowRunDay.status))
        ):
            out.add_run((int(wf), str(status)), int(n or 0), float(seconds or 0), int(done or 0))
        steps = sa.select(
            col(WorkflowStepDay.workflow_id),
            col(WorkflowStepDay.step),
            sa.func.sum(col(WorkflowStepDay.runs)),
            sa.func.sum(col(WorkflowStepDay.seconds)),
        ).where(
            col(WorkflowStepDay.workspace_id) == workspace_id,
            col(WorkflowStepDay.workflow_id).in_(ids),
            col(WorkflowStepDay.day).between(first_day, last_day),
        )
        for wf, step, n, seconds in await session.execute(
            steps.group_by(col(WorkflowStepDay.workflow_id), col(WorkflowStepDay.step))
        ):
            out.add_step((int(wf), int(step)), int(n or 0), float(seconds or 0))
    return out


async def window_totals(db: Database, rs: RunScope, ids: list[int], span: Window) -> WindowTotals:
    """Runs finished in the window and their steps. ADMIN: the rollups' whole UTC days after
    the window's first day plus that partial day from the runs; others: their runs."""
    if not ids:
        return WindowTotals()
    if not rs.everything:
        return (await _scoped_numbers(db, rs, ids, span)).totals
    start_utc = span.start.astimezone(UTC)
    next_midnight = datetime.combine(start_utc.date() + timedelta(days=1), time(), UTC)
    edge, whole = await asyncio.gather(
        _raw_totals(db, rs, ids, span.start, min(next_midnight, span.end), steps=True),
        _rollup_totals(db, rs.scope.workspace_id, ids, next_midnight.date(), span.end.date()),
    )
    for key, t in whole.runs.items():
        edge.add_run(key, t.runs, t.seconds, t.steps)
    for skey, s in whole.steps.items():
        edge.add_step(skey, s.runs, s.seconds)
    return edge


def step_stats(workflow: WorkflowDef, totals: WindowTotals) -> tuple[StepStats, ...]:
    return tuple(
        StepStats(step, totals.steps.get((workflow.id, k), StepTotals()).average, found.runs)
        for k, step in enumerate(workflow.steps)
        for found in [totals.steps.get((workflow.id, k), StepTotals())]
    )


def bottlenecks(workflows: Sequence[WorkflowDef], totals: WindowTotals) -> list[Bottleneck]:
    found = []
    for w in workflows:
        stats = step_stats(w, totals)
        measured = [s.average_seconds for s in stats if s.executions]
        if len(measured) < 2:
            continue
        median = statistics.median(measured)
        total = sum(measured)
        for k, s in enumerate(stats):
            if s.executions and s.average_seconds > BOTTLENECK_FACTOR * median:
                kind = step_kind(s.step.type)
                found.append(
                    Bottleneck(
                        workflow_id=w.id,
                        workflow_name=w.name,
                        step=k,
                        step_name=s.step.name,
                        step_type=s.step.type,
                        average_seconds=s.average_seconds,
                        median_step_seconds=median,
                        issue=kind.issue,
                        recommendation=kind.recommendation,
                        potential_improvement=rate(
                            s.average_seconds - BOTTLENECK_FACTOR * median, total
                        ),
                    )
                )
    found.sort(key=lambda b: (-b.potential_improvement, b.workflow_id, b.step))
    return found


async def _workspace_timezone(db: Database, workspace_id: int) -> str:
    async with db.session() as session:
        tz = await session.scalar(
            sa.select(col(Workspace.timezone)).where(col(Workspace.id) == workspace_id)
        )
    return tz or "UTC"


def local_midnight(now: datetime, timezone: str) -> datetime:
    try:
        zone: tzinfo = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(), zone).astimezone(UTC)


async def _active_counts(db: Database, rs: RunScope, ids: list[int]) -> dict[tuple[int, str], int]:
    r = _run_table().alias("r")
    query = (
        sa.select(r.c.workflow_id, r.c.status, sa.func.count())
        .where(rs.where(r), r.c.workflow_id.in_(ids), r.c.status.in_(ACTIVE))
        .group_by(r.c.workflow_id, r.c.status)
    )
    async with db.session() as session:
        return {(int(wf), str(s)): int(n) for wf, s, n in await session.execute(query)}


async def _active_runs(
    db: Database, rs: RunScope, ids: list[int], first: int
) -> dict[int, list[Any]]:
    """Per workflow, its `first` runs in progress, soonest next action first."""
    w = _table(Workflow).alias("w")
    r = _run_table().alias("r")
    lead = _table(Lead).alias("l")
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
        .where(
            rs.where(r),
            r.c.workflow_id == w.c.id,
            r.c.status.in_(ACTIVE),
        )
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
    async with db.session() as session:
        for row in await session.execute(query):
            out.setdefault(int(row.workflow_id), []).append(row)
    return out


def _active_run(workflow: WorkflowDef, stats: Sequence[StepStats], row: Any) -> ActiveRun:
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
    if not 1 <= first <= MAX_RUNS:
        raise BadUserInput(f"`first` must be 1..{MAX_RUNS}", fields={"first": f"1..{MAX_RUNS}"})
    now = now or utcnow()
    span = window(OVERVIEW_PERIOD, now)
    defs, tz = await asyncio.gather(
        workflow_defs(db, scope, status, types), _workspace_timezone(db, scope.workspace_id)
    )
    rs = RunScope(scope)
    ids = [w.id for w in defs]
    midnight = local_midnight(now, tz)
    counts: dict[tuple[int, str], int]
    if not ids:
        totals, today, counts, runs = WindowTotals(), WindowTotals(), {}, {}
    elif rs.everything or midnight < span.start:
        totals, today, counts, runs = await asyncio.gather(
            window_totals(db, rs, ids, span),
            _raw_totals(db, rs, ids, midnight, now, steps=False),
            _active_counts(db, rs, ids),
            _active_runs(db, rs, ids, first),
        )
    else:
        numbers, runs = await asyncio.gather(
            _scoped_numbers(db, rs, ids, span, today=Window(midnight, now)),
            _active_runs(db, rs, ids, first),
        )
        totals, today, counts = numbers.totals, numbers.today, numbers.active
    id_set = set(ids)
    done_today = today.count(id_set, RunStatus.COMPLETED)
    running = sum(n for (_, s), n in counts.items() if s == RunStatus.RUNNING)
    stalled = sum(n for (_, s), n in counts.items() if s == RunStatus.STALLED)
    overviews = []
    for w in defs:
        stats = step_stats(w, totals)
        overviews.append(
            WorkflowOverview(
                workflow=w,
                steps=stats,
                active=counts.get((w.id, RunStatus.RUNNING), 0)
                + counts.get((w.id, RunStatus.STALLED), 0),
                stalled=counts.get((w.id, RunStatus.STALLED), 0),
                runs=tuple(_active_run(w, stats, row) for row in runs.get(w.id, [])),
            )
        )
    return WorkflowsReport(
        summary=WorkflowsSummary(
            total_active=running + stalled,
            running=running,
            stalled=stalled,
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
class WorkflowInsight:
    type: str  # OPTIMIZATION (a bottleneck step) or RELIABILITY (a workflow failing often)
    workflow_id: int
    title: str
    description: str
    recommendation: str
    potential_improvement: float


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
    db: Database, rs: RunScope, ids: list[int], span: Window
) -> dict[int, tuple[int, int]]:
    """Per workflow: runs finished in the window, and those whose lead is WON now."""
    r = _run_table().alias("r")
    won = (
        sa.select(col(Lead.id))
        .where(col(Lead.workspace_id) == rs.scope.workspace_id, col(Lead.stage) == LeadStage.WON)
        .subquery("won")
    )
    query = (
        sa.select(r.c.workflow_id, sa.func.count(), sa.func.count(won.c.id))
        .select_from(r.outerjoin(won, won.c.id == r.c.lead_id))
        .where(
            rs.where(r),
            r.c.workflow_id.in_(ids),
            r.c.finished_at >= _at(span.start),
            r.c.finished_at < _at(span.end),
        )
        .group_by(r.c.workflow_id)
    )
    async with db.session() as session:
        return {int(wf): (int(n), int(w)) for wf, n, w in await session.execute(query)}


async def _lead_count(db: Database, scope: Scope, *, won: bool) -> int:
    """The viewer's leads (won: only the WON ones)."""
    query = sa.select(sa.func.count()).where(scope.leads(Lead))
    if won:
        query = query.where(col(Lead.stage) == LeadStage.WON)
    async with db.session() as session:
        return int(await session.scalar(query) or 0)


def _insights(
    defs: Sequence[WorkflowDef], totals: WindowTotals, found: Sequence[Bottleneck]
) -> list[WorkflowInsight]:
    out = [
        WorkflowInsight(
            type="OPTIMIZATION",
            workflow_id=b.workflow_id,
            title=f"{b.workflow_name}: {b.step_name} is a bottleneck",
            description=(
                f"{b.step_name} ({b.step_type}) takes {duration(b.average_seconds)} on average, "
                f"{b.average_seconds / b.median_step_seconds:.1f}x the workflow's median step "
                f"({duration(b.median_step_seconds)}). {b.issue}."
            ),
            recommendation=b.recommendation,
            potential_improvement=b.potential_improvement,
        )
        for b in found
    ]
    overall = Outcome.of(totals, {w.id for w in defs})
    threshold = max(MIN_FAILURE_RATE, RELIABILITY_FACTOR * rate(overall.failed, overall.executed))
    for w in defs:
        o = Outcome.of(totals, {w.id})
        failure = rate(o.failed, o.executed)
        if o.executed >= MIN_RELIABILITY_RUNS and failure > threshold:
            out.append(
                WorkflowInsight(
                    type="RELIABILITY",
                    workflow_id=w.id,
                    title=f"{w.name} fails often",
                    description=(
                        f"{o.failed} of {o.executed} runs failed ({failure:.1%}), against "
                        f"{rate(overall.failed, overall.executed):.1%} for all workflows."
                    ),
                    recommendation="Review the failed runs' errors and add retries to the step",
                    potential_improvement=failure,
                )
            )
    out.sort(key=lambda i: (-i.potential_improvement, i.workflow_id, i.type))
    return out


def duration(seconds: float) -> str:
    """Human duration for insight text: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


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
    bottleneck steps and insights (rules in the module docstring)."""
    check_period(period, WORKFLOW_PERIODS)
    span = window(period, now)
    defs = await workflow_defs(db, scope, None, types)
    rs = RunScope(scope)
    ids = [w.id for w in defs]
    conversions: dict[int, tuple[int, int]]
    if not ids:
        totals, conversions, leads, won = WindowTotals(), {}, 0, 0
    elif rs.everything:
        totals, conversions, leads, won = await asyncio.gather(
            window_totals(db, rs, ids, span),
            _conversions(db, rs, ids, span),
            _lead_count(db, scope, won=False),
            _lead_count(db, scope, won=True),
        )
    else:
        numbers = await _scoped_numbers(db, rs, ids, span, conversions=True)
        totals, conversions = numbers.totals, numbers.conversions
        leads, won = numbers.leads, numbers.won
    baseline = rate(won, leads)
    by_type = []
    for kind in sorted({w.type for w in defs}):
        members = [w.id for w in defs if w.type == kind]
        runs = sum(conversions.get(i, (0, 0))[0] for i in members)
        wins = sum(conversions.get(i, (0, 0))[1] for i in members)
        by_type.append(
            TypePerformance(
                type=kind,
                workflows=len(members),
                outcome=Outcome.of(totals, set(members)),
                conversion_rate=rate(wins, runs),
                conversion_impact=rate(wins, runs) - baseline if runs else 0.0,
            )
        )
    steps_by_kind: dict[str, int] = {}
    for w in defs:
        for k, step in enumerate(w.steps):
            done = totals.steps.get((w.id, k), StepTotals()).runs
            steps_by_kind[step.type] = steps_by_kind.get(step.type, 0) + done
    saved = sum(n * step_kind(t).manual_minutes for t, n in steps_by_kind.items()) / 60
    overall = Outcome.of(totals, set(ids))
    executions = sum(steps_by_kind.values()) + overall.failed
    found = bottlenecks(defs, totals)
    return PerformanceReport(
        period=period,
        window=span,
        overall=overall,
        baseline_conversion_rate=baseline,
        by_type=tuple(by_type),
        efficiency=Efficiency(
            time_saved_hours=saved,
            cost_savings=saved * hourly_rate,
            hourly_rate=hourly_rate,
            error_rate=rate(overall.failed, executions),
            step_executions=executions,
        ),
        bottlenecks=tuple(found),
        insights=tuple(_insights(defs, totals, found)),
    )
