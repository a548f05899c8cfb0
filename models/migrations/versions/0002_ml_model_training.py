"""ml_model: training sizes and the producing job

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ml_model",
        sa.Column(
            "training_sizes",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.alter_column("ml_model", "training_sizes", server_default=None)
    op.add_column("ml_model", sa.Column("job_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("ml_model", "job_id")
    op.drop_column("ml_model", "training_sizes")
