"""Benchmark: online `Lead.score` (uncached) and `Lead.explanation` latency on the `large` seed
(issue #4: p50 at most 5 ms and 25 ms server-side).

    python bench/ml_online.py [--requests 300]

Needs the `large` bench database (`bench/seed_large.py`; DASHGRAPH_DATABASE_URL names it,
default postgresql://postgres@127.0.0.1:5432/dashgraph_bench). Registers and promotes a fresh
quick model for the biggest workspace (so no stored score of it exists: every first read of a
lead is a miss), turns the score cache off through `updateMlConfig`, serves the app in this
process on a loopback port and asks for one random lead per request, each lead once:
`lead(id) { score { ... } }`, then, for other leads, `lead(id) { explanation { ... } }`.
Server-side time is measured around the ASGI app (request in, response out); the client's
round trip and the score's own `predictionTimeMs` are printed next to it. Last, the resolver's
work on its own: `ml.serving.score_leads` called in-process for other leads, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from benchkit import Timed, free_port, percentile
from sqlmodel import col, select

from app.main import create_app
from app.settings import Settings
from ml import registry, serving
from ml.features import feature_frame
from ml.train import TrainParams, train
from models.db import Database
from models.leads import Lead

LOGIN = 'mutation { login(email: "admin@acme.example", password: "demo") { token } }'
NO_CACHE = "mutation { updateMlConfig(input: {scoring: {cache: {enabled: false}}}) { __typename } }"
SCORE = "query($id: ID!) { lead(id: $id) { score { value predictionTimeMs cached } } }"
EXPLAIN = (
    "query($id: ID!) { lead(id: $id) { explanation { expectedValue "
    "topPositive { feature shap } topNegative { feature shap } } } }"
)


async def fresh_champion(url: str) -> tuple[int, list[int]]:
    """A new champion for Acme (no stored scores of it); Acme's lead ids."""
    db = Database(url, pool_size=2)
    try:
        async with db.session() as session:
            acme = (
                await session.execute(sa.text("SELECT id FROM workspace WHERE slug = 'acme'"))
            ).scalar_one()
            ids = list(
                (
                    await session.execute(
                        sa.text("SELECT id FROM lead WHERE workspace_id = :ws"), {"ws": acme}
                    )
                ).scalars()
            )
        frame = await feature_frame(db, acme, labelled_only=True)
        result = await asyncio.to_thread(train, frame.tail(50_000), TrainParams(iterations=100))
        async with db.transaction() as session:
            model, _ = await registry.register(session, acme, result, reason="bench online")
            await registry.promote(session, model, reason="bench online")
        return acme, ids
    finally:
        await db.dispose()


async def resolver_times(url: str, workspace_id: int, ids: list[int]) -> list[float]:
    """Milliseconds of `serving.score_leads` for one lead at a time (the first 20 warm up)."""
    db = Database(url, pool_size=2)
    try:
        async with db.session() as session:
            rows = await session.execute(
                select(Lead).where(col(Lead.workspace_id) == workspace_id, col(Lead.id).in_(ids))
            )
            leads = list(rows.scalars())
        times = []
        for lead in leads:
            started = time.perf_counter()
            [score] = await serving.score_leads(db, workspace_id, [lead])
            times.append((time.perf_counter() - started) * 1000)
            assert score is not None and not score.cached, score
        return times[20:]
    finally:
        await db.dispose()


async def measure(
    client: httpx.AsyncClient, timed: Timed, query: str, ids: list[int], field: str
) -> dict[str, Any]:
    server, trip, inner = [], [], []
    for lead_id in ids:
        before = len(timed.samples)
        started = time.perf_counter()
        reply = await client.post("/graphql", json={"query": query, "variables": {"id": lead_id}})
        trip.append((time.perf_counter() - started) * 1000)
        body = reply.json()
        assert "errors" not in body, body
        value = body["data"]["lead"][field]
        assert value is not None, body
        if field == "score":
            assert not value["cached"], value
            inner.append(value["predictionTimeMs"])
        server.append(timed.samples[before])
    out = {
        "n": len(ids),
        "server_p50": statistics.median(server),
        "server_p95": percentile(server, 0.95),
        "round_trip_p50": statistics.median(trip),
    }
    if inner:
        out["prediction_time_p50"] = statistics.median(inner)
    return out


async def main(url: str, requests: int) -> None:
    acme, ids = await fresh_champion(url)
    settings = Settings(
        database_url=url,
        jwt_secret="bench-jwt-secret-0123456789abcdefghij",
        secret_key="bench-secret-key-0123456789abcdefghij",
        run_workers=False,
        rate_limit_query="1000000/minute",
        rate_limit_scoring="1000000/minute",
        rate_limit_mutation="1000000/minute",
    )
    timed = Timed(create_app(settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(timed, host="127.0.0.1", port=port, log_level="warning"))
    running = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            token = (await client.post("/graphql", json={"query": LOGIN})).json()
            client.headers["Authorization"] = f"Bearer {token['data']['login']['token']}"
            assert "errors" not in (await client.post("/graphql", json={"query": NO_CACHE})).json()
            sample = random.Random(7).sample(ids, 3 * requests + 40)
            await measure(client, timed, SCORE, sample[:20], "score")  # warm up
            await measure(client, timed, EXPLAIN, sample[20:40], "explanation")
            score = await measure(client, timed, SCORE, sample[40 : 40 + requests], "score")
            explain = await measure(
                client, timed, EXPLAIN, sample[40 + requests : 40 + 2 * requests], "explanation"
            )
    finally:
        server.should_exit = True
        await running
    # the resolver's work alone, with the server stopped (its flusher shares the event loop)
    resolver = await resolver_times(url, acme, sample[40 + 2 * requests :])
    print(f"workspace {acme}: {len(ids):,} leads, a fresh champion, score cache off")
    for name, result in (("Lead.score (uncached)", score), ("Lead.explanation", explain)):
        extra = (
            f", predictionTimeMs p50 {result['prediction_time_p50']:.2f}"
            if "prediction_time_p50" in result
            else ""
        )
        print(
            f"{name}: {result['n']} requests, server p50 {result['server_p50']:.2f} ms, "
            f"p95 {result['server_p95']:.2f} ms, round trip p50 "
            f"{result['round_trip_p50']:.2f} ms{extra}"
        )
    print(
        f"serving.score_leads (uncached, in-process): {len(resolver)} leads, p50 "
        f"{statistics.median(resolver):.2f} ms, p95 {percentile(resolver, 0.95):.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    url = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dashgraph_bench"
    )
    asyncio.run(main(url, args.requests))
