"""Benchmark: seed the large size (~1M leads, ~10M lead events) into a fresh database.

    DASHGRAPH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/seed_large.py

The URL is an admin connection; the benchmark (re)creates the database `dashgraph_bench` next
to it, migrates it, seeds it with reset=True and prints the wall time and the rows per table.
`--size` picks another size (for a quick dry run: `--size small`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import time

import asyncpg

from models.db import Database
from models.migrate import upgrade
from models.seed import SIZES, seed

DATABASE = "dashgraph_bench"


def bench_url(admin_url: str) -> str:
    base, _, query = admin_url.replace("postgresql+asyncpg://", "postgresql://").partition("?")
    return base.rsplit("/", 1)[0] + f"/{DATABASE}" + (f"?{query}" if query else "")


async def recreate(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


async def run(url: str, size: str) -> tuple[float, dict[str, int]]:
    db = Database(url, pool_size=1)
    try:
        started = time.perf_counter()
        counts = await seed(db, size, reset=True)
        return time.perf_counter() - started, counts
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=list(SIZES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    admin_url = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    asyncio.run(recreate(admin_url))
    url = bench_url(admin_url)
    upgrade(url)
    seconds, counts = asyncio.run(run(url, args.size))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"seed {args.size}: {seconds:.1f} s wall, {os.cpu_count()} CPUs, peak RSS {peak_mb:.0f} MB"
    )
    width = max(map(len, counts))
    for table, rows in counts.items():
        print(f"  {table:<{width}}  {rows:>12,}")
    print(f"  {'total':<{width}}  {sum(counts.values()):>12,}")


if __name__ == "__main__":
    main()
