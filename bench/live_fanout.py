"""Benchmark: live-metrics fan-out. N WebSocket subscribers of one workspace while the
simulator writes; database work must follow the number of groups, not of subscribers.

    DASHGRAPH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/live_fanout.py

The URL is an admin connection: the benchmark (re)creates `dashgraph_bench_live` next to it,
seeds `small`, serves the app on a free loopback port in this process, and for each N in
`--subscribers` opens N graphql-transport-ws connections (admin@acme.example) subscribed to
`liveMetrics`, runs the simulator at `--rate` writes/s for `--seconds`, and reports the
recomputes (one SQL statement each), snapshots delivered and CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import time
from typing import Any

import httpx
import uvicorn
import websockets

from app.main import create_app
from app.settings import Settings
from app.simulate import Simulator
from models.db import Database
from models.migrate import upgrade
from models.seed import seed

DATABASE = "dashgraph_bench_live"
LIVE = "subscription { liveMetrics { totalLeads newLeadsToday activeCalls revenueToday } }"
LOGIN = 'mutation { login(email: "admin@acme.example", password: "demo") { token } }'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(admin_url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{DATABASE}" + (f"?{query}" if query else "")
    await asyncio.to_thread(upgrade, url)
    db = Database(url, pool_size=2)
    try:
        await seed(db, "small", reset=True)
    finally:
        await db.dispose()
    return url


async def subscriber(url: str, token: str, received: list[int], ready: asyncio.Event) -> None:
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}}))
        async for raw in ws:
            if json.loads(raw)["type"] == "next":
                received[0] += 1
                ready.set()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def round_of(
    app: Any, port: int, token: str, n: int, rate: float, seconds: float
) -> dict[str, Any]:
    services = app.state.services
    hub = services.hub
    ws_url = f"ws://127.0.0.1:{port}/graphql"
    counters = [[0] for _ in range(n)]
    readies = [asyncio.Event() for _ in range(n)]
    clients = [
        asyncio.create_task(subscriber(ws_url, token, c, r))
        for c, r in zip(counters, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    firsts = sum(c[0] for c in counters)
    recomputes, cpu, started = hub.stats.recomputes, cpu_seconds(), time.perf_counter()
    simulator = Simulator(services.db, services.pubsub, rate=rate, seed=1, call_seconds=5)
    await simulator.run(seconds)
    await asyncio.sleep(hub.tick_seconds * 2)  # the last tick's snapshots
    elapsed = time.perf_counter() - started
    delivered = sum(c[0] for c in counters) - firsts
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    return {
        "subscribers": n,
        "writes": sum(simulator.done.values()),
        "recomputes": hub.stats.recomputes - recomputes,
        "snapshots_delivered": delivered,
        "per_subscriber": delivered / n,
        "cpu_s": cpu_seconds() - cpu,
        "seconds": elapsed,
    }


async def main(args: argparse.Namespace) -> None:
    admin = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = await prepare(admin)
    settings = Settings(
        database_url=url,
        jwt_secret="bench-jwt-secret-0123456789abcdefghij",
        secret_key="bench-secret-key-0123456789abcdefghij",
        run_workers=False,
        rate_limit_subscription="100000/minute",
        max_subscriptions_per_connection=5,
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOGIN})
        token = reply.json()["data"]["login"]["token"]
    tick = settings.live_tick_seconds
    print(f"tick {tick}s, simulator {args.rate} writes/s, {args.seconds}s per round")
    print("subscribers  writes  recomputes  snapshots  per-subscriber  cpu-s")
    for n in args.subscribers:
        r = await round_of(app, port, token, n, args.rate, args.seconds)
        print(
            f"{r['subscribers']:>11}  {r['writes']:>6}  {r['recomputes']:>10}  "
            f"{r['snapshots_delivered']:>9}  {r['per_subscriber']:>14.1f}  {r['cpu_s']:>5.1f}"
        )
    server.should_exit = True
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 50, 250])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
