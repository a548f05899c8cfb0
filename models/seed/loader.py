"""The database side of seeding: truncate, bulk-load with COPY, keep the schema intact.

During a load, the big tables lose their secondary indexes and foreign keys, which are
rebuilt from their own catalog definitions afterwards: building an index once is much cheaper
than maintaining it row by row, and one validating join beats millions of per-row FK checks.
All of it happens inside the caller's transaction, so a failed seed leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import asyncpg

from models.seed.billing import plan_rows

log = logging.getLogger(__name__)

# every table a seed writes, in an order that satisfies the foreign keys
LOADED = [
    "workspace",
    "app_user",
    "membership",
    "plan",
    "agent",
    "billing_subscription",
    "payment",
    "user_session",
    "workflow",
    "lead",
    "lead_event",
    "interaction",
    "callback",
    "workflow_run",
    "dashboard",
    "preference",
    "audit_log",
]
# tables the load's triggers fill, analyzed with the loaded ones (their joins are planned on it)
DERIVED = ["lead_current_score"]
# tables big enough for the drop-and-rebuild treatment; partial indexes stay (they cover few
# rows, and their predicate would not deparse back to the migration's exact text)
BULK = ["lead", "lead_event", "interaction", "callback", "workflow_run", "user_session", "payment"]

_SECONDARY_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), ic.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE c.relnamespace = current_schema()::regnamespace
  AND c.relname = ANY($1::text[])
  AND i.indpred IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                  AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY c.relname, ic.relname
"""
_FOREIGN_KEYS = """
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = current_schema()::regnamespace
  AND c.relname = ANY($1::text[]) AND k.contype = 'f'
ORDER BY c.relname, k.conname
"""


@dataclass(slots=True)
class Detached:
    """What was dropped for the load, as the catalog described it, to be put back verbatim."""

    indexes: list[tuple[str, str, str]] = field(default_factory=list)  # table, ddl, name
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)  # table, name, ddl


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def all_tables(conn: asyncpg.Connection) -> list[str]:
    """Every application table (alembic's bookkeeping excluded)."""
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename <> 'alembic_version' ORDER BY tablename"
    )
    return [r[0] for r in rows]


async def truncate(conn: asyncpg.Connection, tables: list[str]) -> None:
    await conn.execute(f"TRUNCATE {', '.join(map(_q, tables))} RESTART IDENTITY CASCADE")


async def has_workspaces(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM workspace)"))


async def next_id(conn: asyncpg.Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT coalesce(max(id), 0) + 1 FROM {_q(table)}"))


async def insert_plans(conn: asyncpg.Connection) -> dict[str, int]:
    """The global plans, once: existing plans of the same name are kept as they are."""
    await conn.executemany(
        "INSERT INTO plan (name, price, features, call_limit, agent_limit, max_minutes, "
        "monthly_credits) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        plan_rows(),
    )
    rows = await conn.fetch("SELECT name, id FROM plan")
    return {r["name"]: int(r["id"]) for r in rows}


async def detach(conn: asyncpg.Connection, tables: list[str]) -> Detached:
    saved = Detached(
        indexes=[tuple(r) for r in await conn.fetch(_SECONDARY_INDEXES, tables)],
        foreign_keys=[tuple(r) for r in await conn.fetch(_FOREIGN_KEYS, tables)],
    )
    for table, name, _ in saved.foreign_keys:
        await conn.execute(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}")
    for _, _, name in saved.indexes:
        await conn.execute(f"DROP INDEX {_q(name)}")
    return saved


async def reattach(conn: asyncpg.Connection, saved: Detached) -> None:
    # a generous sort budget for the rebuilds, for this transaction only
    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, ddl, name in saved.indexes:
        started = time.perf_counter()
        await conn.execute(ddl)
        log.debug("rebuilt %s in %.1fs", name, time.perf_counter() - started)
    for table, name, ddl in saved.foreign_keys:
        started = time.perf_counter()
        await conn.execute(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {ddl}")
        log.debug("validated %s in %.1fs", name, time.perf_counter() - started)


async def copy(
    conn: asyncpg.Connection, table: str, columns: list[str], csv: bytes, *, freeze: bool
) -> None:
    started = time.perf_counter()
    await conn.copy_to_table(
        table, source=memoryview(csv), columns=columns, format="csv", freeze=freeze
    )
    log.debug("COPY %s: %d MB in %.2fs", table, len(csv) >> 20, time.perf_counter() - started)


async def move_sequences(conn: asyncpg.Connection, tables: list[str]) -> None:
    """Identity/serial sequences past the explicit ids, so the app's inserts don't collide."""
    with_id = await conn.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND column_name = 'id' AND table_name = ANY($1::text[])",
        tables,
    )
    for (table,) in with_id:
        seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", _q(table))
        if seq is None:
            continue
        await conn.execute(
            f"SELECT setval($1, coalesce(max(id), 0) + 1, false) FROM {_q(table)}", seq
        )


async def analyze(conn: asyncpg.Connection, tables: list[str]) -> None:
    await conn.execute(f"ANALYZE {', '.join(map(_q, tables))}")
