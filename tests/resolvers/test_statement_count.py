"""No N+1, counted by Postgres itself: a private cluster with pg_stat_statements preloaded.

Needs the PostgreSQL server binaries and the pg_stat_statements module (Debian's
postgresql package has both); skips, saying so, where they are missing.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.main import create_app
from models.db import Database
from models.migrate import upgrade
from models.seed import seed
from tests.client import login
from tests.conftest import ServerThread, free_port, settings_for
from tests.resolvers.test_leads import NESTED


def _server_binaries() -> Path | None:
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        libdir = Path(bindir).parent / "lib"
        if (Path(bindir) / "initdb").exists() and (libdir / "pg_stat_statements.so").exists():
            return Path(bindir)
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run it as the `postgres` system user then
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def stats_database_url() -> Iterator[str]:
    bindir = _server_binaries()
    if bindir is None:
        pytest.skip("needs PostgreSQL server binaries with pg_stat_statements")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start a private PostgreSQL")
    tmp = Path(tempfile.mkdtemp(prefix="dashgraph-stats-"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
    )
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w"]
    subprocess.run(_as_postgres([*ctl, "-o", options, "start"]), check=True, capture_output=True)
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

        async def prepare() -> None:
            conn = await asyncpg.connect(url)
            await conn.execute("CREATE EXTENSION pg_stat_statements")
            await conn.close()

        asyncio.run(prepare())
        upgrade(url)

        async def load() -> None:
            db = Database(url, pool_size=1)
            try:
                await seed(db, "tiny", reset=True)
            finally:
                await db.dispose()

        asyncio.run(load())
        yield url
    finally:
        subprocess.run(_as_postgres([*ctl, "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


async def _statements_since_reset(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                " JOIN pg_roles r ON r.oid = s.userid"
                " WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND s.query NOT ILIKE '%pg_stat_statements%'"
                # asyncpg's one-time set-up of a connection the pool opens (type introspection,
                # with JIT switched off around it): connection cost, not the request's statements
                " AND s.query NOT ILIKE '%typeinfo_tree%' AND s.query NOT ILIKE '%set_config(%'"
                # transaction control around a session's reads (analytics run in transactions
                # planned for their values, `Database.custom_plans`): a fixed cost per session
                " AND s.query !~* '^(BEGIN|COMMIT|ROLLBACK|SET LOCAL)'"
            )
        )
    finally:
        await conn.close()


async def _reset(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


def test_nested_lead_page_statements_counted_by_postgres(stats_database_url: str) -> None:
    # no in-process job workers: only the request's own statements reach this database
    app = create_app(settings_for(stats_database_url, run_workers=False))
    with ServerThread(app) as server:
        admin = login(server.url, "admin@acme.example")
        # warm the pool (as many connections as the loaders of one tick use at once):
        # opening a connection runs set-up statements that are not the request's
        for _ in range(3):
            admin.execute(NESTED, first=100)
        counts = {}
        for first in (10, 100):
            asyncio.run(_reset(stats_database_url))
            data = admin.execute(NESTED, first=first)
            assert len(data["workspace"]["leads"]["edges"]) == first
            counts[first] = asyncio.run(_statements_since_reset(stats_database_url))
        # viewer + memberships + workspaces, page, agents, events, scores: every statement that
        # reached Postgres, transaction control included
        statements = asyncio.run(_queries(stats_database_url))
    assert counts[10] == counts[100] <= 5, (counts, statements)


async def _queries(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT calls, left(query, 90) AS q FROM pg_stat_statements")
        return [f"{r['calls']} {r['q']}" for r in rows]
    finally:
        await conn.close()
