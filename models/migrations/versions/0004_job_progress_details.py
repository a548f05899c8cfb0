"""job: progress details (current/best metric, ETA) and a queue priority

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "job",
        sa.Column("progress_details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "job", sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0")
    )
    op.alter_column("job", "priority", server_default=None)


def downgrade() -> None:
    op.drop_column("job", "priority")
    op.drop_column("job", "progress_details")
