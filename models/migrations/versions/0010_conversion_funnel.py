"""lead_funnel: one row per lead with what the conversion funnel groups and filters on, and
when the lead first reached each stage; kept by triggers on lead and lead_event

A lead has reached a stage once an event (CREATED or STAGE_CHANGE) took it to that stage or a
later one on NEW -> CONTACTED -> QUALIFIED -> SHOWING -> OFFER -> WON (a stage skipped on the
way counts as reached at the time of the jump). Stored generated columns turn that into small
integers (how far the lead got, seconds to each stage). A funnel over a cohort of 100k+ leads
then reads one row per lead in creation order instead of joining every stage change (large
seed, D90 of the biggest workspace: 615 ms with the join, ~120 ms from here).

No foreign key to lead: its per-row check would slow the seed's COPY; a trigger deletes instead.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# funnel stages after NEW, in order, and the rollup column of each (models/funnel/rollup.py agrees)
STAGES = ("CONTACTED", "QUALIFIED", "SHOWING", "OFFER", "WON")
REACHED = tuple(f"{s.lower()}_at" for s in STAGES)
# copied from lead; the update trigger fires when one of them changes
ATTRIBUTES = (
    "created_at",
    "source",
    "budget",
    "property_type",
    "location",
    "owner_id",
    "agent_id",
    "stage",
)

# computed from the above, so that the funnel's aggregate reads small integers: how far the lead
# got (its history or its current stage, whichever is further: 0 NEW .. 5 WON), and the
# seconds from its creation, and from the stage before, to first reaching each stage (never < 0)
DEPTH = (
    "CASE "
    + " ".join(
        f"WHEN {REACHED[k - 1]} IS NOT NULL OR stage = '{STAGES[k - 1]}' THEN {k}"
        for k in range(len(STAGES), 0, -1)
    )
    + " ELSE 0 END"
)


def seconds(later: str, earlier: str) -> str:
    # NULL until reached (greatest alone would turn NULL into 0)
    return (
        f"CASE WHEN {later} IS NOT NULL THEN"
        f" least(greatest(date_part('epoch', {later} - {earlier}), 0), 2147483647)::integer END"
    )


AFTER = {f"{s.lower()}_after_s": seconds(f"{s.lower()}_at", "created_at") for s in STAGES}
STEP = {
    f"{s.lower()}_step_s": seconds(c, before)
    for s, c, before in zip(STAGES[1:], REACHED[1:], REACHED[:-1], strict=True)
}

_FIRST_REACHED = ", ".join(
    f"min(e.occurred_at) FILTER (WHERE e.to_stage IN ({', '.join(repr(t) for t in STAGES[k:])}))"
    f" AS {column}"
    for k, column in enumerate(REACHED)
)
_STAGE_EVENT = (
    f"e.type IN ('CREATED', 'STAGE_CHANGE') AND e.to_stage IN ({', '.join(map(repr, STAGES))})"
)
# each lead's first arrival at each stage among the events of `rows`
_AGGREGATE = f"""
    SELECT e.workspace_id, e.lead_id, {_FIRST_REACHED}
    FROM {{rows}} e WHERE {_STAGE_EVENT}
    GROUP BY 1, 2
"""
# the same for the leads of `touched` from all their events (NULLs when none are left)
_RECOMPUTE = f"""
        UPDATE lead_funnel f SET {", ".join(f"{c} = r.{c}" for c in REACHED)}
        FROM (
            SELECT t.workspace_id, t.lead_id, {_FIRST_REACHED}
            FROM ({{touched}}) t
            LEFT JOIN lead_event e ON e.workspace_id = t.workspace_id AND e.lead_id = t.lead_id
                AND {_STAGE_EVENT}
            GROUP BY 1, 2
        ) r
        WHERE f.workspace_id = r.workspace_id AND f.lead_id = r.lead_id;
"""

# new events can only move a stage earlier (least ignores NULL); updates and deletes recompute
_EVENTS_FUNCTION = f"""
CREATE FUNCTION lead_funnel_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE lead_funnel f SET {", ".join(f"{c} = least(f.{c}, a.{c})" for c in REACHED)}
        FROM ({_AGGREGATE.format(rows="new_rows")}) a
        WHERE f.workspace_id = a.workspace_id AND f.lead_id = a.lead_id;
    ELSIF TG_OP = 'DELETE' THEN
        {_RECOMPUTE.format(touched="SELECT DISTINCT workspace_id, lead_id FROM old_rows")}
    ELSE
        {
    _RECOMPUTE.format(
        touched="SELECT workspace_id, lead_id FROM old_rows"
        " UNION SELECT workspace_id, lead_id FROM new_rows"
    )
}
    END IF;
    RETURN NULL;
END
$$
"""
_COLUMNS = ", ".join(("workspace_id", "lead_id", *ATTRIBUTES))
_LEAD_COLUMNS = ", ".join(("workspace_id", "id", *ATTRIBUTES))

_LEADS_FUNCTION = f"""
CREATE FUNCTION lead_funnel_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lead_funnel ({_COLUMNS}) SELECT {_LEAD_COLUMNS} FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM lead_funnel f USING old_rows o
        WHERE f.workspace_id = o.workspace_id AND f.lead_id = o.id;
    ELSE
        UPDATE lead_funnel SET {", ".join(f"{c} = NEW.{c}" for c in ATTRIBUTES)}
        WHERE workspace_id = NEW.workspace_id AND lead_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$
"""
_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in ATTRIBUTES)

TRIGGERS = {
    # statement triggers with transition tables: one statement per COPY batch of the seed
    "lead_funnel_insert": "AFTER INSERT ON lead REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_funnel_leads()",
    "lead_funnel_delete": "AFTER DELETE ON lead REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_funnel_leads()",
    # a row trigger on the copied columns only: rescoring a million leads (UPDATE ... SET score)
    # does not fire it
    "lead_funnel_update": f"AFTER UPDATE OF {', '.join(ATTRIBUTES)} ON lead"
    f" FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION lead_funnel_leads()",
    "lead_event_funnel_insert": "AFTER INSERT ON lead_event REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_funnel_events()",
    "lead_event_funnel_update": "AFTER UPDATE ON lead_event"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_funnel_events()",
    "lead_event_funnel_delete": "AFTER DELETE ON lead_event REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION lead_funnel_events()",
}


def upgrade() -> None:
    op.create_table(
        "lead_funnel",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=True),
        sa.Column("property_type", sa.String(length=24), nullable=True),
        sa.Column("location", sa.String(length=120), nullable=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        *(sa.Column(c, sa.DateTime(timezone=True), nullable=True) for c in REACHED),
        sa.Column("depth", sa.SmallInteger(), sa.Computed(DEPTH, persisted=True), nullable=False),
        *(
            sa.Column(c, sa.Integer(), sa.Computed(e, persisted=True), nullable=True)
            for c, e in (AFTER | STEP).items()
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "lead_id"),
    )
    # in creation order, so that a window's rows sit together on disk
    op.execute(
        f"INSERT INTO lead_funnel ({_COLUMNS}, {', '.join(REACHED)})"
        f" SELECT {', '.join(f'l.{c}' for c in _LEAD_COLUMNS.split(', '))},"
        f" {', '.join(f'r.{c}' for c in REACHED)}"
        f" FROM lead l LEFT JOIN ({_AGGREGATE.format(rows='lead_event')}) r"
        " ON r.workspace_id = l.workspace_id AND r.lead_id = l.id"
        " ORDER BY l.workspace_id, l.created_at, l.id"
    )
    op.create_index("ix_lead_funnel_created", "lead_funnel", ["workspace_id", "created_at"])
    op.execute(_EVENTS_FUNCTION)
    op.execute(_LEADS_FUNCTION)
    for name, definition in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")


def downgrade() -> None:
    for name in TRIGGERS:
        table = "lead_event" if name.startswith("lead_event") else "lead"
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION lead_funnel_leads()")
    op.execute("DROP FUNCTION lead_funnel_events()")
    op.drop_table("lead_funnel")
