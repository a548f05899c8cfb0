"""lead_current_score: each lead's current score in a narrow table of its own, not on `lead`

Issue 4 asks batch scoring of 1M leads in at most 20 s. When most scores change (a first
scoring, a new champion) the job spent half of its CPU rewriting `lead` rows: a changed
`lead.score` is never a HOT update (`ix_lead_score` and three covering indexes hold it), so
every one of the table's twelve indexes got a new entry, 22 us a lead. Here the score's row
is three columns with two indexes: a 50,000-row chunk's UPDATE takes 0.20 s instead of 1.1 s
(psql, rolled back, the large bench), and `lead` rows change only when a lead does. End to
end (bench/ml_score.py, 1M leads, 2 cores): every score changing 25-27 s -> 12.0 s, a first
scoring 24.6 -> 10.5 s, a new champion 17.6 -> 11.3 s, a rescoring 11.9 -> 9.6 s.

The price: reads of scores with other lead columns join this table (a hash join of the
window's leads); cold analytics reads of scores are slower, lead insights' the most (Y1,
ADMIN: 127 -> 531 ms cold p50), all still within issue 5's 1 s (bench/README.md).

- `lead_current_score (workspace_id, lead_id, value)`: one row per lead, value NULL until the
  lead is scored; inserted by a statement trigger on `lead` INSERT (every path that creates
  leads: the API, the seed's COPY) and removed with the lead by its foreign key.
- `ix_lead_current_score` (workspace_id, coalesce(value, -1), lead_id): the lead list's order
  and score filters, as `ix_lead_score` was.
- `lead.score` and `ix_lead_score` go; `ix_lead_activity`, `ix_lead_open` and
  `ix_lead_agent_cohort` are rebuilt without `score` and with `id`: reads of scores join this
  table by the lead's key (see models.leads.CurrentScore), still index-only on `lead`.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_INSERTED = """
CREATE FUNCTION lead_current_score_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lead_current_score (workspace_id, lead_id)
    SELECT workspace_id, id FROM new_rows;
    RETURN NULL;
END
$$
"""

_OPEN = "stage NOT IN ('WON', 'LOST')"


def _covering(*, score: bool) -> list[str]:
    """The three covering indexes of 0011 and 0014: with `score` as they were, or with the
    lead's `id` instead, which joins its current score (index-only either way)."""
    s, i = (", score", "") if score else ("", "id, ")
    return [
        "CREATE INDEX ix_lead_activity ON lead (workspace_id, "
        f"(coalesce(last_activity_at, created_at))) INCLUDE ({i}stage{s}, last_activity_at, "
        "created_at)",
        "CREATE INDEX ix_lead_open ON lead (workspace_id, (coalesce(last_activity_at, created_at)))"
        f" INCLUDE (id{s}, budget, timeline, stage, created_at, last_activity_at, owner_id, "
        f"agent_id) WHERE {_OPEN}",
        "CREATE INDEX ix_lead_agent_cohort ON lead (workspace_id, created_at) "
        f"INCLUDE ({i}agent_id, converted_at, value{s})",
    ]


def upgrade() -> None:
    op.create_table(
        "lead_current_score",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id", "lead_id"], ["lead.workspace_id", "lead.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "lead_id"),
    )
    op.execute(
        "INSERT INTO lead_current_score (workspace_id, lead_id, value)"
        " SELECT workspace_id, id, score FROM lead ORDER BY workspace_id, id"
    )
    op.execute(
        "CREATE INDEX ix_lead_current_score ON lead_current_score"
        " (workspace_id, (coalesce(value, -1)), lead_id)"
    )
    op.execute(_INSERTED)
    op.execute(
        "CREATE TRIGGER lead_current_score_insert AFTER INSERT ON lead"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION lead_current_score_inserted()"
    )
    for name in ("ix_lead_activity", "ix_lead_open", "ix_lead_agent_cohort", "ix_lead_score"):
        op.execute(f"DROP INDEX {name}")
    op.drop_column("lead", "score")
    for ddl in _covering(score=False):
        op.execute(ddl)
    op.execute("ANALYZE lead_current_score")


def downgrade() -> None:
    op.add_column("lead", sa.Column("score", sa.SmallInteger(), nullable=True))
    op.execute(
        "UPDATE lead l SET score = c.value FROM lead_current_score c"
        " WHERE c.workspace_id = l.workspace_id AND c.lead_id = l.id AND c.value IS NOT NULL"
    )
    for name in ("ix_lead_activity", "ix_lead_open", "ix_lead_agent_cohort"):
        op.execute(f"DROP INDEX {name}")
    for ddl in _covering(score=True):
        op.execute(ddl)
    op.execute("CREATE INDEX ix_lead_score ON lead (workspace_id, (coalesce(score, -1)), id)")
    op.execute("DROP TRIGGER lead_current_score_insert ON lead")
    op.execute("DROP FUNCTION lead_current_score_inserted()")
    op.drop_table("lead_current_score")
