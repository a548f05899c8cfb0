"""lead_event: a partial index of moves to LOST by time, for the closes of a window

Market and ML insights date a LOST lead by its newest move to LOST in the window. Without an
index of those moves the read scanned every event of the workspace (10M on the large bench,
~1 s); this one holds only them, with the lead, so the window's are read index-only.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

LOST = "to_stage = 'LOST'"


def upgrade() -> None:
    op.create_index(
        "ix_lead_event_lost",
        "lead_event",
        ["workspace_id", "occurred_at"],
        postgresql_include=["lead_id"],
        postgresql_where=sa.text(LOST),
    )


def downgrade() -> None:
    op.drop_index("ix_lead_event_lost", table_name="lead_event", postgresql_where=sa.text(LOST))
