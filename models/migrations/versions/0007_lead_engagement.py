"""lead_engagement: each lead's engagement in its first 14 days, kept by triggers on lead_event

The scoring features count a lead's email opens and replies, calls and website visits in the
14 days after its creation, and the time to its first call or email. Once those 14 days have
passed the numbers never change, so whole-workspace feature reads take them from here instead
of aggregating every event again. Must match `ml.features.WINDOW` (tests/ml check it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

WINDOW = "interval '14 days'"

# the engagement of the events in `rows` (a table or transition table), per lead
_AGGREGATE = f"""
    SELECT e.workspace_id, e.lead_id,
           count(*) FILTER (WHERE e.type = 'EMAIL_OPENED'),
           count(*) FILTER (WHERE e.type = 'EMAIL_REPLIED'),
           count(*) FILTER (WHERE e.type = 'CALL'),
           count(*) FILTER (WHERE e.type = 'WEBSITE_VISIT'),
           min(e.occurred_at) FILTER (WHERE e.type IN ('CALL', 'EMAIL_SENT'))
    FROM {{rows}} e
    JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id
    WHERE e.type IN ('EMAIL_OPENED', 'EMAIL_REPLIED', 'CALL', 'WEBSITE_VISIT', 'EMAIL_SENT')
      AND e.occurred_at >= l.created_at AND e.occurred_at <= l.created_at + {WINDOW}
      {{condition}}
    GROUP BY 1, 2
"""
_COLUMNS = (
    "workspace_id, lead_id, emails_opened, emails_replied, calls, website_visits, first_response_at"
)

# the leads of `touched` (a query) recomputed from their events
_RECOMPUTE = f"""
        DELETE FROM lead_engagement g USING ({{touched}}) t
        WHERE g.workspace_id = t.workspace_id AND g.lead_id = t.lead_id;
        INSERT INTO lead_engagement ({_COLUMNS})
        {
    _AGGREGATE.format(
        rows="lead_event",
        condition="AND (e.workspace_id, e.lead_id) IN ({touched})",
    )
};
"""

# inserts add to the counts; updates and deletes recompute the leads they touched
_FUNCTION = f"""
CREATE FUNCTION lead_engagement_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lead_engagement AS g ({_COLUMNS})
        {_AGGREGATE.format(rows="new_rows", condition="")}
        ON CONFLICT (workspace_id, lead_id) DO UPDATE SET
            emails_opened = g.emails_opened + EXCLUDED.emails_opened,
            emails_replied = g.emails_replied + EXCLUDED.emails_replied,
            calls = g.calls + EXCLUDED.calls,
            website_visits = g.website_visits + EXCLUDED.website_visits,
            first_response_at = least(g.first_response_at, EXCLUDED.first_response_at);
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


def upgrade() -> None:
    op.create_table(
        "lead_engagement",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("emails_opened", sa.Integer(), nullable=False),
        sa.Column("emails_replied", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("website_visits", sa.Integer(), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "lead_id"),
    )
    op.execute(
        f"INSERT INTO lead_engagement ({_COLUMNS})"
        + _AGGREGATE.format(rows="lead_event", condition="")
    )
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER lead_event_engagement_insert AFTER INSERT ON lead_event"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_engagement_apply()"
    )
    op.execute(
        "CREATE TRIGGER lead_event_engagement_update AFTER UPDATE ON lead_event"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_engagement_apply()"
    )
    op.execute(
        "CREATE TRIGGER lead_event_engagement_delete AFTER DELETE ON lead_event"
        " REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_engagement_apply()"
    )


def downgrade() -> None:
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER lead_event_engagement_{name} ON lead_event")
    op.execute("DROP FUNCTION lead_engagement_apply()")
    op.drop_table("lead_engagement")
