"""Workflows (seed 000 "Workflow Dashboard"): the types and resolvers behind
`Workspace.workflows` (runs in progress and their next actions) and
`Workspace.workflowPerformance` (executions by type, efficiency, bottlenecks, insights).
The rules behind every number are in models/workflow_performance.py."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Self

import strawberry

from models import workflow_performance as wp
from models.errors import BadUserInput
from models.periods import check_period
from models.scope import Scope
from models.workflows import RunStatus, WorkflowStatus, WorkflowType
from resolvers.context import Info
from resolvers.enums import Period

strawberry.enum(WorkflowStatus, name="WorkflowStatus")
strawberry.enum(WorkflowType, name="WorkflowType", description="What a workflow does (its `type`)")
strawberry.enum(RunStatus, name="WorkflowRunStatus")


@strawberry.enum(
    description="OPTIMIZATION: a bottleneck step; RELIABILITY: a workflow that fails more "
    "than 1.5x the failure rate of all the workflows (and over 5%)"
)
class WorkflowInsightType(Enum):
    OPTIMIZATION = "OPTIMIZATION"
    RELIABILITY = "RELIABILITY"


# ---- Workspace.workflows ----------------------------------------------------------------------


@strawberry.type
class WorkflowStep:
    index: int = strawberry.field(description="0-based position in the workflow")
    name: str
    type: str = strawberry.field(description="email, call, wait, task, api, ml, ...")
    description: str
    average_seconds: float = strawberry.field(
        description="Mean time of the step over the runs finished in the last 30 days that "
        "completed it (0 without any)"
    )
    executions: int = strawberry.field(description="Those runs")


@strawberry.type
class WorkflowRunLead:
    id: strawberry.ID
    name: str | None


@strawberry.type
class WorkflowNextAction:
    type: str = strawberry.field(description="The step in progress' type (email, call, ...)")
    step_name: str
    description: str
    scheduled: datetime | None = strawberry.field(description="When it is due")
    overdue: bool = strawberry.field(description="Due before the numbers were computed")


@strawberry.type(description="A run in progress (RUNNING or STALLED) of a workflow")
class WorkflowRun:
    id: strawberry.ID
    status: RunStatus
    lead: WorkflowRunLead | None
    current_step: int = strawberry.field(description="1-based number of the step in progress")
    completed_steps: int
    total_steps: int
    progress: float = strawberry.field(description="completedSteps / totalSteps, 0..1")
    started_at: datetime
    estimated_completion: datetime | None = strawberry.field(
        description="When the step in progress is due (or started + its average), plus the "
        "30-day average of every later step"
    )
    next_action: WorkflowNextAction | None

    @classmethod
    def from_model(cls, run: wp.ActiveRun, generated_at: datetime) -> Self:
        n = run.next_action
        return cls(
            id=strawberry.ID(str(run.id)),
            status=RunStatus(run.status),
            lead=None
            if run.lead_id is None
            else WorkflowRunLead(id=strawberry.ID(str(run.lead_id)), name=run.lead_name),
            current_step=run.completed_steps + 1,
            completed_steps=run.completed_steps,
            total_steps=run.total_steps,
            progress=run.completed_steps / run.total_steps if run.total_steps else 0.0,
            started_at=run.started_at,
            estimated_completion=run.estimated_completion,
            next_action=None
            if n is None
            else WorkflowNextAction(
                type=n.type,
                step_name=n.step_name,
                description=n.description,
                scheduled=n.scheduled,
                overdue=n.scheduled is not None and n.scheduled < generated_at,
            ),
        )


@strawberry.type
class Workflow:
    id: strawberry.ID
    name: str
    type: str = strawberry.field(description="follow_up, enrichment, notification, nurture")
    status: WorkflowStatus
    steps: list[WorkflowStep]
    active_runs: int = strawberry.field(description="Runs in progress (RUNNING + STALLED)")
    stalled_runs: int
    runs: list[WorkflowRun] = strawberry.field(
        description="Up to `first` runs in progress, soonest next action first (overdue first)"
    )

    @classmethod
    def from_model(cls, o: wp.WorkflowOverview, generated_at: datetime) -> Self:
        w = o.workflow
        return cls(
            id=strawberry.ID(str(w.id)),
            name=w.name,
            type=w.type,
            status=WorkflowStatus(w.status),
            steps=[
                WorkflowStep(
                    index=k,
                    name=s.step.name,
                    type=s.step.type,
                    description=s.step.description,
                    average_seconds=s.average_seconds,
                    executions=s.executions,
                )
                for k, s in enumerate(o.steps)
            ],
            active_runs=o.active,
            stalled_runs=o.stalled,
            runs=[WorkflowRun.from_model(r, generated_at) for r in o.runs],
        )


@strawberry.type(description="Runs in progress now, and runs finished since local midnight")
class WorkflowsSummary:
    total_active: int = strawberry.field(description="Runs in progress: RUNNING + STALLED")
    running: int
    stalled: int = strawberry.field(description="In progress with an overdue next action")
    completed_today: int
    failed_today: int
    average_completion_hours: float = strawberry.field(
        description="Mean duration of the runs completed today"
    )
    today_start: datetime = strawberry.field(
        description="Midnight in the workspace's timezone: where today starts"
    )


@strawberry.type
class WorkflowBottleneck:
    workflow_id: strawberry.ID
    workflow_name: str
    step: str = strawberry.field(description="The step's name")
    step_index: int
    step_type: str
    average_seconds: float
    median_step_seconds: float = strawberry.field(
        description="Median of the workflow's step averages"
    )
    issue: str = strawberry.field(description="Typical cause for this kind of step")
    recommendation: str
    potential_improvement: float = strawberry.field(
        description="Share of the workflow's average run time saved if the step came down to "
        "3x the median step, 0..1"
    )

    @classmethod
    def from_model(cls, b: wp.Bottleneck) -> Self:
        return cls(
            workflow_id=strawberry.ID(str(b.workflow_id)),
            workflow_name=b.workflow_name,
            step=b.step_name,
            step_index=b.step,
            step_type=b.step_type,
            average_seconds=b.average_seconds,
            median_step_seconds=b.median_step_seconds,
            issue=b.issue,
            recommendation=b.recommendation,
            potential_improvement=b.potential_improvement,
        )


@strawberry.type(description="Runs finished in the last 30 days (the performance window)")
class WorkflowsPerformance:
    executed: int = strawberry.field(description="Runs finished: COMPLETED + FAILED")
    success_rate: float = strawberry.field(description="COMPLETED / executed")
    average_processing_hours: float = strawberry.field(
        description="Mean finished - started of the COMPLETED runs"
    )
    bottlenecks: list[WorkflowBottleneck] = strawberry.field(
        description="Steps over 3x their workflow's median step, largest saving first"
    )
    window_start: datetime
    window_end: datetime


@strawberry.type
class WorkflowsOverview:
    summary: WorkflowsSummary
    workflows: list[Workflow]
    performance: WorkflowsPerformance
    generated_at: datetime

    @classmethod
    def from_report(cls, r: wp.WorkflowsReport) -> Self:
        s = r.summary
        return cls(
            summary=WorkflowsSummary(
                total_active=s.total_active,
                running=s.running,
                stalled=s.stalled,
                completed_today=s.completed_today,
                failed_today=s.failed_today,
                average_completion_hours=s.average_completion_hours,
                today_start=s.today_start,
            ),
            workflows=[Workflow.from_model(o, r.generated_at) for o in r.workflows],
            performance=WorkflowsPerformance(
                executed=r.performance.executed,
                success_rate=r.performance.success_rate,
                average_processing_hours=r.performance.average_hours,
                bottlenecks=[WorkflowBottleneck.from_model(b) for b in r.bottlenecks],
                window_start=r.window.start,
                window_end=r.window.end,
            ),
            generated_at=r.generated_at,
        )


# ---- Workspace.workflowPerformance ------------------------------------------------------------


@strawberry.type
class WorkflowOutcome:
    total_executed: int = strawberry.field(description="Runs finished in the window")
    completed: int
    failed: int
    success_rate: float = strawberry.field(description="COMPLETED / executed")
    average_completion_hours: float = strawberry.field(
        description="Mean finished - started of the COMPLETED runs"
    )
    cost_savings: float = strawberry.field(description="efficiency.costSavings")


@strawberry.type
class WorkflowTypePerformance:
    type: str = strawberry.field(
        description="As stored on the workflows (follow_up, ...); WorkflowType names it in lower "
        "case"
    )
    workflows: int
    executed: int
    success_rate: float
    average_hours: float = strawberry.field(description="Mean duration of COMPLETED runs")
    conversion_rate: float = strawberry.field(
        description="Share of the executed runs whose lead is WON now"
    )
    conversion_impact: float = strawberry.field(
        description="conversionRate - the WON share of all the viewer's leads (points; "
        "correlation: leads enter workflows at different stages)"
    )


@strawberry.type
class WorkflowEfficiency:
    time_saved_hours: float = strawberry.field(
        description="Each step completed in the window x the manual minutes of its kind "
        "(email 5, task 10, api 10, validation 3, assignment 5, ml 2, trigger 2, "
        "notification 2; call and wait 0: a person or the lead does them anyway)"
    )
    cost_savings: float = strawberry.field(description="timeSavedHours x hourlyRate")
    hourly_rate: float = strawberry.field(
        description="Setting DASHGRAPH_WORKFLOW_HOURLY_RATE (dollars per staff hour)"
    )
    error_rate: float = strawberry.field(
        description="FAILED runs / step executions (steps completed + steps failed)"
    )
    step_executions: int


@strawberry.type
class WorkflowInsight:
    type: WorkflowInsightType
    workflow_id: strawberry.ID
    title: str
    description: str
    recommendation: str
    potential_improvement: float = strawberry.field(
        description="OPTIMIZATION: share of the run time saved; RELIABILITY: failure rate"
    )


@strawberry.type
class WorkflowPerformance:
    period: Period
    window_start: datetime
    window_end: datetime
    overall: WorkflowOutcome
    baseline_conversion_rate: float = strawberry.field(
        description="WON share of all the viewer's leads"
    )
    by_type: list[WorkflowTypePerformance]
    efficiency: WorkflowEfficiency
    bottlenecks: list[WorkflowBottleneck]
    insights: list[WorkflowInsight] = strawberry.field(description="Largest improvement first")

    @classmethod
    def from_report(cls, r: wp.PerformanceReport) -> Self:
        e = r.efficiency
        return cls(
            period=Period(r.period),
            window_start=r.window.start,
            window_end=r.window.end,
            overall=WorkflowOutcome(
                total_executed=r.overall.executed,
                completed=r.overall.completed,
                failed=r.overall.failed,
                success_rate=r.overall.success_rate,
                average_completion_hours=r.overall.average_hours,
                cost_savings=e.cost_savings,
            ),
            baseline_conversion_rate=r.baseline_conversion_rate,
            by_type=[
                WorkflowTypePerformance(
                    type=t.type,
                    workflows=t.workflows,
                    executed=t.outcome.executed,
                    success_rate=t.outcome.success_rate,
                    average_hours=t.outcome.average_hours,
                    conversion_rate=t.conversion_rate,
                    conversion_impact=t.conversion_impact,
                )
                for t in r.by_type
            ],
            efficiency=WorkflowEfficiency(
                time_saved_hours=e.time_saved_hours,
                cost_savings=e.cost_savings,
                hourly_rate=e.hourly_rate,
                error_rate=e.error_rate,
                step_executions=e.step_executions,
            ),
            bottlenecks=[WorkflowBottleneck.from_model(b) for b in r.bottlenecks],
            insights=[
                WorkflowInsight(
                    type=WorkflowInsightType(i.type),
                    workflow_id=strawberry.ID(str(i.workflow_id)),
                    title=i.title,
                    description=i.description,
                    recommendation=i.recommendation,
                    potential_improvement=i.potential_improvement,
                )
                for i in r.insights
            ],
        )


# ---- Workspace fields (delegated to from resolvers/workspaces.py) -------------------------------


async def workflows_field(
    info: Info,
    scope: Scope,
    status: WorkflowStatus | None,
    type: WorkflowType | None,
    first: int,
) -> WorkflowsOverview:
    if not 1 <= first <= wp.MAX_RUNS:
        raise BadUserInput(
            f"`first` must be 1..{wp.MAX_RUNS}", fields={"first": f"1..{wp.MAX_RUNS}"}
        )
    db = info.context.db
    types = None if type is None else [type.value]
    status_value = None if status is None else status.value
    report = await info.context.cached(
        scope,
        ("workflows", status_value, None if type is None else type.value, first),
        lambda: wp.workflows_report(db, scope, status=status_value, types=types, first=first),
    )
    return WorkflowsOverview.from_report(report)


async def workflow_performance_field(
    info: Info, scope: Scope, period: Period, types: list[WorkflowType] | None
) -> WorkflowPerformance:
    check_period(period.value, wp.WORKFLOW_PERIODS)
    db = info.context.db
    chosen = None if types is None else sorted({t.value for t in types})
    rate = info.context.settings.workflow_hourly_rate
    report = await info.context.cached(
        scope,
        ("workflowPerformance", period.value, None if chosen is None else tuple(chosen), rate),
        lambda: wp.workflow_performance(
            db, scope, period=period.value, types=chosen, hourly_rate=rate
        ),
    )
    return WorkflowPerformance.from_report(report)
