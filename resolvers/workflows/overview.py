"""The types behind `Workspace.workflows`: each workflow with its step averages and runs in
progress (next actions), today's summary, the 30-day performance and bottleneck steps."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from models import workflow_performance as wp
from models.workflows import RunStatus, WorkflowStatus, WorkflowType

# GraphQL names of the model enums: registered before any type below uses them
strawberry.enum(WorkflowStatus, name="WorkflowStatus")
strawberry.enum(WorkflowType, name="WorkflowType", description="What a workflow does (its `type`)")
strawberry.enum(RunStatus, name="WorkflowRunStatus")


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

    @classmethod
    def from_model(cls, index: int, s: wp.StepStats) -> Self:
        return cls(
            index=index,
            name=s.step.name,
            type=s.step.type,
            description=s.step.description,
            average_seconds=s.average_seconds,
            executions=s.executions,
        )


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

    @classmethod
    def from_model(cls, n: wp.NextAction, generated_at: datetime) -> Self:
        return cls(
            type=n.type,
            step_name=n.step_name,
            description=n.description,
            scheduled=n.scheduled,
            overdue=n.scheduled is not None and n.scheduled < generated_at,
        )


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
            if run.next_action is None
            else WorkflowNextAction.from_model(run.next_action, generated_at),
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
            steps=[WorkflowStep.from_model(k, s) for k, s in enumerate(o.steps)],
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

    @classmethod
    def from_model(cls, s: wp.WorkflowsSummary) -> Self:
        return cls(
            total_active=s.total_active,
            running=s.running,
            stalled=s.stalled,
            completed_today=s.completed_today,
            failed_today=s.failed_today,
            average_completion_hours=s.average_completion_hours,
            today_start=s.today_start,
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

    @classmethod
    def from_report(cls, r: wp.WorkflowsReport) -> Self:
        return cls(
            executed=r.performance.executed,
            success_rate=r.performance.success_rate,
            average_processing_hours=r.performance.average_hours,
            bottlenecks=[WorkflowBottleneck.from_model(b) for b in r.bottlenecks],
            window_start=r.window.start,
            window_end=r.window.end,
        )


@strawberry.type
class WorkflowsOverview:
    summary: WorkflowsSummary
    workflows: list[Workflow]
    performance: WorkflowsPerformance
    generated_at: datetime

    @classmethod
    def from_report(cls, r: wp.WorkflowsReport) -> Self:
        return cls(
            summary=WorkflowsSummary.from_model(r.summary),
            workflows=[Workflow.from_model(o, r.generated_at) for o in r.workflows],
            performance=WorkflowsPerformance.from_report(r),
            generated_at=r.generated_at,
        )
