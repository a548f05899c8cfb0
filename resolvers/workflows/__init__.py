"""Workflows (seed 000 "Workflow Dashboard"): the resolvers behind `Workspace.workflows`
(overview.py: runs in progress and their next actions) and `Workspace.workflowPerformance`
(performance.py: executions by type, efficiency, bottlenecks, insights). The rules behind
every number are in models/workflow_performance/."""

from __future__ import annotations

from models import workflow_performance as wp
from models.periods import check_period
from models.scope import Scope
from models.workflows import WorkflowStatus, WorkflowType
from resolvers.context import Info
from resolvers.enums import Period
from resolvers.workflows.overview import WorkflowsOverview
from resolvers.workflows.performance import WorkflowPerformance

__all__ = [
    "WorkflowPerformance",
    "WorkflowsOverview",
    "workflow_performance_field",
    "workflows_field",
]


async def workflows_field(
    info: Info,
    scope: Scope,
    status: WorkflowStatus | None,
    type: WorkflowType | None,
    first: int,
) -> WorkflowsOverview:
    wp.check_first(first)
    db = info.context.db
    status_value = None if status is None else status.value
    type_value = None if type is None else type.value
    types = None if type_value is None else [type_value]
    report = await info.context.cached(
        scope,
        ("workflows", status_value, type_value, first),
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
