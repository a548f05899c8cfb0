"""A USER's or AGENT's numbers in one statement (one scan of their leads): the runs of their
leads finished in a window and their steps, optionally today's runs and the runs in progress,
or the runs whose lead is WON and their leads. A UNION ALL of parts tagged by `kind`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from models.db import Database
from models.periods import Window
from models.workflow_performance.numbers import WindowTotals
from models.workflow_performance.runs import (
    RunScope,
    finished_in,
    run_sums,
    run_table,
    step_elements,
    step_sums,
)


@dataclass(slots=True)
class ScopedNumbers:
    totals: WindowTotals = field(default_factory=WindowTotals)
    today: WindowTotals = field(default_factory=WindowTotals)
    active: dict[tuple[int, str], int] = field(default_factory=dict)
    conversions: dict[int, tuple[int, int]] = field(default_factory=dict)
    leads: int = 0
    won: int = 0


def _part(kind: str, workflow_id: Any, key: Any, n: Any, amount: Any = 0, extra: Any = 0) -> Any:
    """One part of the union: (kind, workflow_id, key, n, amount, extra)."""
    return sa.select(
        sa.literal(kind).label("kind"),
        workflow_id,
        sa.cast(key, sa.Text).label("key"),
        n.label("n"),
        sa.cast(amount, sa.Float).label("amount"),
        sa.cast(extra, sa.BigInteger).label("extra"),
    )


async def scoped_numbers(
    db: Database,
    rs: RunScope,
    ids: Sequence[int],
    span: Window,
    *,
    today: Window | None = None,
    conversions: bool = False,
) -> ScopedNumbers:
    """Runs of the viewer's leads finished in `span` and their steps; with `today` (inside
    `span`) those finished then and the runs in progress; with `conversions` the runs whose
    lead is WON and the viewer's leads."""
    visible = rs.visible()
    r = run_table("r")
    finished = (
        sa.select(
            r.c.workflow_id,
            r.c.status,
            r.c.started_at,
            r.c.finished_at,
            r.c.step_seconds,
            r.c.lead_id.in_(sa.select(visible.c.id).where(visible.c.won)).label("won"),
        )
        .where(rs.where(r, visible), r.c.workflow_id.in_(ids), finished_in(r, span.start, span.end))
        .cte("finished")
    )
    f = finished.c
    elements = step_elements(finished)
    n, seconds, steps = run_sums(finished)
    parts = [
        _part("run", f.workflow_id, f.status, n, seconds, steps)
        .select_from(finished)
        .group_by(f.workflow_id, f.status),
        _part("step", f.workflow_id, *step_sums(elements))
        .select_from(finished)
        .join(elements, sa.true())
        .group_by(f.workflow_id, elements.c.ord),
    ]
    if conversions:
        parts.append(
            _part("conversion", f.workflow_id, "", n, sa.func.count().filter(f.won))
            .select_from(finished)
            .group_by(f.workflow_id)
        )
        parts.append(
            _part(
                "leads",
                sa.cast(0, sa.BigInteger),
                "",
                sa.func.count(),
                sa.func.count().filter(visible.c.won),
            ).select_from(visible)
        )
    if today is not None:
        parts.append(
            _part("today", f.workflow_id, f.status, n, seconds)
            .select_from(finished)
            .where(finished_in(finished, today.start, today.end))
            .group_by(f.workflow_id, f.status)
        )
        a = run_table("a")
        parts.append(
            _part("active", a.c.workflow_id, a.c.status, sa.func.count())
            .where(rs.in_progress(a, ids, visible))
            .group_by(a.c.workflow_id, a.c.status)
        )
    out = ScopedNumbers()
    async with db.custom_plans() as session:
        rows = await session.execute(sa.union_all(*parts))
    for kind, wf, key, count, amount, extra in rows:
        if kind == "run":
            out.totals.add_run(wf, key, count, amount, extra)
        elif kind == "step":
            out.totals.add_step(wf, key, count, amount)
        elif kind == "today":
            out.today.add_run(wf, key, count, amount)
        elif kind == "active":
            out.active[(int(wf), str(key))] = int(count)
        elif kind == "conversion":
            out.conversions[int(wf)] = (int(count), int(amount or 0))
        else:
            out.leads, out.won = int(count), int(amount or 0)
    return out
