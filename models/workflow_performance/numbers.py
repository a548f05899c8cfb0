"""The plain numbers the statements fill and the rules read: workflow definitions, and the
sums of the runs finished in a window per (workflow, status) and per (workflow, step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StepDef:
    name: str
    type: str
    description: str

    @classmethod
    def of(cls, step: dict[str, Any]) -> StepDef:
        """A step as stored in `workflow.steps` (missing keys read as "")."""
        return cls(
            str(step.get("name", "")), str(step.get("type", "")), str(step.get("description", ""))
        )


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

    def add(self, other: RunTotals) -> None:
        self.runs += other.runs
        self.seconds += other.seconds
        self.steps += other.steps


@dataclass(slots=True)
class StepTotals:
    runs: int = 0
    seconds: float = 0.0

    @property
    def average(self) -> float:
        return self.seconds / self.runs if self.runs else 0.0

    def add(self, other: StepTotals) -> None:
        self.runs += other.runs
        self.seconds += other.seconds


@dataclass(slots=True)
class WindowTotals:
    """Runs finished in a window per (workflow, status), their steps per (workflow, step)."""

    runs: dict[tuple[int, str], RunTotals] = field(default_factory=dict)
    steps: dict[tuple[int, int], StepTotals] = field(default_factory=dict)

    def add_run(
        self, workflow_id: Any, status: Any, runs: Any, seconds: Any = 0, steps: Any = 0
    ) -> None:
        """A row of run sums as a statement returns it (a NULL sum counts as 0)."""
        found = self.runs.setdefault((int(workflow_id), str(status)), RunTotals())
        found.add(RunTotals(int(runs or 0), float(seconds or 0), int(steps or 0)))

    def add_step(self, workflow_id: Any, step: Any, runs: Any, seconds: Any) -> None:
        """A row of step sums as a statement returns it (a NULL sum counts as 0)."""
        found = self.steps.setdefault((int(workflow_id), int(step)), StepTotals())
        found.add(StepTotals(int(runs or 0), float(seconds or 0)))

    def merge(self, other: WindowTotals) -> None:
        for key, t in other.runs.items():
            self.runs.setdefault(key, RunTotals()).add(t)
        for skey, s in other.steps.items():
            self.steps.setdefault(skey, StepTotals()).add(s)

    def count(self, ids: set[int], status: str) -> RunTotals:
        """The runs of the workflows `ids` that finished with `status`."""
        out = RunTotals()
        for (wf, s), t in self.runs.items():
            if wf in ids and s == status:
                out.add(t)
        return out

    def step(self, workflow_id: int, index: int) -> StepTotals:
        return self.steps.get((workflow_id, index), StepTotals())
