"""ml_model: type, description, drift reference, A/B deployment; ml_config; prediction stats

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ml_model",
        sa.Column("type", sa.String(length=20), nullable=False, server_default="SCORING"),
    )
    op.add_column("ml_model", sa.Column("description", sa.String(length=500), nullable=True))
    op.add_column(
        "ml_model",
        sa.Column(
            "reference",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.add_column("ml_model", sa.Column("traffic_percent", sa.SmallInteger(), nullable=True))
    op.add_column("ml_model", sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("ml_model", sa.Column("ab_ends_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("ml_model", "type", server_default=None)
    op.alter_column("ml_model", "reference", server_default=None)

    op.create_table(
        "ml_config",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("fallback_model_id", sa.BigInteger(), nullable=True),
        sa.Column("max_batch_size", sa.Integer(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("cache_enabled", sa.Boolean(), nullable=False),
        sa.Column("cache_ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("cache_max_size", sa.Integer(), nullable=False),
        sa.Column("auto_retrain", sa.Boolean(), nullable=False),
        sa.Column("retrain_threshold", sa.Float(), nullable=False),
        sa.Column("auto_promote", sa.Boolean(), nullable=False),
        sa.Column("max_training_time_ms", sa.Integer(), nullable=False),
        sa.Column("validation_split", sa.Float(), nullable=False),
        sa.Column("drift_detection", sa.Boolean(), nullable=False),
        sa.Column("alert_accuracy_drop", sa.Float(), nullable=False),
        sa.Column("alert_latency_increase_ms", sa.Float(), nullable=False),
        sa.Column("alert_drift_psi", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id"),
    )

    op.create_table(
        "ml_prediction_stat",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("timeouts", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_buckets", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "model_id", "minute"),
    )


def downgrade() -> None:
    op.drop_table("ml_prediction_stat")
    op.drop_table("ml_config")
    for column in ("ab_ends_at", "deployed_at", "traffic_percent", "reference", "description"):
        op.drop_column("ml_model", column)
    op.drop_column("ml_model", "type")
