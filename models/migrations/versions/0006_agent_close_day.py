"""agent_close_day: each agent's closes (stage changes to WON / LOST) per UTC day, kept by a
trigger on lead_event

An agent's record before a lead arrived (a scoring feature) is then a sum over days plus the
closes of the lead's own day, instead of a count over every close the agent ever had.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# the closes among a transition table's rows, per (workspace, agent, UTC day); sign +1 or -1
_CLOSES_OF = """
    SELECT workspace_id, agent_id, (occurred_at AT TIME ZONE 'UTC')::date AS day,
           {sign} * count(*) AS closed,
           {sign} * count(*) FILTER (WHERE to_stage = 'WON') AS won
    FROM {rows}
    WHERE type = 'STAGE_CHANGE' AND to_stage IN ('WON', 'LOST') AND agent_id IS NOT NULL
    GROUP BY 1, 2, 3
"""

_FUNCTION = f"""
CREATE FUNCTION agent_close_day_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO agent_close_day AS d (workspace_id, agent_id, day, closed, won)
        {_CLOSES_OF.format(sign=-1, rows="old_rows")}
        ON CONFLICT (workspace_id, agent_id, day)
        DO UPDATE SET closed = d.closed + EXCLUDED.closed, won = d.won + EXCLUDED.won;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO agent_close_day AS d (workspace_id, agent_id, day, closed, won)
        {_CLOSES_OF.format(sign=1, rows="new_rows")}
        ON CONFLICT (workspace_id, agent_id, day)
        DO UPDATE SET closed = d.closed + EXCLUDED.closed, won = d.won + EXCLUDED.won;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "agent_close_day",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "agent_id", "day"),
    )
    op.execute(
        "INSERT INTO agent_close_day (workspace_id, agent_id, day, closed, won)"
        + _CLOSES_OF.format(sign=1, rows="lead_event")
    )
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER lead_event_closes_insert AFTER INSERT ON lead_event"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION agent_close_day_apply()"
    )
    op.execute(
        "CREATE TRIGGER lead_event_closes_update AFTER UPDATE ON lead_event"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION agent_close_day_apply()"
    )
    op.execute(
        "CREATE TRIGGER lead_event_closes_delete AFTER DELETE ON lead_event"
        " REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION agent_close_day_apply()"
    )


def downgrade() -> None:
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER lead_event_closes_{name} ON lead_event")
    op.execute("DROP FUNCTION agent_close_day_apply()")
    op.drop_table("agent_close_day")
