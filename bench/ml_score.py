"""Benchmark: batch scoring of every lead of the `large` seed (1M), end to end (issue #4: at
most 20 s): the bulk feature read, predict, and the writes (COPY into lead_score and the
leads' current scores, `lead_current_score`), through `app.ml_jobs.score_leads`, the
`ml.score` job's own code.

    python bench/ml_score.py                  # rescoring by the current champions
    python bench/ml_score.py --new-champion   # first scoring by a new champion
    python bench/ml_score.py --unscored       # every current score cleared first: all change

Needs the `large` bench database (`bench/seed_large.py`; DASHGRAPH_DATABASE_URL names it,
default postgresql://postgres@127.0.0.1:5432/dashgraph_bench). A workspace without a champion
first gets one (a quick 100-tree model, not timed). Prints per-workspace and total times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

import asyncpg
import sqlalchemy as sa

from app.ml_jobs import score_leads
from ml import registry
from ml.features import feature_frame
from ml.train import TrainParams, train
from models.db import Database


async def champion(db: Database, workspace_id: int, *, new: bool) -> registry.MlModel:
    """The workspace's champion; a quick new one when it has none or `new` (not timed)."""
    async with db.session() as session:
        model = await registry.champion(session, workspace_id)
    if model is not None and not new:
        return model
    frame = await feature_frame(db, workspace_id, labelled_only=True)
    seed = 7 if model is None else model.version + 7  # a new model, not the same trees again
    params = TrainParams(iterations=100, random_seed=seed)
    result = await asyncio.to_thread(train, frame.tail(100_000), params)
    async with db.transaction() as session:
        model, _ = await registry.register(session, workspace_id, result, reason="bench")
        await registry.promote(session, model, reason="bench")
    return model


def busy_cpu_seconds() -> float:
    """The machine's CPU time spent busy so far (every process: Postgres and this one), from
    /proc/stat; 0 where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


async def current_scores(db: Database) -> dict[int, int | None]:
    """Every lead's current score (not timed): what a run changed is the difference."""
    async with db.session() as session:
        rows = await session.execute(sa.text("SELECT lead_id, value FROM lead_current_score"))
        return dict(rows.tuples().all())


async def clear_scores(url: str) -> None:
    """Every lead's current score cleared and vacuumed (not timed), so that the run
    changes all of them, as a first scoring does; the history stays (the rollups' probes find
    it, as for a new champion)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE lead_current_score SET value = NULL WHERE value IS NOT NULL")
        await conn.execute("VACUUM ANALYZE lead_current_score")
    finally:
        await conn.close()


async def main(url: str, new: bool, unscored: bool) -> None:
    db = Database(url, pool_size=4)

    async def progress(fraction: float, stage: str) -> None:
        return None

    async def scored(ids: list[int]) -> None:
        return None

    try:
        if unscored:
            await clear_scores(url)
        before = await current_scores(db)
        async with db.session() as session:
            workspaces = list(
                (await session.execute(sa.text("SELECT id FROM workspace ORDER BY id"))).scalars()
            )
        total_leads, total_s, total_cpu, own_cpu = 0, 0.0, 0.0, 0.0
        for workspace_id in workspaces:
            model = await champion(db, workspace_id, new=new)
            started, cpu, own = time.perf_counter(), busy_cpu_seconds(), time.process_time()
            summary = await score_leads(db, model, None, progress=progress, scored=scored)
            elapsed = time.perf_counter() - started
            total_cpu += busy_cpu_seconds() - cpu
            own_cpu += time.process_time() - own
            total_leads += summary["successful"]
            total_s += elapsed
            print(
                f"workspace {workspace_id}: {summary['successful']:,} leads scored in "
                f"{elapsed:.1f} s ({summary['successful'] / elapsed:,.0f}/s), "
                f"average score {summary['averageScore']:.1f}"
            )
        after = await current_scores(db)
        changed = sum(1 for lead, score in after.items() if before.get(lead) != score)
        print(f"current scores changed: {changed:,} of {len(after):,} ({changed / len(after):.0%})")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"total: {total_leads:,} leads in {total_s:.1f} s ({total_leads / total_s:,.0f}/s), "
            f"{os.cpu_count()} CPUs, peak RSS {peak_mb:.0f} MB"
        )
        # CPU-bound when this is near the CPUs times the wall time
        print(
            f"machine CPU busy {total_cpu:.1f} s of {total_s * (os.cpu_count() or 1):.1f} s "
            f"(every process), of which this process (features, predict, COPY encoding) "
            f"{own_cpu:.1f} s"
        )
    finally:
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--new-champion",
        action="store_true",
        help="promote a freshly trained model first, so every stored score is of another version",
    )
    parser.add_argument(
        "--unscored",
        action="store_true",
        help="clear every lead's current score first, so the run changes all of them",
    )
    args = parser.parse_args()
    url = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dashgraph_bench"
    )
    asyncio.run(main(url, args.new_champion, args.unscored))
