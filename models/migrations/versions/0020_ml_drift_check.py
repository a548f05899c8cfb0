"""ml_drift_check: each serving version's drift as the server's ML check measured it

Drift reads the features of a month of leads (seconds on a large workspace), too slow for
`MlModel.performance`, which runs on every dashboard read. The ML check (ml/watch.py) measures
each ACTIVE version of a workspace with monitoring.driftDetection on at most once per
`ml.drift.CHECK_EVERY` and keeps the result here; performance alerts, `mlAnalytics` and the
automatic retrain read the newest row, `conceptDrift.detectedAt` the run of rows whose concept
decay is above the alert threshold.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ml_drift_check",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_psi", sa.Float(), nullable=True),
        sa.Column("feature", sa.String(length=60), nullable=True),
        sa.Column("current_rows", sa.Integer(), nullable=False),
        sa.Column("concept_decay", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "id"),
    )
    op.create_index(
        "ix_ml_drift_check_model",
        "ml_drift_check",
        ["workspace_id", "model_id", "checked_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_ml_drift_check_model", table_name="ml_drift_check")
    op.drop_table("ml_drift_check")
