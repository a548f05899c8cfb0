"""The feature frame's two read paths agree, and the agent record counts only earlier closes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import polars as pl
import pytest

from ml.features import FEW, MIN_AGENT_CLOSED, WINDOW, feature_frame
from models.db import Database
from tests.conftest import fetch, on_database

ACME = 1


@pytest.fixture(scope="module")
def frames(database_url: str) -> dict[str, Any]:
    as_of = datetime.now(UTC) + timedelta(minutes=1)

    async def build(db: Database) -> dict[str, Any]:
        full = await feature_frame(db, ACME, as_of=as_of)
        few_ids = full["lead_id"].gather_every(max(1, full.height // (FEW // 2))).to_list()
        few = await feature_frame(db, ACME, lead_ids=few_ids, as_of=as_of)
        labelled_few = await feature_frame(
            db, ACME, lead_ids=few_ids, as_of=as_of, labelled_only=True
        )
        return {"full": full, "few": few, "labelled_few": labelled_few, "ids": few_ids}

    return on_database(database_url, build)


def test_few_leads_path_equals_the_bulk_path(frames: dict[str, Any]) -> None:
    few, full = frames["few"], frames["full"]
    assert 10 < few.height <= FEW
    expected = full.filter(pl.col("lead_id").is_in(few["lead_id"].implode()))
    assert few.equals(expected)
    labelled = frames["labelled_few"]
    assert labelled.height and labelled["label"].null_count() == 0
    assert labelled.equals(expected.filter(pl.col("label").is_not_null()))


def test_agent_record_counts_closes_strictly_before_the_lead(
    frames: dict[str, Any], database_url: str
) -> None:
    rows = fetch(
        database_url,
        """
        SELECT l.id,
               count(c.id) AS closed,
               count(c.id) FILTER (WHERE c.to_stage = 'WON') AS won
        FROM lead l
        LEFT JOIN lead_event c ON c.workspace_id = l.workspace_id AND c.agent_id = l.agent_id
             AND c.type = 'STAGE_CHANGE' AND c.to_stage IN ('WON', 'LOST')
             AND c.occurred_at < l.created_at
        WHERE l.workspace_id = $1 AND l.id = ANY($2::bigint[])
        GROUP BY l.id
        """,
        ACME,
        frames["ids"],
    )
    expected = {r["id"]: (r["closed"], r["won"]) for r in rows}
    few = frames["few"]
    assert few["agent_closed_before"].sum() > 0
    for lead_id, closed, rate in few.select(
        "lead_id", "agent_closed_before", "agent_win_rate"
    ).iter_rows():
        want_closed, want_won = expected[lead_id]
        assert closed == want_closed
        if want_closed >= MIN_AGENT_CLOSED:
            assert rate == pytest.approx(want_won / want_closed)
        else:
            assert rate is None


def test_agent_close_rollup_follows_inserts_updates_and_deletes(database_url: str) -> None:
    """agent_close_day (the few-leads path's agent record) is kept by triggers on lead_event:
    after any write it equals a recount of the closes."""
    recount = """
        SELECT workspace_id, agent_id, (occurred_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS closed, count(*) FILTER (WHERE to_stage = 'WON') AS won
        FROM lead_event
        WHERE type = 'STAGE_CHANGE' AND to_stage IN ('WON', 'LOST') AND agent_id IS NOT NULL
        GROUP BY 1, 2, 3
    """
    rollup = "SELECT workspace_id, agent_id, day, closed, won FROM agent_close_day WHERE closed > 0"

    async def scenario(conn: asyncpg.Connection) -> list[tuple[set[Any], set[Any]]]:
        lead = await conn.fetchrow(
            "SELECT id, agent_id FROM lead WHERE workspace_id = $1 AND agent_id IS NOT NULL"
            " ORDER BY id LIMIT 1",
            ACME,
        )
        states = []

        async def compare() -> None:
            states.append(
                (
                    {tuple(r) for r in await conn.fetch(recount)},
                    {tuple(r) for r in await conn.fetch(rollup)},
                )
            )

        await compare()
        ids = await conn.fetch(
            "INSERT INTO lead_event (workspace_id, lead_id, type, occurred_at, to_stage, agent_id)"
            " SELECT $1, $2, 'STAGE_CHANGE', now() - make_interval(days => g), s, $3"
            " FROM generate_series(0, 3) g, unnest(ARRAY['WON', 'LOST']) s RETURNING id",
            ACME,
            lead["id"],
            lead["agent_id"],
        )
        await compare()
        await conn.execute(
            "UPDATE lead_event SET to_stage = 'WON', occurred_at = occurred_at - interval '9 days'"
            " WHERE workspace_id = $1 AND id = $2",
            ACME,
            ids[1]["id"],
        )
        await compare()
        await conn.execute(
            "DELETE FROM lead_event WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
            ACME,
            [r["id"] for r in ids[:3]],
        )
        await compare()
        return states

    states = in_rolled_back_transaction(database_url, scenario)
    assert len(states) == 4
    assert states[0][0]  # the seed has closes
    for recounted, kept in states:
        assert kept == recounted
    assert states[1][0] != states[0][0]  # the writes did change the counts


def test_engagement_rollup_follows_inserts_updates_and_deletes(database_url: str) -> None:
    """lead_engagement (the bulk path's engagement of leads past their window) is kept by
    triggers on lead_event: after any write it equals the live aggregate of the events."""
    live = """
        SELECT e.workspace_id, e.lead_id,
               count(*) FILTER (WHERE e.type = 'EMAIL_OPENED'),
               count(*) FILTER (WHERE e.type = 'EMAIL_REPLIED'),
               count(*) FILTER (WHERE e.type = 'CALL'),
               count(*) FILTER (WHERE e.type = 'WEBSITE_VISIT'),
               min(e.occurred_at) FILTER (WHERE e.type IN ('CALL', 'EMAIL_SENT'))
        FROM lead_event e JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id
        WHERE e.type IN ('EMAIL_OPENED', 'EMAIL_REPLIED', 'CALL', 'WEBSITE_VISIT', 'EMAIL_SENT')
          AND e.occurred_at BETWEEN l.created_at AND l.created_at + $1::interval
        GROUP BY 1, 2
    """
    rollup = (
        "SELECT workspace_id, lead_id, emails_opened, emails_replied, calls, website_visits,"
        " first_response_at FROM lead_engagement"
    )

    async def scenario(conn: asyncpg.Connection) -> list[tuple[set[Any], set[Any]]]:
        lead = await conn.fetchrow(
            "SELECT id, created_at FROM lead WHERE workspace_id = $1 ORDER BY id LIMIT 1", ACME
        )
        states = []

        async def compare() -> None:
            states.append(
                (
                    {tuple(r) for r in await conn.fetch(live, WINDOW)},
                    {tuple(r) for r in await conn.fetch(rollup)},
                )
            )

        await compare()
        ids = await conn.fetch(
            "INSERT INTO lead_event (workspace_id, lead_id, type, occurred_at)"
            " SELECT $1, $2, t, $3::timestamptz - interval '1 minute' + make_interval(hours => g)"
            " FROM generate_series(0, 2) g,"
            " unnest(ARRAY['CALL', 'EMAIL_OPENED', 'WEBSITE_VISIT']) t RETURNING id",
            ACME,
            lead["id"],
            lead["created_at"],
        )
        await compare()
        # one event moves out of the window, one to the first minute
        await conn.execute(
            "UPDATE lead_event SET occurred_at = occurred_at + interval '30 days'"
            " WHERE workspace_id = $1 AND id = $2",
            ACME,
            ids[3]["id"],
        )
        await conn.execute(
            "UPDATE lead_event SET occurred_at = $3 WHERE workspace_id = $1 AND id = $2",
            ACME,
            ids[6]["id"],
            lead["created_at"],
        )
        await compare()
        await conn.execute(
            "DELETE FROM lead_event WHERE workspace_id = $1 AND lead_id = $2", ACME, lead["id"]
        )
        await compare()
        return states

    states = in_rolled_back_transaction(database_url, scenario)
    assert len(states) == 4 and states[0][0]
    for recounted, kept in states:
        assert kept == recounted
    # each write changed the numbers (the lead's row appears, changes, goes)
    assert states[0][0] != states[1][0] != states[2][0] != states[3][0]


def in_rolled_back_transaction(url: str, scenario: Any) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            transaction = conn.transaction()
            await transaction.start()
            try:
                return await scenario(conn)
            finally:
                await transaction.rollback()
        finally:
            await conn.close()

    return asyncio.run(go())
