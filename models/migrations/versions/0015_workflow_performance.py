"""workflow_performance: finished workflow runs and their steps per UTC day, kept by triggers
on workflow_run; indexes for active runs, runs by finish time and runs by lead

The workflow fields average every step of every run finished in a window (up to 90 days):
unnesting ~220k `step_seconds` arrays per read took ~0.5 s on the large seed, so finished runs
are counted per (workflow, UTC day of finish, status) in `workflow_run_day` and their completed
steps per (workflow, day, step) in `workflow_step_day`. Reads add the whole days from here and
the partial first day from `workflow_run` itself (models/workflows.py), index-only.

`lead` gets a small partial index of its WON leads (conversion impact of workflow types).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# finished runs among `rows` (a table or transition table), per workflow, UTC day and status
_RUN_DAYS = """
    SELECT workspace_id, workflow_id, (finished_at AT TIME ZONE 'UTC')::date, status,
           {sign} * count(*), {sign} * sum(extract(epoch FROM finished_at - started_at)),
           {sign} * sum(jsonb_array_length(step_seconds))
    FROM {rows}
    WHERE finished_at IS NOT NULL
    GROUP BY 1, 2, 3, 4
"""
# the completed steps of those runs, per workflow, UTC day and step (0-based)
_STEP_DAYS = """
    SELECT r.workspace_id, r.workflow_id, (r.finished_at AT TIME ZONE 'UTC')::date,
           (s.ord - 1)::smallint, {sign} * count(*), {sign} * sum(s.value::numeric)::bigint
    FROM {rows} r
    CROSS JOIN LATERAL jsonb_array_elements_text(r.step_seconds) WITH ORDINALITY s(value, ord)
    WHERE r.finished_at IS NOT NULL
    GROUP BY 1, 2, 3, 4
"""
_UPSERT_RUNS = """
        INSERT INTO workflow_run_day AS d
            (workspace_id, workflow_id, day, status, runs, seconds, steps)
        {query}
        ON CONFLICT (workspace_id, workflow_id, day, status) DO UPDATE
        SET runs = d.runs + EXCLUDED.runs, seconds = d.seconds + EXCLUDED.seconds,
            steps = d.steps + EXCLUDED.steps;
"""
_UPSERT_STEPS = """
        INSERT INTO workflow_step_day AS d (workspace_id, workflow_id, day, step, runs, seconds)
        {query}
        ON CONFLICT (workspace_id, workflow_id, day, step) DO UPDATE
        SET runs = d.runs + EXCLUDED.runs, seconds = d.seconds + EXCLUDED.seconds;
"""


def _apply(sign: int, rows: str) -> str:
    return _UPSERT_RUNS.format(query=_RUN_DAYS.format(sign=sign, rows=rows)) + (
        _UPSERT_STEPS.format(query=_STEP_DAYS.format(sign=sign, rows=rows))
    )


_FUNCTION = f"""
CREATE FUNCTION workflow_run_day_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_apply(-1, "old_rows")}
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        {_apply(1, "new_rows")}
    END IF;
    RETURN NULL;
END
$$
"""

STATEMENTS = [
    """
    CREATE TABLE workflow_run_day (
        workspace_id integer NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        workflow_id bigint NOT NULL,
        day date NOT NULL,
        status varchar(12) NOT NULL,
        runs integer NOT NULL,
        seconds double precision NOT NULL,
        steps integer NOT NULL,
        PRIMARY KEY (workspace_id, workflow_id, day, status)
    )
    """,
    """
    CREATE TABLE workflow_step_day (
        workspace_id integer NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        workflow_id bigint NOT NULL,
        day date NOT NULL,
        step smallint NOT NULL,
        runs integer NOT NULL,
        seconds bigint NOT NULL,
        PRIMARY KEY (workspace_id, workflow_id, day, step)
    )
    """,
    _UPSERT_RUNS.format(query=_RUN_DAYS.format(sign=1, rows="workflow_run")),
    _UPSERT_STEPS.format(query=_STEP_DAYS.format(sign=1, rows="workflow_run")),
    _FUNCTION,
    "CREATE TRIGGER workflow_run_days_insert AFTER INSERT ON workflow_run"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION workflow_run_day_apply()",
    "CREATE TRIGGER workflow_run_days_update AFTER UPDATE ON workflow_run"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION workflow_run_day_apply()",
    "CREATE TRIGGER workflow_run_days_delete AFTER DELETE ON workflow_run"
    " REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION workflow_run_day_apply()",
    # runs finished in a window, index-only (today's counts, a window's first partial day,
    # every window of a USER or AGENT: hash-joined with their leads)
    "CREATE INDEX ix_workflow_run_finished ON workflow_run (workspace_id, finished_at)"
    " INCLUDE (workflow_id, status, started_at, lead_id, step_seconds)",
    # the runs in progress, soonest next action first
    "CREATE INDEX ix_workflow_run_active ON workflow_run"
    " (workspace_id, workflow_id, next_action_at, id) WHERE status IN ('RUNNING', 'STALLED')",
    "CREATE INDEX ix_lead_won ON lead (workspace_id, id) WHERE stage = 'WON'",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for name in ("ix_lead_won", "ix_workflow_run_active"):
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP INDEX ix_workflow_run_finished")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER workflow_run_days_{name} ON workflow_run")
    op.execute("DROP FUNCTION workflow_run_day_apply()")
    op.execute("DROP TABLE workflow_step_day")
    op.execute("DROP TABLE workflow_run_day")
