"""Online features equal training's: the serving inputs (one statement, lead rows in hand) and
the row-by-row build give what `feature_frame` / `build_features` give, on every seeded lead."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from sqlmodel import col, select

from ml.features import FEATURES, feature_frame
from ml.online_features import build_frame, feature_rows, raw_features
from models.db import Database, utcnow
from models.leads import Lead
from tests.conftest import on_database, seeded_database

ACME = 1


@pytest.fixture(scope="module")
def serving_database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_serving_rows", "small")


def _same(a: Any, b: Any) -> bool:
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def test_online_features_equal_training_features(serving_database: str) -> None:
    async def scenario(db: Database) -> tuple[pl.DataFrame, pl.DataFrame, list[Any]]:
        as_of = utcnow()
        async with db.session() as session:
            leads = list(
                (
                    await session.execute(select(Lead).where(col(Lead.workspace_id) == ACME))
                ).scalars()
            )
            raw = await raw_features(session, ACME, leads, as_of)
        reference = await feature_frame(
            db, ACME, lead_ids=[lead.id for lead in leads if lead.id is not None], as_of=as_of
        )
        return reference, build_frame(raw), feature_rows(raw)

    reference, built, rows = on_database(serving_database, scenario)
    assert reference.height == built.height == len(rows) > 1000
    # given agents with enough history, the agent features are exercised
    assert reference["agent_win_rate"].is_not_null().sum() > 100
    by_id = reference.select("lead_id", *FEATURES).rows_by_key("lead_id", unique=True)
    built_by_id = built.select("lead_id", *FEATURES).rows_by_key("lead_id", unique=True)
    mismatches = []
    for lead_id, values in rows:
        for name, expected, from_frame, online in zip(
            FEATURES, by_id[lead_id], built_by_id[lead_id], values, strict=True
        ):
            if not (_same(expected, from_frame) and _same(expected, online)):
                mismatches.append((lead_id, name, expected, from_frame, online))
    assert not mismatches, mismatches[:10]
