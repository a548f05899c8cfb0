"""lead_insights: two covering indexes on lead by last activity, for `Workspace.leadInsights`

The period's leads of lead insights are those whose `coalesce(last_activity_at, created_at)`
falls in the window (models/lead_insights/rules.py). `ix_lead_activity` serves the summary over all
of them with an index-only scan (stage and score included); the partial `ix_lead_open` holds
the open leads only (about 12% of them on the large seed) with every column the score
quartiles, the filter rules, the priorities and the sorted page read. Measured on the large
seed (700k leads in the biggest workspace, period Y1): summary 590k leads in ~70 ms instead of
a 180-780 ms scan of the table; counts and quartiles ~45 ms; the page ~20 ms.

Expression indexes serve index-only scans only when the expression's own columns are stored
too, hence `last_activity_at` and `created_at` among the included columns. The cost: an
update of `last_activity_at` (a recorded lead event) is no longer a HOT update.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_lead_activity ON lead "
        "(workspace_id, (coalesce(last_activity_at, created_at))) "
        "INCLUDE (stage, score, last_activity_at, created_at)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_lead_open ON lead "
        "(workspace_id, (coalesce(last_activity_at, created_at))) "
        "INCLUDE (id, score, budget, timeline, stage, created_at, last_activity_at, owner_id, "
        "agent_id) WHERE stage NOT IN ('WON', 'LOST')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_lead_open")
    op.execute("DROP INDEX IF EXISTS ix_lead_activity")
