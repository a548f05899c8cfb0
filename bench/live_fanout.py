"""Benchmark: live-metrics fan-out. N WebSocket subscribers of `liveMetrics` on one workspace,
one server process, one write per second; database work must follow the number of groups,
not of subscribers.

    DASHGRAPH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/live_fanout.py --subscribers 10 1000 10000

The URL is an admin connection: the benchmark (re)creates `dashgraph_bench_live` next to it
and seeds `small` (`--reuse` keeps an existing one). The server is its own process: uvicorn
serving `app.main:create_app` with the uvicorn settings `dashgraph serve` uses, plus
bench-only routes: `/bench/stats` (the SQL statements that process executed, counted by a
SQLAlchemy cursor hook; the live hub's counters; time in the garbage collector),
`/bench/profile` (`--profile PATH`: cProfile over the writes) and `/bench/objects`
(`--objects`). Experiments: BENCH_DEFLATE=1 serves permessage-deflate (uvicorn's default,
off in `dashgraph serve`), BENCH_GC_THRESHOLD=a,b,c overrides the server's gc thresholds,
`--no-deflate` makes the clients not offer it. Subscribers live in
`--clients` other processes: raw graphql-transport-ws clients on the sans-I/O protocol of
the `websockets` library (no task per socket), each recording when every `next` message
arrived. For each N, once every subscriber has its
first snapshot, a writer creates one lead a second through the HTTP `createLead` mutation
(`--writes` times) and keeps the lead's `createdAt` (set inside the write's transaction,
before its commit: latencies measured from it are upper bounds). Reported per N:

- freshness: write -> the subscriber receives the first snapshot whose `totalLeads` counts it
  (p50 / p99 over every subscriber and write);
- fan-out: the snapshot's `generatedAt` (the tick's recompute) -> the subscriber receives it;
- SQL statements the server executed per tick (everything: the writer's mutation included),
  transactions of the bench database per tick (pg_stat_database), the hub's recomputes
  (one statement each), and the server's CPU (psutil, % of one core) over the writes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

DATABASE = "dashgraph_bench_live"
LIVE = (
    "subscription { liveMetrics { totalLeads newLeadsToday activeCalls callsToday "
    "conversionRate averageScore revenueToday creditsConsumedToday generatedAt } }"
)
LOGIN = 'mutation { login(email: "admin@acme.example", password: "demo") { token } }'
CREATE = (
    "mutation($name: String!) { createLead(input: {name: $name, source: WEBSITE}) "
    "{ id createdAt } }"
)
SECRETS = {
    "DASHGRAPH_JWT_SECRET": "bench-jwt-secret-0123456789abcdefghij",
    "DASHGRAPH_SECRET_KEY": "bench-secret-key-0123456789abcdefghij",
}


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------- server process


def serve(port: int) -> None:
    """The server: `dashgraph serve`'s uvicorn settings, plus a stats route for the bench."""
    import sqlalchemy as sa
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from app.main import create_app

    raise_fd_limit()
    statements = [0]

    @sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        statements[0] += 1

    app = create_app()
    if os.environ.get("BENCH_GC_THRESHOLD"):  # an experiment: (gen0, gen1, gen2) thresholds
        gc.set_threshold(*map(int, os.environ["BENCH_GC_THRESHOLD"].split(",")))
    gc_seconds = [0.0, 0.0, 0.0, 0.0]  # per generation, then the start of the current one
    gc_counts = [0, 0, 0]

    def gc_timer(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_seconds[3] = time.perf_counter()
        else:
            gc_seconds[info["generation"]] += time.perf_counter() - gc_seconds[3]
            gc_counts[info["generation"]] += 1

    gc.callbacks.append(gc_timer)

    async def stats(request: Request) -> JSONResponse:
        hub = app.state.services.hub
        return JSONResponse(
            {
                "statements": statements[0],
                "recomputes": hub.stats.recomputes,
                "snapshots_sent": hub.stats.snapshots_sent,
                "snapshots_dropped": hub.stats.snapshots_dropped,
                "events": hub.stats.events_received,
                "subscribers": hub.subscriber_count,
                "connections": len(hub.connections),
                "gc_seconds": sum(gc_seconds[:3]),
                "gc2_seconds": gc_seconds[2],
                "gc2_count": gc_counts[2],
            }
        )

    profiler: list[Any] = []

    async def profile(request: Request) -> JSONResponse:
        """POST starts cProfile in the server, DELETE stops it and dumps to ?to=<path>."""
        import cProfile

        if request.method == "POST":
            profiler.append(cProfile.Profile())
            profiler[0].enable()
        elif profiler:
            profiler[0].disable()
            profiler.pop().dump_stats(request.query_params["to"])
        return JSONResponse({})

    async def objects(request: Request) -> JSONResponse:
        """What the garbage collector tracks, by type (the 25 most common)."""
        counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        return JSONResponse({"total": counts.total(), "top": counts.most_common(25)})

    app.add_route("/bench/stats", stats)
    app.add_route("/bench/objects", objects)
    app.add_route("/bench/profile", profile, methods=["POST", "DELETE"])
    uvicorn.run(  # as `dashgraph serve` runs it (app/cli.py)
        app,
        host="127.0.0.1",
        port=port,
        timeout_graceful_shutdown=15,
        ws_per_message_deflate=os.environ.get("BENCH_DEFLATE") == "1",
        log_level="warning",
    )


# ---------------------------------------------------------------- client processes


class _Subscriber(asyncio.Protocol):
    """One graphql-transport-ws subscriber on websockets' sans-I/O client protocol: no task
    per connection, each frame handled in `data_received` (the clients share the server's
    two cores, so they must cost little: a task per socket with the `websockets` asyncio
    client cost ~3x the CPU per message). `inbox` gets (arrival time, message text)."""

    def __init__(self, url: str, token: str, deflate: bool, gate: asyncio.Semaphore) -> None:
        from websockets.client import ClientProtocol
        from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
        from websockets.typing import Subprotocol
        from websockets.uri import parse_uri

        self.ws = ClientProtocol(
            parse_uri(url),
            subprotocols=[Subprotocol("graphql-transport-ws")],
            extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
            max_size=None,
        )
        self.token = token
        self.gate = gate
        self.inbox: list[tuple[float, str]] = []
        self.ready = asyncio.get_running_loop().create_future()  # the first `next`
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response

        at = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):  # handshake done: init and subscribe at once
                self.gate.release()
                init = {
                    "type": "connection_init",
                    "payload": {"Authorization": f"Bearer {self.token}"},
                }
                subscribe = {"id": "1", "type": "subscribe", "payload": {"query": LIVE}}
                self.ws.send_text(json.dumps(init).encode())
                self.ws.send_text(json.dumps(subscribe).encode())
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                text = event.data.decode()
                self.inbox.append((at, text))
                if not self.ready.done() and '"next"' in text:
                    self.ready.set_result(None)
        self._flush()  # pongs, and what was sent above

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the first snapshot: {exc}"))

    def _flush(self) -> None:
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)


async def _clients(url: str, token: str, n: int, deflate: bool, conn: Any) -> None:
    from websockets.uri import parse_uri

    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    gate = asyncio.Semaphore(100)  # handshakes in flight
    subscribers: list[_Subscriber] = []
    try:
        for _ in range(n):
            await gate.acquire()  # released by the handshake's response
            subscriber = _Subscriber(url, token, deflate, gate)
            await loop.create_connection(lambda s=subscriber: s, uri.host, uri.port)
            subscribers.append(subscriber)
        await asyncio.wait_for(asyncio.gather(*(s.ready for s in subscribers)), 300)
    except Exception as exc:
        conn.send(("failed", repr(exc)))
        return
    conn.send(("ready", n))
    writes = await loop.run_in_executor(None, conn.recv)  # [(total leads after, write time)]
    for subscriber in subscribers:
        subscriber.transport.close()
    fresh: list[float] = []
    fanout: list[float] = []
    missed = 0
    for subscriber in subscribers:
        seen: list[tuple[int, float]] = []
        for at, raw in subscriber.inbox:
            message = json.loads(raw)
            if message.get("type") != "next":
                continue
            metrics = message["payload"]["data"]["liveMetrics"]
            if seen:  # the first snapshot answers the subscribe, not a tick
                fanout.append(at - timestamp(metrics["generatedAt"]))
            seen.append((metrics["totalLeads"], at))
        for total, wrote in writes:
            first = next((at for count, at in seen if count >= total), None)
            if first is None:
                missed += 1
            else:
                fresh.append(first - wrote)
    conn.send((fresh, fanout, missed))


def client_process(url: str, token: str, n: int, deflate: bool, conn: Any) -> None:
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_clients(url, token, n, deflate, conn))


# ---------------------------------------------------------------- driver


async def prepare(admin_url: str, reuse: bool) -> str:
    import asyncpg

    from models.db import Database
    from models.migrate import upgrade
    from models.seed import seed

    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{DATABASE}" + (f"?{query}" if query else "")
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if reuse and exists:
            return url
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, url)
    db = Database(url, pool_size=2)
    try:
        await seed(db, "small", reset=True)
    finally:
        await db.dispose()
    return url


async def xacts(admin_url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
                DATABASE,
            )
        )
    finally:
        await conn.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def round_of(
    args: argparse.Namespace, admin: str, base: str, token: str, n: int, server: Any
) -> dict[str, Any]:
    import httpx
    import psutil

    ctx = mp.get_context("spawn")
    shares = [n // args.clients + (i < n % args.clients) for i in range(args.clients)]
    pipes, procs = [], []
    for share in shares:
        if not share:
            continue
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=client_process,
            args=(base.replace("http", "ws") + "/graphql", token, share, args.deflate, theirs),
        )
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    for pipe in pipes:
        state, detail = await loop.run_in_executor(None, pipe.recv)
        if state != "ready":
            raise RuntimeError(f"a client process failed: {detail}")
    connect_s = time.perf_counter() - started
    await asyncio.sleep(args.settle)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        before = (await http.get("/bench/stats")).json()
        if args.objects:
            print((await http.get("/bench/objects")).json(), flush=True)
        clients = [psutil.Process(p.pid) for p in procs]
        c0 = [c.cpu_times() for c in clients]
        x0, cpu0, t0 = await xacts(admin), server.cpu_times(), time.perf_counter()
        writes: list[tuple[int, float]] = []
        if args.profile:
            await http.post("/bench/profile")
        rng = random.Random(n)
        second = time.perf_counter()
        for i in range(args.writes):
            # one write a second, at a random moment of it: not in step with the ticks
            second += 1.0
            await asyncio.sleep(max(0.0, second - 1.0 + rng.random() - time.perf_counter()))
            reply = await http.post(
                "/graphql", json={"query": CREATE, "variables": {"name": f"fanout {n} {i}"}}
            )
            created = reply.json()["data"]["createLead"]
            writes.append((i + 1, timestamp(created["createdAt"])))
        await asyncio.sleep(max(0.0, second - time.perf_counter()) + args.settle)
        if args.profile:
            await http.request("DELETE", "/bench/profile", params={"to": f"{args.profile}.{n}"})
        x1, cpu1, t1 = await xacts(admin), server.cpu_times(), time.perf_counter()
        c1 = [c.cpu_times() for c in clients]
        after = (await http.get("/bench/stats")).json()
    stats = {
        key: after[key] - before[key]
        for key in (
            "statements",
            "recomputes",
            "events",
            "gc_seconds",
            "gc2_seconds",
            "gc2_count",
            "snapshots_sent",
        )
    }
    ticks = (t1 - t0) / args.tick
    return {
        "n": n,
        "procs": procs,
        "pipes": pipes,
        "writes": writes,
        "connect_s": connect_s,
        "ticks": ticks,
        "stats": stats,
        "xacts": x1 - x0,
        "cpu": ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0) * 100,
        "cpu_system": (cpu1.system - cpu0.system) / (t1 - t0) * 100,
        "client_cpu": [
            round(((b.user + b.system) - (a.user + a.system)) / (t1 - t0) * 100)
            for a, b in zip(c0, c1, strict=True)
        ],
    }


async def finish(result: dict[str, Any], base_total: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    writes = [(base_total + i, at) for i, at in result["writes"]]
    fresh: list[float] = []
    fanout: list[float] = []
    missed = 0
    for pipe in result["pipes"]:
        pipe.send(writes)
    for pipe in result["pipes"]:
        f, o, m = await loop.run_in_executor(None, pipe.recv)
        fresh += f
        fanout += o
        missed += m
    for proc in result["procs"]:
        await loop.run_in_executor(None, proc.join)
    return {"fresh": fresh, "fanout": fanout, "missed": missed}


async def main(args: argparse.Namespace) -> None:
    import httpx
    import psutil

    print(f"fd limit {raise_fd_limit()}, {os.cpu_count()} CPUs", flush=True)
    admin = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = await prepare(admin, args.reuse)
    port = free_port()
    env = {
        **os.environ,
        **SECRETS,
        "DASHGRAPH_DATABASE_URL": url,
        "DASHGRAPH_RUN_WORKERS": "false",
        "DASHGRAPH_LIVE_TICK_SECONDS": str(args.tick),
        # one viewer opens all N subscriptions: its per-minute subscription limit goes up
        "DASHGRAPH_RATE_LIMIT_SUBSCRIPTION": "1000000/minute",
        "DASHGRAPH_RATE_LIMIT_MUTATION": "100000/minute",
    }
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            token = (await http.post("/graphql", json={"query": LOGIN})).json()["data"]["login"][
                "token"
            ]
        proc = psutil.Process(server.pid)
        print(
            f"server pid {server.pid}; tick {args.tick}s; {args.writes} writes at 1/s per N; "
            f"{args.clients} client processes",
            flush=True,
        )
        header = (
            "subscribers  connect-s  fresh-p50  fresh-p99  fanout-p50  fanout-p99  missed  "
            "stmts/tick  xacts/tick  recomputes/tick  server-cpu"
        )
        rows = []
        for n in args.subscribers:
            result = await round_of(args, admin, base, token, n, proc)
            base_total = await first_total(url, f"fanout {n} 0", len(result["writes"]))
            done = await finish(result, base_total)
            fresh, fanout = done["fresh"], done["fanout"]
            ticks = result["ticks"]
            row = (
                f"{n:>11,}  {result['connect_s']:>9.1f}  {pct(fresh, 0.5) * 1000:>7.0f}ms  "
                f"{pct(fresh, 0.99) * 1000:>7.0f}ms  {pct(fanout, 0.5) * 1000:>8.0f}ms  "
                f"{pct(fanout, 0.99) * 1000:>8.0f}ms  {done['missed']:>6}  "
                f"{result['stats']['statements'] / ticks:>10.2f}  "
                f"{result['xacts'] / ticks:>10.2f}  "
                f"{result['stats']['recomputes'] / ticks:>15.2f}  {result['cpu']:>9.0f}%"
            )
            rows.append(row)
            print(header, row, sep="\n", flush=True)
            if args.verbose:
                print(
                    f"  fresh mean {statistics.fmean(fresh) * 1000:.0f}ms max "
                    f"{max(fresh) * 1000:.0f}ms; fanout max {max(fanout) * 1000:.0f}ms; "
                    f"{result['stats']}, {result['xacts']} xacts, {ticks:.1f} ticks, "
                    f"server CPU% in the kernel {result['cpu_system']:.0f}, "
                    f"client CPU% {result['client_cpu']}",
                    flush=True,
                )
            await asyncio.sleep(2)
        print("\n" + header, *rows, sep="\n")
    finally:
        server.terminate()
        server.wait(30)


async def first_total(url: str, first: str, writes: int) -> int:
    """Leads of the workspace before the round's first write: the writes are the only writers,
    so write i (from 1) is counted by a snapshot whose totalLeads >= this + i."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        now = await conn.fetchval(
            "SELECT count(*) FROM lead WHERE workspace_id = "
            "(SELECT workspace_id FROM lead WHERE name = $1 LIMIT 1)",
            first,
        )
    finally:
        await conn.close()
    return int(now) - writes


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--writes", type=int, default=30, help="one a second, per N")
    parser.add_argument("--clients", type=int, default=2, help="subscriber processes")
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before/after writes")
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database")
    parser.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="clients do not offer permessage-deflate (browsers do)",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--objects", action="store_true", help="the server's gc-tracked objects")
    parser.add_argument("--profile", help="cProfile the server over the writes: <path>.<N>")
    asyncio.run(main(parser.parse_args()))
