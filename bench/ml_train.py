"""Benchmark: training on 200k labelled leads (issue #4: at most 60 s).

    python bench/ml_train.py [--rows 200000]

Needs the `large` bench database (`bench/seed_large.py`; DASHGRAPH_DATABASE_URL names it,
default postgresql://postgres@127.0.0.1:5432/dashgraph_bench). Builds the biggest workspace's
labelled feature frame (timed: the COPY reads and polars joins), keeps its newest `--rows`
leads, and trains with the default parameters (300 trees, depth 6; timed), in this process,
the way the `ml.retrain` job does (CatBoost in a thread). Prints the test metrics too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

import sqlalchemy as sa

from ml.features import feature_frame
from ml.train import TrainParams, train
from models.db import Database


async def main(url: str, rows: int) -> None:
    db = Database(url, pool_size=2)
    try:
        async with db.session() as session:
            workspace = (
                await session.execute(
                    sa.text(
                        "SELECT workspace_id FROM lead GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
                    )
                )
            ).scalar_one()
        started = time.perf_counter()
        frame = await feature_frame(db, workspace, labelled_only=True)
        features_s = time.perf_counter() - started
    finally:
        await db.dispose()
    newest = frame.tail(rows)
    params = TrainParams()
    started = time.perf_counter()
    result = await asyncio.to_thread(train, newest, params)
    train_s = time.perf_counter() - started
    test = result.metrics["test"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"workspace {workspace}: {frame.height:,} labelled leads, feature frame {features_s:.1f} s"
    )
    print(
        f"train on the newest {newest.height:,} ({params.iterations} trees, depth {params.depth}, "
        f"{result.iterations_run} run, best {result.best_iteration}): {train_s:.1f} s, "
        f"{os.cpu_count()} CPUs, peak RSS {peak_mb:.0f} MB"
    )
    print("test split:", {k: round(v, 4) for k, v in test.items() if v is not None})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    url = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dashgraph_bench"
    )
    asyncio.run(main(url, args.rows))
