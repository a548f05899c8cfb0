"""The demo simulator on real Postgres: what it writes, what it publishes, that it stops
cleanly; and `dashgraph simulate` as a user runs it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import pytest
from redis import asyncio as redis

from app.pubsub import ChangeEvent, PubSub, channel
from app.simulate import Simulator, run_simulator
from models import interactions
from models.db import Database
from models.interactions import Outcome
from models.leads import LeadStage
from models.live import live_metrics
from tests.conftest import free_port, on_database

T = TypeVar("T")

TABLES = {"lead": "lead", "interaction": "interaction", "payment": "payment"}
STAGE_ORDER = {stage.value: n for n, stage in enumerate(LeadStage)}  # LOST last: an end too
COUNTS = """
SELECT (SELECT count(*) FROM lead) AS lead, (SELECT count(*) FROM lead_event) AS lead_event,
       (SELECT count(*) FROM interaction) AS interaction, (SELECT count(*) FROM payment) AS payment
"""
# the newest id of each table: rows written later have greater ones (identity columns)
MARKS = """
SELECT (SELECT max(id) FROM lead) AS lead, (SELECT max(id) FROM lead_event) AS lead_event,
       (SELECT max(id) FROM interaction) AS interaction, (SELECT max(id) FROM payment) AS payment
"""


def cli_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `dashgraph` run against the test database, and nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHGRAPH_")}
    return env | {
        "DASHGRAPH_DATABASE_URL": database_url,
        "DASHGRAPH_JWT_SECRET": "test-jwt-secret-0123456789abcdef",
        "DASHGRAPH_SECRET_KEY": "test-secret-key-0123456789abcdef",
        **{f"DASHGRAPH_{k.upper()}": v for k, v in settings.items()},
    }


@contextlib.asynccontextmanager
async def listening(
    pubsub: PubSub, workspace_ids: list[int], into: list[tuple[int, ChangeEvent]]
) -> AsyncIterator[None]:
    """Collect every change event published on the workspaces' channels, as (channel, event)."""

    async def listen(workspace_id: int, ready: asyncio.Event) -> None:
        async with pubsub.broadcast.subscribe(channel(workspace_id)) as subscriber:
            ready.set()
            while True:
                event = await subscriber.get()
                into.append((workspace_id, ChangeEvent.decode(event.message)))

    ready = [asyncio.Event() for _ in workspace_ids]
    tasks = [asyncio.create_task(listen(w, r)) for w, r in zip(workspace_ids, ready, strict=True)]
    await asyncio.gather(*(r.wait() for r in ready))
    try:
        yield
    finally:
        await asyncio.sleep(0.1)  # the memory backend delivers on the next loop turns
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def workspaces(sql_session: Any) -> dict[str, int]:
    return {r["slug"]: r["id"] for r in sql_session("SELECT slug, id FROM workspace")}


def test_simulated_activity_is_real_consistent_and_published(
    database_url: str, sql: Any, workspaces: dict[str, int]
) -> None:
    # given the seeded demo database and a subscriber on every workspace's channel
    before = dict(sql(COUNTS)[0])
    mark = dict(sql(MARKS)[0])
    acme = workspaces["acme"]
    events: list[tuple[int, ChangeEvent]] = []

    async def scenario(db: Database) -> tuple[Simulator, Any, Any]:
        pubsub = PubSub("memory://")
        await pubsub.connect()
        try:
            async with db.session() as session:
                metrics_before = await live_metrics(session, acme)
            async with listening(pubsub, list(workspaces.values()), events):
                # when the simulator runs for two seconds at a high rate, with short calls
                simulator = Simulator(db, pubsub, rate=60, seed=11, call_seconds=0.3)
                task = asyncio.create_task(simulator.run())
                await asyncio.sleep(2)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            async with db.session() as session:
                metrics_after = await live_metrics(session, acme)
            return simulator, metrics_before, metrics_after
        finally:
            await pubsub.disconnect()

    simulator, metrics_before, metrics_after = on_database(database_url, scenario)
    done = simulator.done
    after = dict(sql(COUNTS)[0])

    # then every kind of activity happened, and the rows are really there
    assert set(done) == {"new_lead", "advance_lead", "start_call", "end_call", "ai_run", "payment"}
    assert after["lead"] - before["lead"] == done["new_lead"]
    # a new lead and a stage change each write one lead event; a call writes its CALL event
    assert after["lead_event"] - before["lead_event"] == (
        done["new_lead"] + done["advance_lead"] + done["start_call"]
    )
    assert after["interaction"] - before["interaction"] == done["start_call"] + done["ai_run"]
    assert after["payment"] - before["payment"] == done["payment"]
    assert simulator.failed == 0

    # every write was published once, on its own workspace's channel, naming rows that exist
    assert len(events) == sum(done.values())
    assert all(heard == event.workspace_id for heard, event in events)
    for kind, table in TABLES.items():
        for workspace_id in workspaces.values():
            ids = {
                int(i)
                for _, e in events
                if e.kind == kind and e.workspace_id == workspace_id
                for i in e.ids
            }
            found = sql(
                f"SELECT id FROM {table} WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
                workspace_id,
                sorted(ids),
            )
            assert {r["id"] for r in found} == ids, (kind, workspace_id)
    assert {e.kind for _, e in events} == set(TABLES)
    # most of it in the demo workspace
    per_workspace = {
        w: sum(1 for _, e in events if e.workspace_id == w) for w in workspaces.values()
    }
    assert max(per_workspace, key=per_workspace.__getitem__) == acme

    # stage changes only move forward, recorded as STAGE_CHANGE events that match the leads
    moves = sql(
        "SELECT e.from_stage, e.to_stage, l.stage, l.converted_at, e.lead_id, e.note "
        "FROM lead_event e JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id "
        "WHERE e.type = 'STAGE_CHANGE' AND e.id > $1",
        mark["lead_event"],
    )
    assert len(moves) == done["advance_lead"] > 0
    for move in moves:
        assert move["from_stage"] not in ("WON", "LOST")
        assert STAGE_ORDER[move["to_stage"]] > STAGE_ORDER[move["from_stage"]], dict(move)
        assert (move["to_stage"] == "LOST") == (move["note"] is not None)
    (stale,) = sql(
        "SELECT count(*) AS n FROM lead l JOIN LATERAL (SELECT to_stage FROM lead_event e "
        "WHERE e.workspace_id = l.workspace_id AND e.lead_id = l.id "
        "AND e.type IN ('CREATED', 'STAGE_CHANGE') ORDER BY occurred_at DESC, id DESC LIMIT 1) s "
        "ON true WHERE l.id = ANY($1::bigint[]) "
        "AND (s.to_stage <> l.stage OR (l.stage = 'WON') <> (l.converted_at IS NOT NULL))",
        [m["lead_id"] for m in moves],
    )
    assert stale["n"] == 0

    # every call started was ended, and took the time it took
    calls = sql(
        "SELECT i.status, i.outcome, i.error, i.started_at, i.ended_at, i.duration_seconds, "
        "i.credits, a.kind "
        "FROM interaction i JOIN agent a ON a.workspace_id = i.workspace_id AND a.id = i.agent_id "
        "WHERE i.channel = 'CALL' AND i.id > $1",
        mark["interaction"],
    )
    assert len(calls) == done["start_call"] == done["end_call"] > 0
    assert not simulator.calls
    for call in calls:
        assert call["status"] in ("COMPLETED", "FAILED")
        assert (
            (call["status"] == "FAILED") == (call["outcome"] is None) == (call["error"] is not None)
        )
        assert call["ended_at"] >= call["started_at"]
        assert call["duration_seconds"] is not None
        assert (call["credits"] > 0) == (call["kind"] == "AI")

    # nothing crosses a tenant: agents, leads and subscriptions are of the row's workspace
    (crossed,) = sql(
        """
        SELECT
          (SELECT count(*) FROM interaction i WHERE i.id > $1 AND (
             (i.agent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agent a
                WHERE a.workspace_id = i.workspace_id AND a.id = i.agent_id))
             OR (i.lead_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM lead l
                WHERE l.workspace_id = i.workspace_id AND l.id = i.lead_id))
             OR (i.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM membership m
                WHERE m.workspace_id = i.workspace_id AND m.user_id = i.user_id))))
          + (SELECT count(*) FROM payment p WHERE p.id > $2 AND NOT EXISTS (
             SELECT 1 FROM billing_subscription s
             WHERE s.workspace_id = p.workspace_id AND s.id = p.subscription_id))
          + (SELECT count(*) FROM lead l WHERE l.id > $3 AND NOT EXISTS (
             SELECT 1 FROM membership m
             WHERE m.workspace_id = l.workspace_id AND m.user_id = l.owner_id
               AND m.role = 'ADMIN')) AS n
        """,
        mark["interaction"],
        mark["payment"],
        mark["lead"],
    )
    assert crossed["n"] == 0

    # and the demo workspace's live metrics moved with it
    (new_in_acme,) = sql(
        "SELECT count(*) AS n FROM lead WHERE workspace_id = $1 AND id > $2", acme, mark["lead"]
    )
    assert metrics_after.total_leads - metrics_before.total_leads == new_in_acme["n"] > 0
    assert metrics_after.new_leads_today - metrics_before.new_leads_today == new_in_acme["n"]
    assert metrics_after.calls_today > metrics_before.calls_today
    assert metrics_after.active_calls == metrics_before.active_calls  # all hung up again


def test_cancelling_the_server_task_hangs_up_its_calls(database_url: str, sql: Any) -> None:
    # given the simulator as the server's lifespan runs it, with calls that last minutes
    mark = dict(sql(MARKS)[0])

    async def scenario(db: Database) -> BaseException | None:
        pubsub = PubSub("memory://")
        await pubsub.connect()
        try:
            task = asyncio.create_task(run_simulator(db, pubsub, 40, seed=5))
            await asyncio.sleep(1)
            # when the server shuts down
            task.cancel()
            try:
                await task
            except BaseException as exc:  # noqa: B036 - what the lifespan would see
                return exc
            return None
        finally:
            await pubsub.disconnect()

    stopped_with = on_database(database_url, scenario)

    # then the cancellation reached the caller, and no call it started is left ACTIVE
    assert isinstance(stopped_with, asyncio.CancelledError)
    calls = sql(
        "SELECT status, count(*) AS n FROM interaction "
        "WHERE channel = 'CALL' AND id > $1 GROUP BY status",
        mark["interaction"],
    )
    statuses = {r["status"]: r["n"] for r in calls}
    assert statuses and "ACTIVE" not in statuses


def test_a_refused_action_is_counted_and_the_simulation_goes_on(
    database_url: str, sql: Any
) -> None:
    # given a call the simulator started that someone else ends before it is due
    async def scenario(db: Database) -> tuple[Simulator, int]:
        pubsub = PubSub("memory://")
        await pubsub.connect()
        try:
            simulator = Simulator(db, pubsub, rate=1, seed=3, call_seconds=0.05)
            simulator.tenants = await simulator._tenants()
            acme = next(t for t in simulator.tenants if t.slug == "acme")
            await simulator._act("start_call", acme, lambda s: simulator._start_call(s, acme))
            (call,) = simulator.calls.values()
            async with db.transaction() as session:
                await interactions.end_call(
                    session, acme.scope, call.interaction_id, outcome=Outcome.RESOLVED
                )
            await asyncio.sleep(0.3)
            # when its turn comes to end it, and then the next steps
            for _ in range(3):
                await simulator.step()
            await simulator.hang_up()
            return simulator, call.interaction_id
        finally:
            await pubsub.disconnect()

    simulator, ended_elsewhere = on_database(database_url, scenario)

    # then the refusal is counted, the call forgotten, and the following actions happened
    assert simulator.refused == {"end_call": 1}
    assert ended_elsewhere not in simulator.calls
    assert sum(simulator.done.values()) >= 3  # the start, and the two steps after the refusal
    (status,) = sql("SELECT status, outcome FROM interaction WHERE id = $1", ended_elsewhere)
    assert (status["status"], status["outcome"]) == ("COMPLETED", "RESOLVED")  # left as ended


def test_an_unreachable_database_is_retried_not_fatal() -> None:
    # given a database nobody listens for
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"

    async def scenario(db: Database) -> Simulator:
        pubsub = PubSub("memory://")
        await pubsub.connect()
        try:
            simulator = Simulator(db, pubsub, rate=20, seed=1)
            # when the simulator runs against it, then it keeps trying until its time is up
            await asyncio.wait_for(simulator.run(duration=1.5), 10)
            return simulator
        finally:
            await pubsub.disconnect()

    simulator = on_database(url, scenario)
    assert simulator.failed >= 1 and not simulator.done


def test_cli_simulate_writes_activity_and_exits(database_url: str, sql: Any) -> None:
    before = dict(sql(COUNTS)[0])
    mark = dict(sql(MARKS)[0])
    env = cli_env(database_url)
    # seed 4: the first action is a new lead in Acme, so the run always leaves one
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "simulate",
            "--duration",
            "2",
            "--rate",
            "5",
            "--seed",
            "4",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DASHGRAPH_BROADCAST_URL" in result.stdout  # memory:// reaches no other process
    assert "simulated: " in result.stdout and "new_lead" in result.stdout
    after = dict(sql(COUNTS)[0])
    assert after["lead"] > before["lead"]
    assert after["lead_event"] > before["lead_event"]
    (active,) = sql(
        "SELECT count(*) AS n FROM interaction WHERE channel = 'CALL' AND status = 'ACTIVE' "
        "AND id > $1",
        mark["interaction"],
    )
    assert active["n"] == 0  # it hung up before exiting


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A private redis-server on a port of its own, stopped afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert process.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_simulate_reaches_other_processes_over_redis(
    database_url: str, sql: Any, workspaces: dict[str, int], redis_url: str
) -> None:
    # given a process subscribed to the demo workspace's channel on Redis (as a server would be)
    acme = workspaces["acme"]
    env = cli_env(database_url, broadcast_url=redis_url)
    heard: list[ChangeEvent] = []

    async def scenario() -> tuple[int | None, str]:
        # a plain Redis subscriber: whatever listens on `ws.<id>` in another process
        client = redis.Redis.from_url(redis_url)
        subscription = client.pubsub()
        await subscription.subscribe(channel(acme))
        try:

            async def collect() -> None:
                while True:
                    message = await subscription.get_message(
                        ignore_subscribe_messages=True, timeout=1.0
                    )
                    if message is not None:
                        heard.append(ChangeEvent.decode(message["data"].decode()))

            collector = asyncio.create_task(collect())
            # when `dashgraph simulate` runs in another process
            process = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "app.cli", "simulate"],
                *["--duration", "2", "--rate", "10", "--seed", "4"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), 120)
            await asyncio.sleep(0.3)
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
            return process.returncode, output.decode()
        finally:
            await subscription.aclose()
            await client.aclose()

    returncode, output = asyncio.run(scenario())

    # then its change events arrive here, and name rows it wrote
    assert returncode == 0, output
    assert "memory://" not in output
    assert heard and all(e.workspace_id == acme for e in heard)
    leads = {int(i) for e in heard if e.kind == "lead" for i in e.ids}
    assert leads, heard  # seed 4 starts with a new lead in Acme
    found = sql(
        "SELECT id FROM lead WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
        acme,
        sorted(leads),
    )
    assert {r["id"] for r in found} == leads


@pytest.mark.parametrize("argv", [["--rate", "0"], ["--rate", "-1"], ["--duration", "nan"]])
def test_cli_simulate_refuses_a_rate_or_duration_that_is_not_positive(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "simulate", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "must be a positive number" in result.stderr
