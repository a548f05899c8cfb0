"""job: the code and details of a failure (`DomainError.code` / `.details`), next to its message

A failed job's `error` reads "CODE: message"; clients branching on the code (a training
refused with MODEL_TRAINING_FAILED and its minSamples / actualSamples, a timeout) get it, and
the numbers behind it, as data instead of parsing the text.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job", sa.Column("error_code", sa.String(length=64), nullable=True))
    op.add_column(
        "job",
        sa.Column("error_details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("job", "error_details")
    op.drop_column("job", "error_code")
