"""ml_model: a deployment's rollback plan (seed 003 deployModel rollbackPlan): the version to
fall back to and until when the deployed champion is watched

While `monitor_until` has not passed, the server's ML check (ml/watch.py) rolls the champion
back to `rollback_to_id` as soon as its `MlModel.performance` since deployment shows an alert.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ml_model", sa.Column("rollback_to_id", sa.BigInteger(), nullable=True))
    op.add_column("ml_model", sa.Column("monitor_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("ml_model", "monitor_until")
    op.drop_column("ml_model", "rollback_to_id")
