"""`seed()`: generate the synthetic world and load it, generating the next batch in a thread
while Postgres COPYs the current one, all in one transaction."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

import asyncpg
import numpy as np
import sqlalchemy as sa

from models.db import Database
from models.errors import BadUserInput
from models.seed import loader
from models.seed.audit import audit_log
from models.seed.billing import subscriptions
from models.seed.callbacks import requested_callbacks
from models.seed.clock import Clock
from models.seed.dashboards import dashboards, preferences
from models.seed.events import make_events
from models.seed.frames import Batches, Ids, csv_bytes, ts
from models.seed.interactions import ai_executions, lead_interactions
from models.seed.leads import lead_times, make_leads
from models.seed.live import live
from models.seed.people import DEMO_PASSWORD, build_worlds, user_frame
from models.seed.sessions import user_sessions
from models.seed.sizes import SIZES, SeedSize
from models.seed.workflows import workflow_runs, workflows
from models.workspaces import hash_password

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
# rows per lead, so progress bars have a total before the rows exist
PER_LEAD = {
    "lead": 1.0,
    "lead_event": 10.5,
    "interaction": 2.8,
    "callback": 0.15,
    "workflow_run": 1.25,
}


async def is_empty(db: Database) -> bool:
    """True when no workspace exists yet (the server seeds demo data then)."""
    async with db.session() as session:
        found = await session.execute(sa.text("SELECT EXISTS (SELECT 1 FROM workspace)"))
        return not found.scalar_one()


@functools.cache
def _password_hash() -> str:
    # argon2 is deliberately slow: hash once per process, share it across every seeded user
    return hash_password(DEMO_PASSWORD)


async def seed(
    db: Database,
    size: str = "small",
    *,
    reset: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
    random_seed: int = 7,
) -> dict[str, int]:
    """Load deterministic demo data of the given size; returns the rows written per table."""
    spec = SIZES.get(size)
    if spec is None:
        raise BadUserInput(
            f"unknown seed size {size!r}", fields={"size": f"one of {', '.join(SIZES)}"}
        )
    clock = Clock.at(now)
    _password_hash()  # before the transaction: it is slow
    async with db.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        # asyncpg's own transaction: SQLAlchemy's adapter would only BEGIN on its first statement
        async with conn.transaction():
            counts = await _seed_in(conn, spec, clock, reset, progress, random_seed)
    return counts


async def _seed_in(
    conn: asyncpg.Connection,
    spec: SeedSize,
    clock: Clock,
    reset: bool,
    progress: Progress | None,
    random_seed: int,
) -> dict[str, int]:
    if reset:
        await loader.truncate(conn, await loader.all_tables(conn))
    elif await loader.has_workspaces(conn):
        raise BadUserInput("database already has data; use --reset")
    ids = Ids({"app_user": await loader.next_id(conn, "app_user")})
    plan_ids = await loader.insert_plans(conn)
    detached = await loader.detach(conn, loader.BULK)
    batches = _batches(spec, clock, ids, random_seed, _password_hash(), plan_ids)
    started = time.perf_counter()
    # COPY FREEZE needs the table truncated in this same transaction
    counts = await _load(conn, batches, progress, spec, freeze=reset)
    loaded = time.perf_counter()
    await loader.reattach(conn, detached)
    rebuilt = time.perf_counter()
    await loader.move_sequences(conn, loader.LOADED)
    await loader.analyze(conn, [*loader.LOADED, *loader.DERIVED])
    log.info(
        "seed %s: generate+COPY %.1fs, rebuild indexes and foreign keys %.1fs, analyze %.1fs",
        spec.name,
        loaded - started,
        rebuilt - loaded,
        time.perf_counter() - rebuilt,
    )
    counts["plan"] = len(plan_ids)
    return {table: counts.get(table, 0) for table in loader.LOADED}


_Item = tuple[str, list[str], int, bytes]


def _next_csv(batches: Batches) -> _Item | None:
    """The next non-empty batch as CSV (runs in a worker thread)."""
    for table, frame in batches:
        if frame.height:
            return table, frame.columns, frame.height, csv_bytes(frame)
    return None


async def _load(
    conn: asyncpg.Connection,
    batches: Batches,
    progress: Progress | None,
    spec: SeedSize,
    *,
    freeze: bool,
) -> dict[str, int]:
    totals = {table: int(rate * spec.leads) for table, rate in PER_LEAD.items()}
    counts: dict[str, int] = defaultdict(int)
    pending = asyncio.ensure_future(asyncio.to_thread(_next_csv, batches))
    try:
        while (item := await pending) is not None:
            # generate the next batch while this one streams into Postgres
            pending = asyncio.ensure_future(asyncio.to_thread(_next_csv, batches))
            table, columns, rows, csv = item
            await loader.copy(conn, table, columns, csv, freeze=freeze)
            counts[table] += rows
            if progress is not None:
                progress(table, counts[table], max(totals.get(table, 0), counts[table]))
    finally:
        # a thread cannot be cancelled: let the batch in the making finish, and drop its
        # outcome (the error that matters is the one already propagating)
        await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()
    if progress is not None:
        for table, done in counts.items():
            progress(table, done, done)
    return counts


def _batches(
    spec: SeedSize,
    clock: Clock,
    ids: Ids,
    random_seed: int,
    password_hash: str,
    plan_ids: dict[str, int],
) -> Batches:
    worlds, workspaces, memberships, agents = build_worlds(spec, clock, ids, random_seed)
    billing = subscriptions(clock, ids, random_seed, worlds, plan_ids)
    sessions, last_login = user_sessions(clock, ids, random_seed, worlds)
    yield "workspace", workspaces
    yield "app_user", user_frame(random_seed, worlds, password_hash, last_login)
    yield "membership", memberships
    yield "agent", agents
    yield from billing
    for frame in sessions:
        yield "user_session", frame
    yield "workflow", workflows(clock, ids, worlds)
    for w in worlds:
        created = lead_times(clock, random_seed, w)
        seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for index, lo in enumerate(range(0, created.size, spec.chunk_leads)):
            part = created[lo : lo + spec.chunk_leads]
            chunk, leads = make_leads(
                clock, random_seed, w, ids.take("lead", part.size), part, index
            )
            events, last_activity, touch = make_events(clock, random_seed, chunk, ids, index)
            yield (
                "lead",
                leads.with_columns(
                    updated_at=ts(last_activity), last_activity_at=ts(last_activity)
                ),
            )
            yield "lead_event", events
            interactions, asks = lead_interactions(clock, random_seed, chunk, touch, ids, index)
            yield "interaction", interactions
            yield "callback", requested_callbacks(clock, random_seed, w, asks, ids, index)
            yield "workflow_run", workflow_runs(clock, random_seed, chunk, ids, index)
            seen.append((chunk.ids, chunk.created, chunk.agent))
        w.lead_ids, w.lead_created, w.lead_agent = (
            np.concatenate([s[i] for s in seen]) for i in range(3)
        )
        for frame in ai_executions(clock, random_seed, w, ids):
            yield "interaction", frame
        now_interactions, now_callbacks = live(clock, random_seed, w, ids)
        yield "interaction", now_interactions
        yield "callback", now_callbacks
    yield "dashboard", dashboards(clock, ids, random_seed, worlds)
    yield "preference", preferences(clock, random_seed, worlds)
    yield "audit_log", audit_log(clock, ids, worlds)
