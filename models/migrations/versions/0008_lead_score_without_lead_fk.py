"""lead_score: no foreign key to lead (bulk COPY speed; see models.leads.LeadScore)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 13:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("lead_score_workspace_id_lead_id_fkey", "lead_score", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "lead_score_workspace_id_lead_id_fkey",
        "lead_score",
        "lead",
        ["workspace_id", "lead_id"],
        ["workspace_id", "id"],
        ondelete="CASCADE",
    )
