"""Bench fixture (not server code): plausible score history for `scoringTrends` on the `large`
bench database, older than the scoring run already there.

    python bench/seed_score_history.py [--workspace 1] [--days 90]

For workspace W (default Acme, 700k leads), dated before its newest stored scoring:
- a full rescoring every 28 days over the period (a model retrained monthly), of the leads that
  existed then;
- an online rescoring of every lead on each day it had activity (its last lead event of the
  day), as `Lead.score` reads write them when a lead changed;
each score drifts from the lead's current one (a few points of noise, a small per-source
trend, older = further off). Rows carry model_version 'bench-history': a rerun deletes them
first. The trigger of migration 0012 is skipped for the load (session_replication_role =
replica, this session only) and the rollups are rebuilt once with `score_trend_rebuild(W)`.
Prints the rows written and the times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg

TAG = "bench-history"

# a score near the lead's current one: noise, a per-source trend, older = further off
_VALUE = """
    greatest(1, least(99, round(
        coalesce(l.score, 50)
        - (extract(epoch FROM now() - {at}) / 86400.0 / 30.0)
          * (CASE l.source WHEN 'REFERRAL' THEN 2.5 WHEN 'PAID_ADS' THEN -2.0
                           WHEN 'COLD_CALL' THEN -3.0 ELSE 0.8 END)
        + (random() - 0.5) * 12
    )))::smallint
"""

FULL_RUNS = f"""
INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                        scored_at)
SELECT l.workspace_id, l.id, NULL, '{TAG}', {_VALUE.format(at="r.at")}, 0.5, r.at
FROM (SELECT generate_series(1, $3) AS k) k
CROSS JOIN LATERAL (SELECT $2::timestamptz - k.k * interval '28 days' AS at) r
JOIN lead l ON l.workspace_id = $1 AND l.created_at < r.at
WHERE r.at > $2::timestamptz - $4 * interval '1 day'
"""

ONLINE = f"""
INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                        scored_at)
SELECT l.workspace_id, l.id, NULL, '{TAG}', {_VALUE.format(at="e.at")}, 0.5, e.at
FROM (
    SELECT lead_id, max(occurred_at) AS at
    FROM lead_event
    WHERE workspace_id = $1 AND occurred_at >= $2::timestamptz - $3 * interval '1 day'
      AND occurred_at < $2::timestamptz
    GROUP BY lead_id, date_trunc('day', occurred_at, 'UTC')
) e
JOIN lead l ON l.workspace_id = $1 AND l.id = e.lead_id
"""


async def main(url: str, workspace_id: int, days: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        newest = await conn.fetchval(
            "SELECT max(scored_at) FROM lead_score WHERE workspace_id = $1 AND model_version <> $2",
            workspace_id,
            TAG,
        )
        if newest is None:
            raise SystemExit("no scoring to build history under: run a scoring job first")
        # history strictly before the newest real scoring, so that stays every lead's latest
        until = await conn.fetchval("SELECT $1::timestamptz - interval '1 hour'", newest)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL work_mem = '256MB'")
            deleted = await conn.execute(
                "DELETE FROM lead_score WHERE workspace_id = $1 AND model_version = $2",
                workspace_id,
                TAG,
            )
            full = await conn.execute(FULL_RUNS, workspace_id, until, days // 28 + 1, days)
            online = await conn.execute(ONLINE, workspace_id, until, days)
        loaded = time.perf_counter()
        await conn.execute("SET work_mem = '512MB'")
        await conn.execute("SELECT score_trend_rebuild($1)", workspace_id)
        await conn.execute("ANALYZE lead_score")
        done = time.perf_counter()
        print(f"{deleted.split()[-1]} old history rows deleted")
        print(f"full rescorings: {full.split()[-1]} rows; online: {online.split()[-1]} rows")
        print(f"load {loaded - started:.1f} s, rollup rebuild {done - loaded:.1f} s")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=int, default=1)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    url = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dashgraph_bench"
    )
    asyncio.run(main(url, args.workspace, args.days))
