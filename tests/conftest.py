"""Shared fixtures: a real Postgres (CI's, or an embedded one), the server on a loopback port,
and one gql client per persona.

DASHGRAPH_TEST_DATABASE_URL  admin URL of a Postgres to create the test database in (CI sets it);
                             unset: an embedded PostgreSQL (pgserver) in a temp dir.
DASHGRAPH_TEST_REDIS_URL     Redis for the tests that need one; unset: those tests skip.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import uvicorn
from sqlalchemy import event

from app.main import create_app
from app.settings import Settings
from models.db import Database
from models.scope import Scope
from models.workspaces import Role
from tests.client import Persona, login

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# the databases this session created, dropped when it ends (the server may be the machine's)
_CREATED: set[str] = set()


async def _drop_databases(admin_url: str, names: Iterable[str]) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def recreate_database(admin_url: str, name: str) -> str:
    await _drop_databases(admin_url, [name])
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    _CREATED.add(name)
    base, _, query = _plain(admin_url).partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def admin_database_url() -> Iterator[str]:
    """A Postgres server we may create databases on."""
    url = os.environ.get("DASHGRAPH_TEST_DATABASE_URL")
    if url:
        yield url
        asyncio.run(_drop_databases(url, sorted(_CREATED)))
        return
    from app.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="dashgraph-test-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture(scope="session")
def database_url(admin_database_url: str) -> str:
    """A fresh database, migrated and seeded with the deterministic `tiny` data set."""
    return seeded_database(admin_database_url, f"dashgraph_test_{os.getpid()}", "tiny")


def seeded_database(admin_url: str, name: str, size: str, *, now: datetime | None = None) -> str:
    """(Re)create database `name` next to `admin_url`, migrate it, seed `size`; its URL."""
    from models.migrate import upgrade
    from models.seed import seed

    url = asyncio.run(recreate_database(admin_url, name))
    upgrade(url)

    async def load() -> None:
        db = Database(url, pool_size=2)
        try:
            await seed(db, size, reset=True, now=now)
        finally:
            await db.dispose()

    asyncio.run(load())
    return url


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": "test-jwt-secret-0123456789abcdef",
        "secret_key": "test-secret-key-0123456789abcdef",
        "job_poll_seconds": 0.2,
        "live_tick_seconds": 0.2,
        # no automatic retrains beside a module's own jobs (tests/resolvers/test_auto_retrain.py)
        "ml_check_seconds": 0,
        # the suite is one busy client; tests/app/test_ratelimit.py checks the limits themselves
        "rate_limit_query": "100000/minute",
        "rate_limit_mutation": "100000/minute",
        "rate_limit_login": "100000/minute",
        "rate_limit_subscription": "100000/minute",
        "rate_limit_scoring": "100000/minute",
    }
    values.update(overrides)
    return Settings(**values)


class ServerThread:
    """uvicorn serving the real app on a loopback port, in a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def services(self) -> Any:
        return self.app.state.services


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(database_url))) as running:
        yield running


class StatementCounter:
    """Counts the SQL statements the server sends to Postgres while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(server: ServerThread) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    engine = server.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture
def sql(sql_session: Any) -> Any:
    """Run a query of the test's own against the database: `sql("select ...", *args)` -> rows."""
    return sql_session


@pytest.fixture(scope="session")
def anonymous(server: ServerThread) -> Persona:
    return Persona(server.url, None)


@pytest.fixture(scope="session")
def admin_client(server: ServerThread) -> Persona:
    return login(server.url, "admin@acme.example")


@pytest.fixture(scope="session")
def user_client(server: ServerThread) -> Persona:
    return login(server.url, "user@acme.example")


@pytest.fixture(scope="session")
def agent_client(server: ServerThread) -> Persona:
    return login(server.url, "agent@acme.example")


@pytest.fixture(scope="session")
def globex_client(server: ServerThread) -> Persona:
    return login(server.url, "admin@globex.example")


@pytest.fixture(scope="session")
def workspace_ids(sql_session: Any) -> dict[str, str]:
    rows = sql_session("SELECT slug, id FROM workspace")
    return {r["slug"]: str(r["id"]) for r in rows}


DEMO_EMAILS = (
    "admin@acme.example",
    "user@acme.example",
    "agent@acme.example",
    "admin@globex.example",
)


@pytest.fixture(scope="session")
def scopes(sql_session: Any) -> dict[str, Scope]:
    """The demo logins' scopes (their one workspace each), for tests that call `models` directly."""
    rows = sql_session(
        "SELECT u.email, m.workspace_id, m.user_id, m.role FROM membership m "
        "JOIN app_user u ON u.id = m.user_id WHERE u.email = ANY($1::text[])",
        list(DEMO_EMAILS),
    )
    return {r["email"]: Scope(r["workspace_id"], r["user_id"], Role(r["role"])) for r in rows}


def on_database(database_url: str, scenario: Callable[[Database], Awaitable[T]]) -> T:
    """Run one async scenario on a Database of its own, disposed afterwards."""

    async def go() -> T:
        db = Database(database_url, pool_size=4)
        try:
            return await scenario(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def record_predictions(
    url: str,
    workspace_id: int,
    model_id: int,
    minute: datetime,
    *,
    bucket: int,
    calls: int,
    latency_ms: float = 0.0,
    errors: int = 0,
) -> None:
    """A minute of a version's online predictions in `ml_prediction_stat` (the data monitoring
    reads): `calls` predict calls in latency bucket `bucket` (ml.monitoring.BOUNDS_MS), each
    `latency_ms` long. A minute the version already has is left alone."""
    from ml.monitoring import BOUNDS_MS

    buckets = [0] * (len(BOUNDS_MS) + 1)
    buckets[bucket] = calls
    fetch(
        url,
        "INSERT INTO ml_prediction_stat (workspace_id, model_id, minute, count, errors, "
        "timeouts, latency_sum_ms, latency_buckets) VALUES ($1, $2, $3, $4, $5, 0, $6, $7) "
        "ON CONFLICT DO NOTHING",
        workspace_id,
        model_id,
        minute,
        calls,
        errors,
        calls * latency_ms,
        buckets,
    )


# a test's own SQL reads a lead `l`'s current score as `c.value` after `FROM lead l {SCORED}`
SCORED = "JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id"


def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run a query of the test's own on a database, outside the server: rows."""

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="session")
def sql_session(database_url: str) -> Any:
    """`sql_session("select ...", *args)` -> rows of the shared test database."""
    return functools.partial(fetch, database_url)


# ---- the analytics fields' database (issue 5): `small`, a trained model, every lead scored ----

ANALYTICS_RETRAIN = """
mutation Retrain($input: RetrainInput) { retrainModel(input: $input) { id } }
"""
ANALYTICS_JOB = "query Job($id: ID!) { job(id: $id) { status error result } }"


def wait_for(persona: Persona, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = persona.execute(ANALYTICS_JOB, id=job_id)["job"]
        if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="session")
def analytics_database(admin_database_url: str) -> str:
    """`small` seeded up to the real now (the fields' windows end at the real now), plus two
    workspaces with one admin each and no data: "Empty Co" (`admin@empty.example`) and "Solo
    Co" (`admin@solo.example`, for tests that give it a single lead); password `demo`."""
    url = seeded_database(admin_database_url, f"dashgraph_analytics_{os.getpid()}", "small")
    from models.workspaces import hash_password

    async def add_workspace(name: str, slug: str, email: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            ws = await conn.fetchval(
                "INSERT INTO workspace (name, slug, timezone, created_at) "
                "VALUES ($1, $2, 'UTC', now()) RETURNING id",
                name,
                slug,
            )
            user = await conn.fetchval(
                "INSERT INTO app_user (email, full_name, password_hash, is_verified, is_active, "
                "created_at) VALUES ($1, $2, $3, true, true, now()) RETURNING id",
                email,
                f"{name} Admin",
                hash_password("demo"),
            )
            await conn.execute(
                "INSERT INTO membership (workspace_id, user_id, role, created_at) "
                "VALUES ($1, $2, 'ADMIN', now())",
                ws,
                user,
            )
        finally:
            await conn.close()

    asyncio.run(add_workspace("Empty Co", "empty-co", "admin@empty.example"))
    asyncio.run(add_workspace("Solo Co", "solo-co", "admin@solo.example"))
    return url


@pytest.fixture(scope="session")
def analytics_server(analytics_database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(analytics_database))) as running:
        # given a trained, promoted first model that scored every lead
        admin = login(running.url, "admin@acme.example")
        input = {"iterations": 100, "depth": 4, "learningRate": 0.1}
        trained = wait_for(
            admin, admin.execute(ANALYTICS_RETRAIN, input=input)["retrainModel"]["id"]
        )
        assert trained["status"] == "SUCCEEDED", trained
        scored = wait_for(admin, trained["result"]["scoreJobId"])
        assert scored["status"] == "SUCCEEDED", scored
        yield running


@pytest.fixture(scope="session")
def analytics_sql(analytics_database: str) -> Any:
    """`analytics_sql("select ...", *args)` -> rows of the analytics database (the test's own
    reads, for independent recomputation)."""
    return functools.partial(fetch, analytics_database)


@pytest.fixture(scope="session")
def analytics_admin(analytics_server: ServerThread) -> Persona:
    return login(analytics_server.url, "admin@acme.example")


@pytest.fixture(scope="session")
def analytics_user(analytics_server: ServerThread) -> Persona:
    return login(analytics_server.url, "user@acme.example")


@pytest.fixture(scope="session")
def analytics_agent(analytics_server: ServerThread) -> Persona:
    return login(analytics_server.url, "agent@acme.example")


@pytest.fixture(scope="session")
def analytics_globex(analytics_server: ServerThread) -> Persona:
    return login(analytics_server.url, "admin@globex.example")


@pytest.fixture(scope="session")
def analytics_solo(analytics_server: ServerThread) -> Persona:
    """The admin of "Solo Co": no data until a test gives it its single lead."""
    return login(analytics_server.url, "admin@solo.example")


@pytest.fixture(scope="session")
def analytics_empty(analytics_server: ServerThread) -> Persona:
    """The admin of "Empty Co": a workspace with no leads, agents or anything else."""
    return login(analytics_server.url, "admin@empty.example")
