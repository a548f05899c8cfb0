"""sales_performance: lead events per hour (kept by triggers on lead_event), an index on
conversions, and the workspaces' performance alert thresholds

The performance overview's engagement rates count a workspace's emails, opens, replies,
calls and meetings over up to 60 days (a window and the one before it): about a million
events on the large seed, so whole-workspace reads sum `lead_event_hour` instead (the hours
that hold a window boundary are counted from the events). Conversions in a window are read
through a partial index on `lead.converted_at` (set only while a lead is WON).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# the events of a transition table per (workspace, UTC hour, type); sign +1 or -1
_EVENTS_OF = """
    SELECT workspace_id, date_trunc('hour', occurred_at, 'UTC') AS hour, type,
           {sign} * count(*) AS events
    FROM {rows}
    GROUP BY 1, 2, 3
"""

_FUNCTION = f"""
CREATE FUNCTION lead_event_hour_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO lead_event_hour AS h (workspace_id, hour, type, events)
        {_EVENTS_OF.format(sign=-1, rows="old_rows")}
        ON CONFLICT (workspace_id, hour, type) DO UPDATE SET events = h.events + EXCLUDED.events;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO lead_event_hour AS h (workspace_id, hour, type, events)
        {_EVENTS_OF.format(sign=1, rows="new_rows")}
        ON CONFLICT (workspace_id, hour, type) DO UPDATE SET events = h.events + EXCLUDED.events;
    END IF;
    RETURN NULL;
END
$$
"""

# also run by hand on databases that had the empty placeholder of this revision applied
UPGRADE = [
    """
    CREATE TABLE lead_event_hour (
        workspace_id INTEGER NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        hour TIMESTAMP WITH TIME ZONE NOT NULL,
        type VARCHAR(24) NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, hour, type)
    )
    """,
    "INSERT INTO lead_event_hour (workspace_id, hour, type, events)"
    + _EVENTS_OF.format(sign=1, rows="lead_event"),
    _FUNCTION,
    "CREATE TRIGGER lead_event_hour_insert AFTER INSERT ON lead_event"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_event_hour_apply()",
    "CREATE TRIGGER lead_event_hour_update AFTER UPDATE ON lead_event"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_event_hour_apply()",
    "CREATE TRIGGER lead_event_hour_delete AFTER DELETE ON lead_event"
    " REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_event_hour_apply()",
    "CREATE INDEX ix_lead_converted ON lead (workspace_id, converted_at)"
    " INCLUDE (source, agent_id, owner_id) WHERE converted_at IS NOT NULL",
    """
    CREATE TABLE performance_threshold (
        workspace_id INTEGER NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
        min_conversion_rate DOUBLE PRECISION,
        max_response_time_hours DOUBLE PRECISION,
        min_average_lead_score DOUBLE PRECISION,
        min_email_open_rate DOUBLE PRECISION,
        min_lead_growth DOUBLE PRECISION,
        max_change DOUBLE PRECISION NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
        updated_by INTEGER,
        PRIMARY KEY (workspace_id)
    )
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE performance_threshold")
    op.execute("DROP INDEX ix_lead_converted")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER lead_event_hour_{name} ON lead_event")
    op.execute("DROP FUNCTION lead_event_hour_apply()")
    op.execute("DROP TABLE lead_event_hour")
