"""lead_score: no foreign key to workspace either; a workspace's deletion still removes its
score history, by a statement trigger

Every row COPY'd into the history paid the key's check: a lookup and a FOR KEY SHARE lock of
the workspace row (with two batch writers at once, a shared multixact). A 50,000-row chunk
took 0.32 s with it and 0.17 s without (psql, rolled back, the rollup trigger off): ~3
CPU-seconds of a 1M-lead batch scoring, though within run-to-run noise (+-1 s) of the whole
bench. The rows are written only by the server, for a workspace it has just read (the scoring
model's or the lead's), so the check guarded nothing the code does not; what the key still
did, cascading a workspace's deletion, the trigger below does per statement.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27 01:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE FUNCTION lead_score_workspace_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM lead_score s USING old_rows o WHERE s.workspace_id = o.id;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.drop_constraint("lead_score_workspace_id_fkey", "lead_score", type_="foreignkey")
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER workspace_lead_score_delete AFTER DELETE ON workspace"
        " REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_score_workspace_deleted()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER workspace_lead_score_delete ON workspace")
    op.execute("DROP FUNCTION lead_score_workspace_deleted()")
    op.create_foreign_key(
        "lead_score_workspace_id_fkey",
        "lead_score",
        "workspace",
        ["workspace_id"],
        ["id"],
        ondelete="CASCADE",
    )
