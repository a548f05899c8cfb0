"""models.seed: the tiny seed in a database of its own; deterministic, consistent, learnable.

Runs in a database of its own, `dashgraph_seedtest`, on the test Postgres server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from models.db import Database
from models.errors import BadUserInput
from models.migrate import upgrade
from models.seed import DEMO_LOGINS, DEMO_PASSWORD, is_empty, seed
from models.workspaces import verify_password
from tests.conftest import fetch, recreate_database

DATABASE = "dashgraph_seedtest"
NOW = datetime(2026, 3, 2, 14, 30, 15, tzinfo=UTC)

SCHEMA = """
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = 'public'::regnamespace
ORDER BY 1, 2
"""
MATURE_WON_RATE = """
SELECT {group} AS key, avg((stage = 'WON')::int)::float AS won, count(*) AS n
FROM lead WHERE created_at < $1::timestamptz - interval '180 days' GROUP BY 1
"""


def fresh_database(admin_url: str) -> str:
    """Drop and create `dashgraph_seedtest`, migrate it, return its URL."""
    url = asyncio.run(recreate_database(admin_url, DATABASE))
    upgrade(url)
    return url


def run_seed(url: str, **kwargs: object) -> dict[str, int]:
    async def go() -> dict[str, int]:
        db = Database(url, pool_size=1)
        try:
            return await seed(db, "tiny", now=NOW, **kwargs)  # type: ignore[arg-type]
        finally:
            await db.dispose()

    return asyncio.run(go())


def checksums(url: str) -> dict[str, str]:
    tables = [
        r[0] for r in fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    return {
        t: fetch(
            url, f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
        )[0][0]
        for t in sorted(tables)
        if t != "alembic_version"
    }


@pytest.fixture(scope="module")
def seeded(admin_database_url: str) -> Iterator[tuple[str, dict[str, int], list[asyncpg.Record]]]:
    """A fresh database, its schema as migrated, then seeded once (tiny, fixed `now`)."""
    url = fresh_database(admin_database_url)
    schema = fetch(url, SCHEMA)

    async def empty() -> bool:
        db = Database(url, pool_size=1)
        try:
            return await is_empty(db)
        finally:
            await db.dispose()

    assert asyncio.run(empty())
    counts = run_seed(url)
    assert not asyncio.run(empty())
    yield url, counts, schema


def test_same_seed_and_now_give_identical_rows(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, first_counts, _ = seeded
    first = checksums(url)
    reported: dict[str, tuple[int, int]] = {}

    def progress(table: str, done: int, total: int) -> None:
        assert 0 < done <= total
        reported[table] = (done, total)

    again = run_seed(url, reset=True, progress=progress)

    assert again == first_counts
    assert checksums(url) == first
    assert {t: n for t, (n, _) in reported.items()} == {
        t: n for t, n in again.items() if n and t != "plan"
    }
    assert all(done == total for done, total in reported.values())
    other = run_seed(url, reset=True, random_seed=8)
    assert checksums(url)["lead"] != first["lead"]
    assert other["workspace"] == 3
    run_seed(url, reset=True)  # leave the default data for the other tests


def test_refuses_to_seed_over_data_without_reset(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, counts, _ = seeded
    with pytest.raises(BadUserInput, match="use --reset"):
        run_seed(url)
    assert fetch(url, "SELECT count(*) FROM lead")[0][0] == counts["lead"]


def test_tiny_has_every_table_the_dashboards_read(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    _, counts, _ = seeded
    assert counts["workspace"] == 3
    assert 2_500 <= counts["lead"] <= 3_500
    assert counts["lead_event"] > 8 * counts["lead"]
    for table in (
        "app_user", "membership", "plan", "agent", "billing_subscription", "payment",
        "user_session", "workflow", "interaction", "callback", "workflow_run", "dashboard",
        "preference", "audit_log",
    ):  # fmt: skip
        assert counts[table] > 0, table


def test_schema_is_exactly_the_migrated_one(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, _, schema = seeded
    assert fetch(url, SCHEMA) == schema


def test_demo_logins_have_their_roles_and_password(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, _, _ = seeded
    rows = fetch(
        url,
        "SELECT u.email, m.role, w.name, u.password_hash FROM app_user u "
        "JOIN membership m ON m.user_id = u.id JOIN workspace w ON w.id = m.workspace_id "
        "WHERE u.email = ANY($1::text[])",
        [email for email, _, _ in DEMO_LOGINS],
    )
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted(DEMO_LOGINS)
    assert {"admin@acme.example", "user@acme.example", "agent@acme.example"} <= {r[0] for r in rows}
    assert verify_password(rows[0][3], DEMO_PASSWORD)


def test_each_persona_sees_data(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, _, _ = seeded
    (agent_leads,) = fetch(
        url,
        "SELECT count(*) FROM lead l JOIN agent a ON a.workspace_id = l.workspace_id "
        "AND a.id = l.agent_id JOIN app_user u ON u.id = a.user_id "
        "WHERE u.email = 'agent@acme.example' AND a.kind = 'HUMAN'",
    )[0]
    (user_leads,) = fetch(
        url,
        "SELECT count(*) FROM lead l JOIN app_user u ON u.id = l.owner_id "
        "WHERE u.email = 'user@acme.example'",
    )[0]
    kinds = {
        r[0]
        for r in fetch(
            url,
            "SELECT a.kind FROM agent a JOIN app_user u ON u.id = a.owner_id "
            "WHERE u.email = 'user@acme.example'",
        )
    }
    assert agent_leads >= 20
    assert user_leads >= 20
    assert kinds == {"HUMAN", "AI"}


def test_events_are_consistent_with_their_leads(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, _, _ = seeded
    bad = fetch(
        url,
        "SELECT count(*) FILTER (WHERE e.occurred_at < l.created_at), "
        "count(*) FILTER (WHERE e.occurred_at > $1::timestamptz), "
        "count(*) FILTER (WHERE e.occurred_at > l.last_activity_at) "
        "FROM lead_event e JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id",
        NOW,
    )[0]
    assert tuple(bad) == (0, 0, 0)
    # the latest stage event of every lead names the lead's current stage
    (mismatched,) = fetch(
        url,
        "SELECT count(*) FROM lead l JOIN LATERAL (SELECT to_stage FROM lead_event e "
        "WHERE e.workspace_id = l.workspace_id AND e.lead_id = l.id "
        "AND e.type IN ('CREATED', 'STAGE_CHANGE') ORDER BY occurred_at DESC, id DESC LIMIT 1) s "
        "ON true WHERE s.to_stage <> l.stage",
    )[0]
    assert mismatched == 0
    (wrong_conversions,) = fetch(
        url,
        "SELECT count(*) FROM lead WHERE (stage = 'WON') <> (converted_at IS NOT NULL)",
    )[0]
    assert wrong_conversions == 0


def test_recent_periods_and_live_views_have_data(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, _, _ = seeded
    hour = "$1::timestamptz - interval '1 hour'"
    day = "$1::timestamptz - interval '1 day'"
    counts = fetch(
        url,
        f"SELECT (SELECT count(*) FROM lead WHERE created_at > {hour}), "
        f"(SELECT count(*) FROM lead_event WHERE occurred_at > {hour}), "
        f"(SELECT count(*) FROM user_session WHERE started_at > {hour}), "
        f"(SELECT count(*) FROM payment WHERE created_at > {day}), "
        "(SELECT count(*) FROM interaction WHERE status = 'ACTIVE' AND channel = 'CALL'), "
        "(SELECT count(*) FROM interaction WHERE status = 'QUEUED'), "
        "(SELECT count(*) FROM callback WHERE status = 'SCHEDULED' AND scheduled_for > $1), "
        "(SELECT count(*) FROM callback WHERE status = 'SCHEDULED' AND scheduled_for < $1), "
        "(SELECT count(*) FROM billing_subscription WHERE status = 'CANCELLED')",
        NOW,
    )[0]
    assert all(c > 0 for c in counts), counts
    (future,) = fetch(
        url,
        "SELECT (SELECT count(*) FROM lead WHERE greatest(created_at, updated_at, "
        "last_activity_at, converted_at) > $1) + (SELECT count(*) FROM interaction "
        "WHERE greatest(started_at, ended_at) > $1) + (SELECT count(*) FROM payment "
        "WHERE created_at > $1) + (SELECT count(*) FROM user_session "
        "WHERE greatest(started_at, ended_at) > $1)",
        NOW,
    )[0]
    assert future == 0


def test_conversion_follows_a_learnable_signal(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, _, _ = seeded
    (overall,) = fetch(url, MATURE_WON_RATE.format(group="'all'"), NOW)
    assert 0.04 <= overall["won"] <= 0.14
    by_source = {
        r["key"]: r["won"] for r in fetch(url, MATURE_WON_RATE.format(group="source"), NOW)
    }
    assert by_source["REFERRAL"] > by_source["COLD_CALL"]
    by_timeline = {
        r["key"]: r["won"] for r in fetch(url, MATURE_WON_RATE.format(group="timeline"), NOW)
    }
    assert by_timeline["IMMEDIATE"] > by_timeline["BROWSING"]
    # leads that reply to emails convert more often than leads that never do
    replied = fetch(
        url,
        "SELECT exists(SELECT 1 FROM lead_event e WHERE e.workspace_id = l.workspace_id "
        "AND e.lead_id = l.id AND e.type = 'EMAIL_REPLIED') AS replied, "
        "avg((l.stage = 'WON')::int)::float AS won FROM lead l "
        "WHERE l.created_at < $1::timestamptz - interval '180 days' GROUP BY 1",
        NOW,
    )
    rates = {r["replied"]: r["won"] for r in replied}
    assert rates[True] > rates[False]


def test_new_rows_get_ids_after_the_seeded_ones(
    seeded: tuple[str, dict[str, int], list[asyncpg.Record]],
) -> None:
    url, counts, _ = seeded
    (lead_id,) = fetch(
        url,
        "INSERT INTO lead (workspace_id, name, source, stage, do_not_call, created_at, "
        "updated_at) VALUES (1, 'New', 'WEBSITE', 'NEW', false, now(), now()) RETURNING id",
    )[0]
    assert lead_id > counts["lead"]
    fetch(url, "DELETE FROM lead WHERE id = $1", lead_id)
