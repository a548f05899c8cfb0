"""scoring_trends: one writer of a workspace's rollups at a time (a transaction-level advisory
lock per workspace), so that concurrent scorings cannot deadlock

A scoring job writes its chunks with two connections at once (app/ml_jobs.py WRITERS). Each
chunk's `lead_score` COPY runs 0016's statement trigger, whose data-modifying CTEs upsert and
prune the same rollup rows (a batch dates all its rows alike: the same day's cells and tops) in
an order Postgres does not fix between CTEs. On the large bench a full rescoring by a new
champion failed with "deadlock detected" between the two writers (2026-11-26). Now the trigger
first takes `pg_advisory_xact_lock(hashtext('score_trend'), workspace)` for each workspace of
its rows, in order, and so does a lead's reassignment (`score_trend_lead_moved`) and the
rebuild: the rollups of a workspace change in one transaction at a time, which the shared rows
made the case in practice anyway (the second writer waited on the first's row locks). The
COPYs and `lead` updates of the two writers still run side by side.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 21:50:00
"""

from __future__ import annotations

from alembic import op

from models.migrations.revisions import load_revision

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


R16 = load_revision("0016_scoring_trends_per_holder.py")
LOCK = "pg_advisory_xact_lock(hashtext('score_trend'), {workspace})"

_APPLY_LOCKED = R16._swap(
    R16._FUNCTION,
    "BEGIN\n    SELECT count(*), min(id), min(lead_id), max(lead_id),",
    "BEGIN\n"
    "    -- one writer of a workspace's rollups at a time (0018), workspaces in order\n"
    f"    PERFORM {LOCK.format(workspace='w')}\n"
    "    FROM (SELECT DISTINCT workspace_id AS w FROM new_rows ORDER BY 1) d;\n"
    "    SELECT count(*), min(id), min(lead_id), max(lead_id),",
)
_MOVED_LOCKED = R16._swap(
    R16._LEAD_MOVED,
    "BEGIN\n    -- the cells: out of the old holders'",
    f"BEGIN\n    PERFORM {LOCK.format(workspace='NEW.workspace_id')};  -- one writer (0018)\n"
    "    -- the cells: out of the old holders'",
).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
_REBUILD_LOCKED = R16._swap(
    R16._REBUILD,
    "BEGIN\n    DELETE FROM score_trend WHERE workspace_id = ws;",
    f"BEGIN\n    PERFORM {LOCK.format(workspace='ws::int')};  -- one writer (0018)\n"
    "    DELETE FROM score_trend WHERE workspace_id = ws;",
)


def upgrade() -> None:
    for statement in (_APPLY_LOCKED, _MOVED_LOCKED, _REBUILD_LOCKED):
        op.execute(statement)


def downgrade() -> None:
    for statement in (
        R16._FUNCTION,
        R16._LEAD_MOVED.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1),
        R16._REBUILD,
    ):
        op.execute(statement)
