"""agent_performance: each agent's first contact with each lead and each agent's usage per
hour (rollups kept by triggers on lead_event and interaction), and covering indexes for the
agent analytics (models/agent_performance/)

An agent's response time is the time from a lead's creation to the agent's first CALL,
EMAIL_SENT or MEETING on it. Over a window that is a minimum per (lead, agent) over every
contact event since the window's leads arrived (millions of rows on a big workspace), so the
first contact is kept here, one row per (lead, agent), with the lead's creation time copied in
(immutable) so a window reads one index range. Two covering indexes serve the other numbers
with index-only scans: the leads of a creation window (agent, conversion, value, score) and
the interactions of a time window (agent, channel and the AI-execution columns).

An agent's usage over a year is a million interactions on a big workspace. `agent_usage_hour`
keeps their count, credits and failures per (UTC hour, agent, AI execution or not, member) for
hourly charts (at most 1000 hours); for daily, weekly and monthly charts `agent_usage_day` keeps
them per UTC day without the member split, plus the executions of each hour of the day
(h00..h23: peak hours), and `agent_usage_day_member` each member's executions per day (distinct
members per bucket stay exact). Keys lead with the agent: an agent's window is one key range.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CONTACT_TYPES = "('CALL', 'EMAIL_SENT', 'MEETING')"

# first contact per (lead, agent) among `rows` (a table or a transition table)
_FIRST_CONTACTS = f"""
    SELECT e.workspace_id, e.lead_id, e.agent_id, l.created_at, min(e.occurred_at)
    FROM {{rows}} e
    JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id
    WHERE e.type IN {CONTACT_TYPES} AND e.agent_id IS NOT NULL
      AND e.occurred_at >= l.created_at
      {{condition}}
    GROUP BY 1, 2, 3, 4
"""
_COLUMNS = "workspace_id, lead_id, agent_id, lead_created_at, first_contact_at"

# the (lead, agent) pairs of `touched` (a query) recomputed from their events
_RECOMPUTE = f"""
        DELETE FROM lead_first_contact c USING ({{touched}}) t
        WHERE c.workspace_id = t.workspace_id AND c.lead_id = t.lead_id;
        INSERT INTO lead_first_contact ({_COLUMNS})
        {
    _FIRST_CONTACTS.format(
        rows="lead_event",
        condition="AND (e.workspace_id, e.lead_id) IN ({touched})",
    )
};
"""

# inserts can only move a first contact earlier; updates and deletes recompute their leads
_FUNCTION = f"""
CREATE FUNCTION lead_first_contact_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lead_first_contact AS c ({_COLUMNS})
        {_FIRST_CONTACTS.format(rows="new_rows", condition="")}
        ON CONFLICT (workspace_id, lead_id, agent_id) DO UPDATE SET
            first_contact_at = least(c.first_contact_at, EXCLUDED.first_contact_at);
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        {_RECOMPUTE.format(touched="SELECT workspace_id, lead_id FROM old_rows")}
    ELSE
        {
    _RECOMPUTE.format(
        touched="SELECT workspace_id, lead_id FROM old_rows"
        " UNION SELECT workspace_id, lead_id FROM new_rows"
    )
}
    END IF;
    RETURN NULL;
END
$$
"""


# interactions of `rows` per (workspace, agent, UTC hour, AI execution?, member); sign +1 or -1
_USAGE_OF = """
    SELECT workspace_id, agent_id, date_trunc('hour', started_at, 'UTC') AS hour,
           channel = 'AI_EXECUTION' AS ai_execution, coalesce(user_id, 0) AS user_key,
           {sign} * count(*) AS executions,
           {sign} * coalesce(sum(credits), 0) AS credits,
           {sign} * count(*) FILTER (WHERE status = 'FAILED') AS errors
    FROM {rows}
    WHERE agent_id IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
"""
_USAGE_COLUMNS = "workspace_id, agent_id, hour, ai_execution, user_key, executions, credits, errors"
_ADD_USAGE = f"""
        INSERT INTO agent_usage_hour AS u ({_USAGE_COLUMNS})
        {{rows}}
        ON CONFLICT (workspace_id, agent_id, hour, ai_execution, user_key) DO UPDATE SET
            executions = u.executions + EXCLUDED.executions,
            credits = u.credits + EXCLUDED.credits,
            errors = u.errors + EXCLUDED.errors;
"""
_USAGE_FUNCTION = f"""
CREATE FUNCTION agent_usage_hour_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_ADD_USAGE.format(rows=_USAGE_OF.format(sign=-1, rows="old_rows"))}
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        {_ADD_USAGE.format(rows=_USAGE_OF.format(sign=1, rows="new_rows"))}
    END IF;
    RETURN NULL;
END
$$
"""


HOURS = [f"h{h:02d}" for h in range(24)]
_UTC_HOUR = "extract(hour FROM started_at AT TIME ZONE 'UTC')"
_UTC_DAY = "(started_at AT TIME ZONE 'UTC')::date"
_DAY_OF = (
    f"""
    SELECT workspace_id, {_UTC_DAY} AS day, agent_id, channel = 'AI_EXECUTION' AS ai_execution,
           SIGN * count(*) AS executions,
           SIGN * coalesce(sum(credits), 0) AS credits,
           SIGN * count(*) FILTER (WHERE status = 'FAILED') AS errors,
           HOURS
    FROM ROWS
    WHERE agent_id IS NOT NULL
    GROUP BY 1, 2, 3, 4
"""
).replace(
    "HOURS",
    ", ".join(f"SIGN * count(*) FILTER (WHERE {_UTC_HOUR} = {h}) AS h{h:02d}" for h in range(24)),
)
_DAY_COLUMNS = (
    "workspace_id, day, agent_id, ai_execution, executions, credits, errors, " + ", ".join(HOURS)
)
_DAY_SUMS = ", ".join(
    f"{c} = u.{c} + EXCLUDED.{c}" for c in ["executions", "credits", "errors", *HOURS]
)
_MEMBER_OF = f"""
    SELECT workspace_id, {_UTC_DAY} AS day, agent_id, channel = 'AI_EXECUTION' AS ai_execution,
           coalesce(user_id, 0) AS user_key, SIGN * count(*) AS executions
    FROM ROWS
    WHERE agent_id IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
"""
_MEMBER_COLUMNS = "workspace_id, day, agent_id, ai_execution, user_key, executions"
_ADD_DAY = f"""
        INSERT INTO agent_usage_day AS u ({_DAY_COLUMNS})
        DAY_ROWS
        ON CONFLICT (workspace_id, agent_id, day, ai_execution) DO UPDATE SET {_DAY_SUMS};
        INSERT INTO agent_usage_day_member AS u ({_MEMBER_COLUMNS})
        MEMBER_ROWS
        ON CONFLICT (workspace_id, agent_id, day, ai_execution, user_key)
        DO UPDATE SET executions = u.executions + EXCLUDED.executions;
"""


def _day_of(sign: int, rows: str) -> str:
    return _ADD_DAY.replace(
        "DAY_ROWS", _DAY_OF.replace("SIGN", str(sign)).replace("ROWS", rows)
    ).replace("MEMBER_ROWS", _MEMBER_OF.replace("SIGN", str(sign)).replace("ROWS", rows))


_DAY_FUNCTION = f"""
CREATE FUNCTION agent_usage_day_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_day_of(-1, "old_rows")}
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        {_day_of(1, "new_rows")}
    END IF;
    RETURN NULL;
END
$$
"""
_TRIGGER_ROWS = (
    ("insert", "NEW TABLE AS new_rows"),
    ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("delete", "OLD TABLE AS old_rows"),
)


def upgrade() -> None:
    op.create_table(
        "lead_first_contact",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("lead_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "lead_id", "agent_id"),
    )
    op.execute(
        f"INSERT INTO lead_first_contact ({_COLUMNS})"
        + _FIRST_CONTACTS.format(rows="lead_event", condition="")
    )
    op.create_index(
        "ix_lead_first_contact_created",
        "lead_first_contact",
        ["workspace_id", "lead_created_at"],
        postgresql_include=["agent_id", "first_contact_at"],
    )
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER lead_event_first_contact_insert AFTER INSERT ON lead_event"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_first_contact_apply()"
    )
    op.execute(
        "CREATE TRIGGER lead_event_first_contact_update AFTER UPDATE ON lead_event"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_first_contact_apply()"
    )
    op.execute(
        "CREATE TRIGGER lead_event_first_contact_delete AFTER DELETE ON lead_event"
        " REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_first_contact_apply()"
    )
    op.create_table(
        "agent_usage_hour",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ai_execution", sa.Boolean(), nullable=False),
        sa.Column("user_key", sa.BigInteger(), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "agent_id", "hour", "ai_execution", "user_key"),
    )
    op.execute(
        f"INSERT INTO agent_usage_hour ({_USAGE_COLUMNS})"
        + _USAGE_OF.format(sign=1, rows="interaction")
        # in key order: an agent's window is a few pages
        + " ORDER BY 1, 2, 3"
    )
    op.execute(_USAGE_FUNCTION)
    op.create_table(
        "agent_usage_day",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("ai_execution", sa.Boolean(), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        *(sa.Column(h, sa.Integer(), nullable=False) for h in HOURS),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "agent_id", "day", "ai_execution"),
    )
    op.execute(
        f"INSERT INTO agent_usage_day ({_DAY_COLUMNS})"
        + _DAY_OF.replace("SIGN", "1").replace("ROWS", "interaction")
        + " ORDER BY 1, 3, 2"
    )
    op.create_table(
        "agent_usage_day_member",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("ai_execution", sa.Boolean(), nullable=False),
        sa.Column("user_key", sa.BigInteger(), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "agent_id", "day", "ai_execution", "user_key"),
    )
    op.execute(
        f"INSERT INTO agent_usage_day_member ({_MEMBER_COLUMNS})"
        + _MEMBER_OF.replace("SIGN", "1").replace("ROWS", "interaction")
        + " ORDER BY 1, 3, 2"
    )
    op.execute(_DAY_FUNCTION)
    for name, rows in _TRIGGER_ROWS:
        op.execute(
            f"CREATE TRIGGER interaction_usage_{name} AFTER {name.upper()} ON interaction"
            f" REFERENCING {rows}"
            " FOR EACH STATEMENT EXECUTE FUNCTION agent_usage_hour_apply()"
        )
        op.execute(
            f"CREATE TRIGGER interaction_usage_day_{name} AFTER {name.upper()} ON interaction"
            f" REFERENCING {rows}"
            " FOR EACH STATEMENT EXECUTE FUNCTION agent_usage_day_apply()"
        )
    op.create_index(
        "ix_lead_agent_cohort",
        "lead",
        ["workspace_id", "created_at"],
        postgresql_include=["agent_id", "converted_at", "value", "score"],
    )
    op.create_index(
        "ix_interaction_agent_activity",
        "interaction",
        ["workspace_id", "started_at"],
        postgresql_include=[
            "agent_id",
            "channel",
            "status",
            "user_id",
            "lead_id",
            "success",
            "duration_seconds",
            "credits",
            "satisfaction",
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_interaction_agent_activity", table_name="interaction")
    op.drop_index("ix_lead_agent_cohort", table_name="lead")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER interaction_usage_{name} ON interaction")
        op.execute(f"DROP TRIGGER interaction_usage_day_{name} ON interaction")
    op.execute("DROP FUNCTION agent_usage_day_apply()")
    op.drop_table("agent_usage_day_member")
    op.drop_table("agent_usage_day")
    op.execute("DROP FUNCTION agent_usage_hour_apply()")
    op.drop_table("agent_usage_hour")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER lead_event_first_contact_{name} ON lead_event")
    op.execute("DROP FUNCTION lead_first_contact_apply()")
    op.drop_table("lead_first_contact")
