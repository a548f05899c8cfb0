"""models.leads writes on real Postgres: a stage change names the stage its writer saw."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from models import leads
from models.db import Database
from models.errors import BadUserInput
from models.leads import LeadEventInput, LeadEventType, LeadStage
from models.scope import Scope
from models.workspaces import Role

FINGERPRINT = """
SELECT (SELECT md5(string_agg(e::text, ',' ORDER BY workspace_id, id)) FROM lead_event e),
       (SELECT md5(string_agg(l::text, ',' ORDER BY workspace_id, id)) FROM lead l)
"""


def record(database_url: str, scope: Scope, data: LeadEventInput) -> leads.LeadEvent:
    async def go() -> leads.LeadEvent:
        db = Database(database_url, pool_size=1)
        try:
            async with db.transaction() as session:
                return await leads.record_lead_event(session, scope, data)
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def admin(sql_session: Any) -> Scope:
    (row,) = sql_session(
        "SELECT m.workspace_id, m.user_id FROM membership m JOIN app_user u ON u.id = m.user_id "
        "WHERE u.email = 'admin@acme.example'"
    )
    return Scope(row["workspace_id"], row["user_id"], Role.ADMIN)


@pytest.fixture
def new_lead(sql: Any, admin: Scope) -> int:
    rows = sql(
        "SELECT id FROM lead WHERE workspace_id = $1 AND stage = 'NEW' ORDER BY id DESC LIMIT 1",
        admin.workspace_id,
    )
    assert rows
    return int(rows[0]["id"])


def test_a_stage_change_from_the_stage_seen_is_recorded(
    database_url: str, sql: Any, admin: Scope, new_lead: int
) -> None:
    data = LeadEventInput(
        lead_id=new_lead,
        type=LeadEventType.STAGE_CHANGE,
        from_stage=LeadStage.NEW,
        to_stage=LeadStage.CONTACTED,
    )
    event = record(database_url, admin, data)
    assert (event.from_stage, event.to_stage) == ("NEW", "CONTACTED")
    assert sql("SELECT stage FROM lead WHERE id = $1", new_lead)[0]["stage"] == "CONTACTED"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        # the lead is NEW: whoever saw it QUALIFIED is looking at a stale board
        ({"type": LeadEventType.STAGE_CHANGE, "from_stage": LeadStage.QUALIFIED}, "fromStage"),
        ({"type": LeadEventType.NOTE, "from_stage": LeadStage.NEW, "to_stage": None}, "fromStage"),
    ],
)
def test_a_stage_change_from_another_stage_is_refused(
    database_url: str,
    sql: Any,
    admin: Scope,
    new_lead: int,
    data: dict[str, Any],
    field: str,
) -> None:
    before = sql(FINGERPRINT)
    values: dict[str, Any] = {"to_stage": LeadStage.SHOWING} | data
    with pytest.raises(BadUserInput) as refused:
        record(database_url, admin, LeadEventInput(lead_id=new_lead, **values))
    assert field in refused.value.details["fields"]
    assert sql(FINGERPRINT) == before


def test_a_deleted_workspace_takes_its_score_history_with_it(database_url: str, sql: Any) -> None:
    """`lead_score` has no foreign keys (bulk COPY speed, migrations 0008 and 0022); a
    workspace's deletion still removes its history, and only its."""
    others_before = sql("SELECT count(*) AS n FROM lead_score")[0]["n"]

    async def go() -> int:
        db = Database(database_url, pool_size=1)
        try:
            async with db.transaction() as session:
                workspace = await session.execute(
                    sa.text(
                        "INSERT INTO workspace (name, slug, timezone, created_at)"
                        " VALUES ('Doomed', 'doomed', 'UTC', now()) RETURNING id"
                    )
                )
                workspace_id = int(workspace.scalar_one())
                await leads.store_scores(
                    session,
                    workspace_id,
                    None,
                    "1",
                    [1, 2, 3],
                    [10, 20, 30],
                    [0.1, 0.2, 0.3],
                    [0.8, 0.6, 0.4],
                )
            return workspace_id
        finally:
            await db.dispose()

    workspace_id = asyncio.run(go())
    assert (
        sql("SELECT count(*) AS n FROM lead_score WHERE workspace_id = $1", workspace_id)[0]["n"]
        == 3
    )
    sql("DELETE FROM workspace WHERE id = $1", workspace_id)
    assert (
        sql("SELECT count(*) AS n FROM lead_score WHERE workspace_id = $1", workspace_id)[0]["n"]
        == 0
    )
    assert sql("SELECT count(*) AS n FROM lead_score")[0]["n"] == others_before
