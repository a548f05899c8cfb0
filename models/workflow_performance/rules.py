"""The workflow rules: documented constants, the step-kind registry (manual minutes, typical
issue and fix), outcomes of a window, bottleneck steps and insights. Pure functions over
`WindowTotals` sums."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from models.errors import BadUserInput
from models.periods import rate
from models.workflow_performance.numbers import StepDef, WindowTotals, WorkflowDef
from models.workflows import RunStatus

ACTIVE = (RunStatus.RUNNING.value, RunStatus.STALLED.value)  # runs in progress
WORKFLOW_PERIODS = ("D7", "D30", "D90")
OVERVIEW_PERIOD = "D30"  # window of Workspace.workflows' step averages and performance
BOTTLENECK_FACTOR = 3.0
RELIABILITY_FACTOR = 1.5  # x the workspace's failure rate, and at least MIN_FAILURE_RATE
MIN_FAILURE_RATE = 0.05
MIN_RELIABILITY_RUNS = 20
MAX_RUNS = 100


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_RUNS:
        raise BadUserInput(f"`first` must be 1..{MAX_RUNS}", fields={"first": f"1..{MAX_RUNS}"})


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
class Outcome:
    """Executions of some workflows in a window."""

    executed: int
    completed: int
    failed: int
    success_rate: float
    average_hours: float
    completed_steps: int

    @property
    def failure_rate(self) -> float:
        return rate(self.failed, self.executed)

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
class StepStats:
    step: StepDef
    average_seconds: float
    executions: int


def step_stats(workflow: WorkflowDef, totals: WindowTotals) -> tuple[StepStats, ...]:
    """Each step's average over the executions that completed it."""
    out = []
    for k, step in enumerate(workflow.steps):
        found = totals.step(workflow.id, k)
        out.append(StepStats(step, found.average, found.runs))
    return tuple(out)


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


def bottlenecks(workflows: Sequence[WorkflowDef], totals: WindowTotals) -> list[Bottleneck]:
    """Steps over BOTTLENECK_FACTOR x the median of their workflow's measured step averages
    (at least two measured), largest potential improvement first."""
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


@dataclass(frozen=True, slots=True)
class WorkflowInsight:
    type: str  # OPTIMIZATION (a bottleneck step) or RELIABILITY (a workflow failing often)
    workflow_id: int
    title: str
    description: str
    recommendation: str
    potential_improvement: float


def _optimization(b: Bottleneck) -> WorkflowInsight:
    return WorkflowInsight(
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


def _reliability(w: WorkflowDef, o: Outcome, overall: Outcome) -> WorkflowInsight:
    return WorkflowInsight(
        type="RELIABILITY",
        workflow_id=w.id,
        title=f"{w.name} fails often",
        description=(
            f"{o.failed} of {o.executed} runs failed ({o.failure_rate:.1%}), against "
            f"{overall.failure_rate:.1%} for all workflows."
        ),
        recommendation="Review the failed runs' errors and add retries to the step",
        potential_improvement=o.failure_rate,
    )


def insights(
    defs: Sequence[WorkflowDef], totals: WindowTotals, found: Sequence[Bottleneck]
) -> list[WorkflowInsight]:
    """An OPTIMIZATION per bottleneck step, and a RELIABILITY per workflow with
    MIN_RELIABILITY_RUNS+ executions failing more than RELIABILITY_FACTOR x the failure rate
    of all the workflows (and MIN_FAILURE_RATE); largest improvement first."""
    out = [_optimization(b) for b in found]
    overall = Outcome.of(totals, {w.id for w in defs})
    threshold = max(MIN_FAILURE_RATE, RELIABILITY_FACTOR * overall.failure_rate)
    for w in defs:
        o = Outcome.of(totals, {w.id})
        if o.executed >= MIN_RELIABILITY_RUNS and o.failure_rate > threshold:
            out.append(_reliability(w, o, overall))
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
