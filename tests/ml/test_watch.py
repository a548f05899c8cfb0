"""The ML check's pass lock (ml/watch.py): one server process runs a pass at a time."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from ml import watch
from models.db import Database
from tests.conftest import seeded_database

HELD = sa.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = "
    "hashtext('ml_check')::oid AND granted"
)


@pytest.fixture(scope="module")
def url(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_ml_watch", "tiny")


def test_a_pass_releases_its_lock_and_skips_while_another_holds_it(url: str) -> None:
    async def scenario() -> None:
        db = Database(url, pool_size=4)
        try:
            assert await watch.check(db) == ([], [])  # nothing to do in `tiny`
            async with db.engine.connect() as probe:
                assert (await probe.execute(HELD)).scalar_one() == 0  # released after it
                # while another process holds it, a pass does not wait: it skips
                assert (await probe.execute(watch._TRY_LOCK)).scalar_one() is True
                started = time.monotonic()
                assert await watch.check(db) == ([], [])
                assert time.monotonic() - started < 5
                assert (await probe.execute(HELD)).scalar_one() == 1  # still the other's
                await probe.execute(watch._UNLOCK)
                await probe.commit()
        finally:
            await db.dispose()

    asyncio.run(scenario())
