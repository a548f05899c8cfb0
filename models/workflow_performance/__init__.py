"""Workflow analytics (seed 000 "Workflow Dashboard"): `Workspace.workflows` (runs in progress,
today's counts, step averages, bottlenecks) and `Workspace.workflowPerformance` (executions by
type, conversion impact, efficiency, insights).

Rules (constants in rules.py; README "Workflows" repeats them):
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

Files: rules.py (constants, step kinds, outcome/bottleneck/insight rules), numbers.py (plain
sums), runs.py (viewer scope and shared SQL), rollup.py (window totals), scoped.py (a USER's
or AGENT's numbers in one statement), overview.py (`workflows`), performance.py
(`workflowPerformance`).
"""

from __future__ import annotations

from models.workflow_performance.numbers import WindowTotals
from models.workflow_performance.overview import (
    ActiveRun,
    NextAction,
    WorkflowOverview,
    WorkflowsReport,
    WorkflowsSummary,
    workflows_report,
)
from models.workflow_performance.performance import (
    Efficiency,
    PerformanceReport,
    TypePerformance,
    workflow_performance,
)
from models.workflow_performance.rollup import window_totals
from models.workflow_performance.rules import (
    MAX_RUNS,
    WORKFLOW_PERIODS,
    Bottleneck,
    Outcome,
    StepStats,
    WorkflowInsight,
    check_first,
)
from models.workflow_performance.runs import RunScope

__all__ = [
    "MAX_RUNS",
    "WORKFLOW_PERIODS",
    "ActiveRun",
    "Bottleneck",
    "Efficiency",
    "NextAction",
    "Outcome",
    "PerformanceReport",
    "RunScope",
    "StepStats",
    "TypePerformance",
    "WindowTotals",
    "WorkflowInsight",
    "WorkflowOverview",
    "WorkflowsReport",
    "WorkflowsSummary",
    "check_first",
    "window_totals",
    "workflow_performance",
    "workflows_report",
]
