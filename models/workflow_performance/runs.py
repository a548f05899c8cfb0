"""What every statement over `workflow_run` shares: which runs a viewer may count (RunScope),
the window bound, the sums of finished runs and of their steps, and the workflow definitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.selectable import NamedFromClause
from sqlmodel import col, select

from models.db import TZ, Database
from models.leads import Lead, LeadStage
from models.scope import Scope
from models.workflow_performance.numbers import StepDef, WorkflowDef
from models.workflow_performance.rules import ACTIVE
from models.workflows import Workflow, WorkflowRun


def table(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


def run_table(alias: str) -> NamedFromClause:
    return table(WorkflowRun).alias(alias)


def at(value: datetime) -> Any:
    """A window bound rendered into the statement: with bind parameters Postgres switches to a
    generic plan after five runs, and without the bound it picks per-run probes (~2 s)."""
    return sa.bindparam(None, value, type_=TZ, literal_execute=True)


def finished_in(run: Any, start: datetime, end: datetime) -> Any:
    """Runs (a table or CTE with `finished_at`) that finished in [start, end)."""
    return sa.and_(run.c.finished_at >= at(start), run.c.finished_at < at(end))


def run_sums(run: Any) -> tuple[Any, Any, Any]:
    """Aggregates of finished runs: how many, their seconds, their completed steps."""
    return (
        sa.func.count(),
        sa.func.sum(sa.extract("epoch", run.c.finished_at - run.c.started_at)),
        sa.func.sum(sa.func.jsonb_array_length(run.c.step_seconds)),
    )


def step_elements(run: Any) -> Any:
    """The runs' `step_seconds` as rows (value, ord), to join laterally."""
    return (
        sa.func.jsonb_array_elements_text(run.c.step_seconds)
        .table_valued("value", with_ordinality="ord")
        .render_derived(name="s")
    )


def step_sums(elements: Any) -> tuple[Any, Any, Any]:
    """Aggregates of completed steps: the 0-based step, how many, their seconds (group by
    `elements.c.ord`)."""
    return (
        elements.c.ord - 1,
        sa.func.count(),
        sa.func.sum(sa.cast(elements.c.value, sa.Numeric)),
    )


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

    def in_progress(self, run: Any, ids: Sequence[int], visible: Any = None) -> Any:
        """The viewer's runs of the workflows `ids` that are in progress."""
        return sa.and_(
            self.where(run, visible), run.c.workflow_id.in_(ids), run.c.status.in_(ACTIVE)
        )

    def visible(self) -> Any:
        """The viewer's leads (id, won) as a CTE."""
        return (
            sa.select(col(Lead.id).label("id"), (col(Lead.stage) == LeadStage.WON).label("won"))
            .where(self.scope.leads(Lead))
            .cte("visible")
        )


async def workflow_defs(
    db: Database, scope: Scope, status: str | None = None, types: Sequence[str] | None = None
) -> list[WorkflowDef]:
    """The workspace's workflows (every viewer sees them all), by id."""
    query = select(Workflow).where(col(Workflow.workspace_id) == scope.workspace_id)
    if status is not None:
        query = query.where(col(Workflow.status) == status)
    if types is not None:
        query = query.where(col(Workflow.type).in_(list(types)))
    async with db.custom_plans() as session:
        rows = (await session.execute(query.order_by(col(Workflow.id)))).scalars().all()
    return [
        WorkflowDef(
            id=int(w.id or 0),
            name=w.name,
            type=w.type,
            status=w.status,
            steps=tuple(StepDef.of(s) for s in w.steps),
        )
        for w in rows
    ]
