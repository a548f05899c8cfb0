"""Reading the numbers, as additive cells and candidate rises: the workspace's rollups for an
ADMIN, the rollups of the viewer's leads for a USER (per owner) or an AGENT (per agent), and
the score history itself for `leadIds` (a bounded list)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.db import Database
from models.leads import Lead
from models.scope import Scope
from models.scoring_trends.rules import MIN_IMPROVEMENT, TOP_IMPROVERS, UNSPECIFIED, trunc
from models.workspaces import Role

# the rollup's additive numbers
CELL_COLUMNS = (
    "leads",
    "score_sum",
    "excellent",
    "good",
    "moderate",
    "low",
    "rescorings",
    "change_sum",
)

# ---- per scoring and per bucket (the same rules as the rollup's trigger, migration 0012) ---------

# every scoring of {rows} (lead_score rows with the lead's source and property_type) in its
# bucket of :unit, with its lead's scoring before it and the bucket of the one after it
SCORINGS = """
    SELECT s.source, s.property_type, s.lead_id, s.value, s.scored_at, s.bucket,
           lag(s.value) OVER w AS prev, lag(s.scored_at) OVER w AS prev_at,
           lead(s.bucket) OVER w AS next_bucket
    FROM (SELECT r.*, date_trunc(:unit, r.scored_at, 'UTC') AS bucket FROM ({rows}) r) s
    WINDOW w AS (PARTITION BY s.lead_id ORDER BY s.scored_at, s.id)
"""

# the rollup's numbers of scorings `c` (bucket, segment, value, latest, change)
_CELLS_OF = """
    SELECT c.bucket, c.source, c.property_type,
           count(*) FILTER (WHERE c.latest) AS leads,
           coalesce(sum(c.value) FILTER (WHERE c.latest), 0) AS score_sum,
           count(*) FILTER (WHERE c.latest AND c.value >= 80) AS excellent,
           count(*) FILTER (WHERE c.latest AND c.value >= 60 AND c.value < 80) AS good,
           count(*) FILTER (WHERE c.latest AND c.value >= 40 AND c.value < 60) AS moderate,
           count(*) FILTER (WHERE c.latest AND c.value < 40) AS low,
           count(c.change) AS rescorings, coalesce(sum(c.change), 0) AS change_sum
    FROM c
    GROUP BY 1, 2, 3
"""


@dataclass(slots=True)
class Cell:
    """Additive numbers of one bucket (or segment)."""

    leads: int = 0
    score_sum: int = 0
    excellent: int = 0
    good: int = 0
    moderate: int = 0
    low: int = 0
    rescorings: int = 0
    change_sum: int = 0

    def add(self, row: dict[str, Any]) -> None:
        for name in CELL_COLUMNS:
            setattr(self, name, getattr(self, name) + int(row[name]))

    def add_changes(self, row: dict[str, Any]) -> None:
        self.rescorings += int(row["rescorings"])
        self.change_sum += int(row["change_sum"])


@dataclass(frozen=True, slots=True)
class Rise:
    bucket: datetime
    lead_id: int
    change: int
    value: int
    before: int
    scored_at: datetime
    before_at: datetime


@dataclass(slots=True)
class Found:
    # bucket and the CELL_COLUMNS (per segment or not)
    cells: list[dict[str, Any]] = field(default_factory=list)
    rises: list[Rise] = field(default_factory=list)  # the top ones of each bucket
    # dimension (SOURCE / PROPERTY_TYPE), value, rescorings, change_sum; None: from the cells
    # (which then have source and property_type)
    segments: list[dict[str, Any]] | None = None

    def by_segment(self) -> list[dict[str, Any]]:
        if self.segments is not None:
            return self.segments
        return [
            {
                "dimension": dimension,
                "value": row[column],
                "rescorings": row["rescorings"],
                "change_sum": row["change_sum"],
            }
            for row in self.cells
            for dimension, column in (("SOURCE", "source"), ("PROPERTY_TYPE", "property_type"))
        ]


def best_rises(rises: list[Rise]) -> list[Rise]:
    """Per bucket, each lead's biggest rise (ties: the later), then the TOP_IMPROVERS biggest
    (ties: lower lead id)."""
    best: dict[tuple[datetime, int], Rise] = {}
    for r in rises:
        key = (r.bucket, r.lead_id)
        found = best.get(key)
        if found is None or (r.change, r.scored_at) > (found.change, found.scored_at):
            best[key] = r
    per_bucket: dict[datetime, list[Rise]] = defaultdict(list)
    for r in best.values():
        per_bucket[r.bucket].append(r)
    return [
        r
        for bucket in sorted(per_bucket)
        for r in sorted(per_bucket[bucket], key=lambda r: (-r.change, r.lead_id))[:TOP_IMPROVERS]
    ]


async def from_rollup(
    db: Database, workspace_id: int, unit: str, start: datetime, stop: datetime
) -> Found:
    """Whole workspace, no lead filter: the rollups (two statements at once)."""
    sums = ", ".join(f"sum({c}) AS {c}" for c in CELL_COLUMNS)
    cells_sql = sa.text(
        f"""
        SELECT bucket, source, property_type, {sums}
        FROM score_trend
        WHERE workspace_id = :ws AND unit = :unit AND bucket >= :start AND bucket < :stop
        GROUP BY 1, 2, 3
        """
    )
    top_sql = sa.text(
        """
        SELECT day, lead_id, change, value, before, scored_at, before_at FROM score_trend_top
        WHERE workspace_id = :ws AND day >= :start AND day < :stop
        """
    )
    params = {"ws": workspace_id, "unit": unit, "start": start, "stop": stop}

    async def read(statement: Any) -> list[Any]:
        async with db.custom_plans() as session:
            return list((await session.execute(statement, params)).all())

    cells, top = await asyncio.gather(read(cells_sql), read(top_sql))
    rises = [Rise(trunc(r.day, unit), *r[1:]) for r in top]
    return Found([dict(r._mapping) for r in cells], best_rises(rises))


async def from_holder_rollup(
    db: Database, scope: Scope, unit: str, start: datetime, stop: datetime
) -> Found:
    """A USER's or AGENT's leads, no lead filter: the rollups per owner or per agent
    (migration 0016; three statements at once). An AGENT viewer sums the agents they are."""
    if scope.role is Role.USER:
        holder, ids = "owner", "CAST(:user AS bigint)"
    else:
        holder, ids = "agent", "SELECT id FROM agent WHERE workspace_id = :ws AND user_id = :user"
    held = f"workspace_id = :ws AND holder = '{holder}' AND holder_id IN ({ids})"
    sums = ", ".join(f"sum({c}) AS {c}" for c in CELL_COLUMNS)
    cells_sql = sa.text(
        f"""
        SELECT bucket, {sums} FROM score_trend_holder
        WHERE {held} AND unit = :unit AND bucket >= :start AND bucket < :stop
        GROUP BY 1
        """
    )
    segments_sql = sa.text(
        f"""
        SELECT dimension, value, sum(rescorings) AS rescorings,
               sum(change_sum) AS change_sum
        FROM score_trend_holder_segment
        WHERE {held} AND day >= :start AND day < :stop
        GROUP BY 1, 2
        """
    )
    top_sql = sa.text(
        f"""
        SELECT day, lead_id, change, value, before, scored_at, before_at
        FROM score_trend_holder_top
        WHERE {held} AND day >= :start AND day < :stop
        """
    )
    params = {
        "ws": scope.workspace_id,
        "user": scope.user_id,
        "unit": unit,
        "start": start,
        "stop": stop,
    }

    async def read(statement: Any) -> list[Any]:
        async with db.custom_plans() as session:
            return list((await session.execute(statement, params)).all())

    cells, segments, top = await asyncio.gather(read(cells_sql), read(segments_sql), read(top_sql))
    rises = [Rise(trunc(r.day, unit), *r[1:]) for r in top]
    return Found(
        [dict(r._mapping) for r in cells],
        best_rises(rises),
        [dict(r._mapping) for r in segments],
    )


async def from_history(
    session: AsyncSession,
    scope: Scope,
    unit: str,
    start: datetime,
    stop: datetime,
    lead_ids: Sequence[int],
) -> Found:
    """Some leads only (`leadIds`, within what the viewer sees): their score history itself,
    by the rules the rollups keep. A USER's or AGENT's whole read was this before migration
    0016 (their leads' every scoring: ~0.7-1.5 s cold on the large bench, and growing)."""
    visible = sa.select(
        col(Lead.id),
        col(Lead.source),
        sa.func.coalesce(col(Lead.property_type), UNSPECIFIED).label("property_type"),
    ).where(scope.leads(Lead), col(Lead.id).in_(list(lead_ids)))
    # ids and the scope's numbers only: literal binds are safe and keep the text one statement
    leads = visible.compile(compile_kwargs={"literal_binds": True})
    # each visible lead's history through the lead index (a few rows a lead), not a scan of
    # the workspace's whole history
    rows = f"""
        SELECT v.source, v.property_type, s.lead_id, s.id, s.value, s.scored_at
        FROM ({leads}) v
        CROSS JOIN LATERAL (
            SELECT s.lead_id, s.id, s.value, s.scored_at FROM lead_score s
            WHERE s.workspace_id = :ws AND s.lead_id = v.id
            OFFSET 0
        ) s
    """
    statement = sa.text(
        f"""
        WITH sc AS MATERIALIZED ({SCORINGS.format(rows=rows)}),
        c AS (
            SELECT bucket, source, property_type, value,
                   next_bucket IS DISTINCT FROM bucket AS latest, value - prev AS change
            FROM sc WHERE scored_at >= :start AND scored_at < :stop
        ),
        cells AS ({_CELLS_OF}),
        rises AS (
            SELECT bucket, lead_id, value - prev AS change, value, prev AS before, scored_at,
                   prev_at AS before_at
            FROM sc
            WHERE scored_at >= :start AND scored_at < :stop AND value - prev >= :min_improvement
        )
        SELECT 'cell' AS kind, to_jsonb(cells) AS row FROM cells
        UNION ALL
        SELECT 'rise', to_jsonb(rises) FROM rises
        """
    )
    params = {
        "ws": scope.workspace_id,
        "unit": unit,
        "start": start,
        "stop": stop,
        "min_improvement": MIN_IMPROVEMENT,
    }
    found = Found()
    rises: list[Rise] = []
    # sorts and hashes of a few hundred thousand scorings stay in memory; no JIT for one run
    await session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
    await session.execute(sa.text("SET LOCAL jit = off"))
    for kind, row in (await session.execute(statement, params)).all():
        row["bucket"] = datetime.fromisoformat(row["bucket"])
        if kind == "cell":
            found.cells.append(row)
        else:
            for key in ("scored_at", "before_at"):
                row[key] = datetime.fromisoformat(row[key])
            rises.append(Rise(**row))
    found.rises = best_rises(rises)
    return found


async def from_lead_history(
    db: Database,
    scope: Scope,
    unit: str,
    start: datetime,
    stop: datetime,
    lead_ids: Sequence[int],
) -> Found:
    # a transaction of its own for SET LOCAL (reads are autocommit)
    async with db.transaction() as session:
        return await from_history(session, scope, unit, start, stop, lead_ids)
