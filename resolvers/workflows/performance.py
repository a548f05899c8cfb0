"""The types behind `Workspace.workflowPerformance`: a window's executions overall and by
workflow type, efficiency, bottleneck steps and insights."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Self

import strawberry

from models import workflow_performance as wp
from resolvers.enums import Period
from resolvers.workflows.overview import WorkflowBottleneck


@strawberry.enum(
    description="OPTIMIZATION: a bottleneck step; RELIABILITY: a workflow that fails more "
    "than 1.5x the failure rate of all the workflows (and over 5%)"
)
class WorkflowInsightType(Enum):
    OPTIMIZATION = "OPTIMIZATION"
    RELIABILITY = "RELIABILITY"


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

    @classmethod
    def from_model(cls, o: wp.Outcome, cost_savings: float) -> Self:
        return cls(
            total_executed=o.executed,
            completed=o.completed,
            failed=o.failed,
            success_rate=o.success_rate,
            average_completion_hours=o.average_hours,
            cost_savings=cost_savings,
        )


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

    @classmethod
    def from_model(cls, t: wp.TypePerformance) -> Self:
        return cls(
            type=t.type,
            workflows=t.workflows,
            executed=t.outcome.executed,
            success_rate=t.outcome.success_rate,
            average_hours=t.outcome.average_hours,
            conversion_rate=t.conversion_rate,
            conversion_impact=t.conversion_impact,
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

    @classmethod
    def from_model(cls, e: wp.Efficiency) -> Self:
        return cls(
            time_saved_hours=e.time_saved_hours,
            cost_savings=e.cost_savings,
            hourly_rate=e.hourly_rate,
            error_rate=e.error_rate,
            step_executions=e.step_executions,
        )


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

    @classmethod
    def from_model(cls, i: wp.WorkflowInsight) -> Self:
        return cls(
            type=WorkflowInsightType(i.type),
            workflow_id=strawberry.ID(str(i.workflow_id)),
            title=i.title,
            description=i.description,
            recommendation=i.recommendation,
            potential_improvement=i.potential_improvement,
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
        return cls(
            period=Period(r.period),
            window_start=r.window.start,
            window_end=r.window.end,
            overall=WorkflowOutcome.from_model(r.overall, r.efficiency.cost_savings),
            baseline_conversion_rate=r.baseline_conversion_rate,
            by_type=[WorkflowTypePerformance.from_model(t) for t in r.by_type],
            efficiency=WorkflowEfficiency.from_model(r.efficiency),
            bottlenecks=[WorkflowBottleneck.from_model(b) for b in r.bottlenecks],
            insights=[WorkflowInsight.from_model(i) for i in r.insights],
        )
