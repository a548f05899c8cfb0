"""lead_event: a partial index of closes (stage changes to WON / LOST) by agent and time

The agent-history features read each agent's closes before a lead's creation: a range scan of
this index per lead instead of a scan of every stage change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLOSES = "type = 'STAGE_CHANGE' AND to_stage IN ('WON', 'LOST') AND agent_id IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_lead_event_close",
        "lead_event",
        ["workspace_id", "agent_id", "occurred_at"],
        postgresql_include=["to_stage"],
        postgresql_where=sa.text(CLOSES),
    )


def downgrade() -> None:
    op.drop_index("ix_lead_event_close", table_name="lead_event", postgresql_where=sa.text(CLOSES))
