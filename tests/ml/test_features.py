"""The feature frame's two read paths agree, and the agent record counts only earlier closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from ml.features import FEW, MIN_AGENT_CLOSED, feature_frame
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
