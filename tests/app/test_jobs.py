"""The job queue and its workers on real Postgres: claims, leases, failures, cancel, `job(id)`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from app.jobs import Handler, JobCancelled, JobRun, Worker
from app.main import create_app
from models import jobs as queue
from models.db import Database
from models.errors import ModelTrainingFailed
from models.jobs import Job, JobStatus
from models.scope import Scope
from tests.client import Persona, login
from tests.conftest import DEMO_EMAILS, ServerThread, on_database, settings_for

T = TypeVar("T")

JOB = """
query Job($id: ID!, $workspaceId: ID) {
  job(id: $id, workspaceId: $workspaceId) {
    id kind status progress stage error result createdAt finishedAt
  }
}
"""
CANCEL_JOB = """
mutation CancelJob($id: ID!) { cancelJob(id: $id) { id status finishedAt } }
"""


# --- helpers ------------------------------------------------------------------------------


def unique_kind(name: str) -> str:
    """A kind no other test (or the shared server's workers) will ever claim."""
    return f"test.{name}.{uuid.uuid4().hex[:8]}"


async def enqueue(db: Database, scope: Scope, kind: str, payload: Any = None, **kw: Any) -> int:
    async with db.transaction() as session:
        job = await queue.enqueue(session, scope, kind, payload, **kw)
    assert job.id is not None
    return job.id


async def fetch_job(db: Database, job_id: int) -> dict[str, Any]:
    """The row as Postgres has it, read past every scope rule."""
    async with db.session() as session:
        result = await session.execute(sa.text("SELECT * FROM job WHERE id = :id"), {"id": job_id})
        return dict(result.mappings().one())


async def lease_expired(db: Database, job_id: int) -> bool:
    async with db.session() as session:
        query = sa.text("SELECT lease_expires_at < now() FROM job WHERE id = :id")
        return bool((await session.execute(query, {"id": job_id})).scalar_one())


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def eventually(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    """Poll `probe` until it returns something truthy (the thread-side twin of `until`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


async def claim_dead(db: Database, kind: str, worker_id: str, lease: float) -> Job:
    """A worker that claims a job and then dies: it never renews and never finishes."""
    async with db.transaction() as session:
        job = await queue.claim(session, worker_id, [kind], timedelta(seconds=lease))
    assert job is not None
    return job


@pytest.fixture(scope="module")
def admin(scopes: dict[str, Scope]) -> Scope:
    return scopes["admin@acme.example"]


# --- claims -------------------------------------------------------------------------------


def test_concurrent_claimers_never_take_the_same_job(database_url: str, admin: Scope) -> None:
    kind = unique_kind("claim")
    claimers = 4

    async def scenario(db: Database) -> tuple[list[int], list[list[int]], list[dict[str, Any]]]:
        ids = [await enqueue(db, admin, kind, {"n": n}) for n in range(12)]
        # every claimer holds its first row lock until all of them have claimed once: a claim
        # that waited on a locked row instead of skipping it would deadlock here
        barrier = asyncio.Barrier(claimers)

        async def claimer(name: str) -> list[int]:
            got: list[int] = []
            while True:
                async with db.transaction() as session:
                    job = await queue.claim(session, name, [kind], timedelta(seconds=30))
                    if not got:
                        await barrier.wait()
                    if job is None:
                        return got
                    assert job.id is not None
                    got.append(job.id)

        names = [f"claimer-{n}" for n in range(claimers)]
        taken = await asyncio.wait_for(asyncio.gather(*(claimer(n) for n in names)), 10)
        return ids, taken, [await fetch_job(db, i) for i in ids]

    ids, taken, rows = on_database(database_url, scenario)

    claimed = [job_id for got in taken for job_id in got]
    assert sorted(claimed) == sorted(ids)  # each job exactly once
    assert all(taken), "every claimer got a job while the others held theirs"
    owner = {job_id: f"claimer-{n}" for n, got in enumerate(taken) for job_id in got}
    for row in rows:
        assert row["status"] == JobStatus.RUNNING
        assert row["lease_owner"] == owner[row["id"]]
        assert row["attempts"] == 1
        assert row["started_at"] is not None and row["lease_expires_at"] > row["started_at"]


def test_a_claim_takes_the_oldest_job_of_its_kinds_only(database_url: str, admin: Scope) -> None:
    mine, other = unique_kind("mine"), unique_kind("other")

    async def scenario(db: Database) -> tuple[list[int], list[int | None]]:
        await enqueue(db, admin, other)
        ids = [await enqueue(db, admin, mine) for _ in range(2)]
        got: list[int | None] = []
        for _ in range(3):
            async with db.transaction() as session:
                job = await queue.claim(session, "w", [mine], timedelta(seconds=30))
            got.append(job.id if job else None)
        return ids, got

    (first, second), got = on_database(database_url, scenario)
    assert got == [first, second, None]


# --- running --------------------------------------------------------------------------------


def test_worker_runs_a_job_to_success_with_progress_and_result(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("sum")
    seen: list[tuple[str, float, str | None]] = []

    async def scenario(db: Database) -> tuple[dict[str, Any], bool, bool]:
        async def add_up(run: JobRun) -> dict[str, Any]:
            assert run.job.id is not None
            numbers = run.job.payload["numbers"]
            total = 0
            for i, n in enumerate(numbers):
                await run.progress(i / len(numbers), f"adding {n}")
                row = await fetch_job(db, run.job.id)  # progress is in the table, mid-run
                seen.append((row["status"], row["progress"], row["stage"]))
                total += n
            return {"sum": total, "count": len(numbers)}

        job_id = await enqueue(db, admin, kind, {"numbers": [3, 4, 5, 6]})
        worker = Worker(db, None, {kind: add_up}, lease=timedelta(seconds=10))
        ran, idle = await worker.run_once(), await worker.run_once()
        return await fetch_job(db, job_id), ran, idle

    row, ran, idle = on_database(database_url, scenario)

    assert ran and not idle
    assert seen == [
        ("RUNNING", 0.0, "adding 3"),
        ("RUNNING", 0.25, "adding 4"),
        ("RUNNING", 0.5, "adding 5"),
        ("RUNNING", 0.75, "adding 6"),
    ]
    assert row["status"] == JobStatus.SUCCEEDED
    assert row["result"] == {"sum": 18, "count": 4}
    assert row["progress"] == 1.0  # finishing completes it, whatever the handler last said
    assert row["stage"] == "adding 6"
    assert row["error"] is None and row["attempts"] == 1
    assert row["finished_at"] is not None and row["finished_at"] >= row["started_at"]
    assert row["lease_owner"] is None and row["lease_expires_at"] is None


# --- leases -------------------------------------------------------------------------------


def test_a_dead_workers_job_is_claimed_again_after_its_lease_and_finished_once(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("lease")
    calls: list[tuple[int | None, int]] = []

    async def run_by_b(run: JobRun) -> dict[str, Any]:
        calls.append((run.job.id, run.job.attempts))
        return {"by": "B"}

    async def scenario(db: Database) -> dict[str, Any]:
        job_id = await enqueue(db, admin, kind)
        dead = await claim_dead(db, kind, "worker-A", lease=0.5)
        assert (dead.id, dead.attempts) == (job_id, 1)

        worker_b = Worker(db, None, {kind: run_by_b}, worker_id="worker-B")
        assert not await worker_b.run_once(), "A's lease still holds"
        await until(lambda: lease_expired(db, job_id))
        assert await worker_b.run_once()
        assert not await worker_b.run_once()
        after_b = await fetch_job(db, job_id)

        async with db.transaction() as session:
            late_beat = await queue.renew_lease(
                session, dead, "worker-A", timedelta(seconds=30), progress=0.5
            )
            late_finish = await queue.finish(
                session, dead, "worker-A", JobStatus.FAILED, error="A's late word"
            )
        assert late_beat is None and late_finish is None
        assert await fetch_job(db, job_id) == after_b  # A's late calls changed nothing
        return after_b

    row = on_database(database_url, scenario)

    assert calls == [(row["id"], 2)]
    assert row["status"] == JobStatus.SUCCEEDED
    assert row["attempts"] == 2
    assert row["result"] == {"by": "B"}
    assert row["error"] is None and row["lease_owner"] is None


def test_a_worker_that_lost_its_lease_stops_and_leaves_the_job_to_the_new_owner(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("stolen")
    started = asyncio.Event()
    outcome: list[str] = []

    async def endless(run: JobRun) -> dict[str, Any]:
        started.set()
        try:
            for step in range(400):  # ~10 s unless something stops it
                await run.progress(step / 400, f"step {step}")
                await asyncio.sleep(0.025)
        except (JobCancelled, asyncio.CancelledError):
            outcome.append("stopped")
            raise
        outcome.append("ran to the end")
        return {"by": "A"}

    async def scenario(db: Database) -> tuple[dict[str, Any], dict[str, Any]]:
        job_id = await enqueue(db, admin, kind)
        # a long lease: the heartbeat would not notice for 10 s, only the progress beats can
        worker_a = Worker(db, None, {kind: endless}, lease=timedelta(seconds=30))
        running = asyncio.create_task(worker_a.run_once())
        await asyncio.wait_for(started.wait(), 5)
        async with db.transaction() as session:
            # what worker B's claim does after A stalled past its lease
            await session.execute(
                sa.text(
                    "UPDATE job SET lease_owner = 'worker-B', attempts = attempts + 1, "
                    "lease_expires_at = now() + interval '30 seconds' WHERE id = :id"
                ),
                {"id": job_id},
            )
        stolen = await fetch_job(db, job_id)
        assert await asyncio.wait_for(running, 3)
        return stolen, await fetch_job(db, job_id)

    stolen, row = on_database(database_url, scenario)

    assert outcome == ["stopped"]
    assert row["status"] == JobStatus.RUNNING and row["lease_owner"] == "worker-B"
    assert row["attempts"] == 2 and row["result"] is None and row["finished_at"] is None
    assert row["progress"] == stolen["progress"]  # A wrote nothing after losing the job


def test_the_heartbeat_keeps_a_quiet_job_leased_past_its_lease_length(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("quiet")
    started = asyncio.Event()

    async def quiet(run: JobRun) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(1.2)  # never reports progress: only the heartbeat holds the lease
        return {"quiet": True}

    async def scenario(db: Database) -> tuple[dict[str, Any], list[bool]]:
        job_id = await enqueue(db, admin, kind)
        lease = timedelta(seconds=0.45)
        worker_a = Worker(db, None, {kind: quiet}, lease=lease, worker_id="worker-A")
        worker_b = Worker(db, None, {kind: quiet}, lease=lease, worker_id="worker-B")
        running = asyncio.create_task(worker_a.run_once())
        await asyncio.wait_for(started.wait(), 5)
        b_claimed = []
        while not running.done():
            b_claimed.append(await worker_b.run_once())
            await asyncio.sleep(0.05)
        assert running.result()
        return await fetch_job(db, job_id), b_claimed

    row, b_claimed = on_database(database_url, scenario)

    assert len(b_claimed) > 5 and not any(b_claimed)
    assert row["status"] == JobStatus.SUCCEEDED and row["result"] == {"quiet": True}
    assert row["attempts"] == 1


def test_the_heartbeat_stops_a_quiet_handler_when_a_cancel_comes_in(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("hush")
    started = asyncio.Event()
    outcome: list[str] = []

    async def quiet(run: JobRun) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append("stopped")
            raise
        return {"quiet": True}

    async def scenario(db: Database) -> dict[str, Any]:
        job_id = await enqueue(db, admin, kind)
        worker = Worker(db, None, {kind: quiet}, lease=timedelta(seconds=0.6))
        running = asyncio.create_task(worker.run_once())
        await asyncio.wait_for(started.wait(), 5)
        async with db.transaction() as session:
            await queue.request_cancel(session, admin, job_id)
        assert await asyncio.wait_for(running, 3)
        return await fetch_job(db, job_id)

    row = on_database(database_url, scenario)

    assert outcome == ["stopped"]
    assert row["status"] == JobStatus.CANCELLED and row["result"] is None
    assert row["finished_at"] is not None and row["lease_owner"] is None


def test_a_job_whose_workers_keep_dying_fails_after_max_attempts(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("dying")
    calls: list[int | None] = []

    async def never(run: JobRun) -> None:
        calls.append(run.job.id)

    async def scenario(db: Database) -> dict[str, Any]:
        job_id = await enqueue(db, admin, kind, max_attempts=2)
        for attempt in (1, 2):
            dead = await claim_dead(db, kind, f"dead-{attempt}", lease=0.3)
            assert (dead.id, dead.attempts) == (job_id, attempt)
            await until(lambda: lease_expired(db, job_id))
        worker = Worker(db, None, {kind: never})
        assert not await worker.run_once(), "not retried a third time"
        return await fetch_job(db, job_id)

    row = on_database(database_url, scenario)

    assert calls == []
    assert row["status"] == JobStatus.FAILED
    assert row["error"] == "worker lost too many times" and row["error_code"] == "WORKER_LOST"
    assert row["attempts"] == 2
    assert row["finished_at"] is not None and row["lease_owner"] is None


def test_a_cancel_requested_on_a_dead_workers_job_ends_it_cancelled(
    database_url: str, admin: Scope
) -> None:
    kind = unique_kind("orphan")
    calls: list[int | None] = []

    async def never(run: JobRun) -> None:
        calls.append(run.job.id)

    async def scenario(db: Database) -> dict[str, Any]:
        # its last attempt: the user's cancel must still win over "worker lost"
        job_id = await enqueue(db, admin, kind, max_attempts=1)
        await claim_dead(db, kind, "dead", lease=0.3)
        async with db.transaction() as session:
            flagged = await queue.request_cancel(session, admin, job_id)
        assert flagged.status == JobStatus.RUNNING and flagged.cancel_requested
        await until(lambda: lease_expired(db, job_id))
        assert not await Worker(db, None, {kind: never}).run_once()
        return await fetch_job(db, job_id)

    row = on_database(database_url, scenario)

    assert calls == []
    assert row["status"] == JobStatus.CANCELLED and row["error"] is None
    assert row["finished_at"] is not None and row["lease_owner"] is None


# --- failures -----------------------------------------------------------------------------


def test_failed_handlers_mask_unexpected_errors_and_show_domain_ones(
    database_url: str, admin: Scope
) -> None:
    crash, refuse = unique_kind("crash"), unique_kind("refuse")

    async def crashes(run: JobRun) -> None:
        raise RuntimeError("connection to postgresql://app:hunter2@db failed")

    async def refuses(run: JobRun) -> None:
        raise ModelTrainingFailed("Need at least 1000 leads", leads=12)

    async def scenario(db: Database) -> tuple[dict[str, Any], dict[str, Any]]:
        crash_id = await enqueue(db, admin, crash)
        refuse_id = await enqueue(db, admin, refuse)
        worker = Worker(db, None, {crash: crashes, refuse: refuses})
        assert await worker.run_once() and await worker.run_once()
        assert not await worker.run_once(), "a failed job is not retried"
        return await fetch_job(db, crash_id), await fetch_job(db, refuse_id)

    crashed, refused = on_database(database_url, scenario)

    assert crashed["status"] == refused["status"] == JobStatus.FAILED
    assert crashed["error"] == "Internal error (see server log)"
    assert "hunter2" not in str(crashed) and "postgresql" not in str(crashed)
    assert refused["error"] == "MODEL_TRAINING_FAILED: Need at least 1000 leads"
    # the code and the numbers behind it as data; nothing of the unexpected one
    assert (refused["error_code"], refused["error_details"]) == (
        "MODEL_TRAINING_FAILED",
        {"leads": 12},
    )
    assert (crashed["error_code"], crashed["error_details"]) == ("INTERNAL", None)
    for row in (crashed, refused):
        assert row["attempts"] == 1 and row["result"] is None
        assert row["finished_at"] is not None and row["lease_owner"] is None


# --- through GraphQL, with workers running inside a server ----------------------------------


class Probe:
    """What the handlers inside the test server did, seen from the test thread."""

    def __init__(self) -> None:
        self.started: set[int] = set()
        self.ended: dict[int, str] = {}
        self.gates: dict[int, threading.Event] = {}

    def gate(self, job_id: int) -> threading.Event:
        return self.gates.setdefault(job_id, threading.Event())


def server_handlers(probe: Probe) -> dict[str, Handler]:
    async def slow(run: JobRun) -> dict[str, Any]:
        assert run.job.id is not None
        probe.started.add(run.job.id)
        try:
            for step in range(500):  # ~10 s unless cancelled
                await run.progress(step / 500, f"step {step}")
                await asyncio.sleep(0.02)
        except (JobCancelled, asyncio.CancelledError):
            probe.ended[run.job.id] = "stopped"
            raise
        probe.ended[run.job.id] = "ran to the end"
        return {"steps": 500}

    async def gated_sum(run: JobRun) -> dict[str, Any]:
        assert run.job.id is not None
        numbers = run.job.payload["numbers"]
        await run.progress(0.5, "halfway")
        gate = probe.gate(run.job.id)
        while not gate.is_set():  # the test looks at the job, then lets it go on
            await asyncio.sleep(0.02)
        return {"sum": sum(numbers)}

    async def crash(run: JobRun) -> None:
        raise RuntimeError("secret internals: /srv/app/config.py line 12")

    return {"test.slow": slow, "test.sum": gated_sum, "test.crash": crash}


@pytest.fixture(scope="module")
def probe() -> Probe:
    return Probe()


@pytest.fixture(scope="module")
def jobs_server(database_url: str, probe: Probe) -> Iterator[ServerThread]:
    app = create_app(
        settings_for(database_url, job_lease_seconds=1.5), handlers=server_handlers(probe)
    )
    with ServerThread(app) as running:
        yield running


@pytest.fixture(scope="module")
def personas(jobs_server: ServerThread) -> dict[str, Persona]:
    return {email: login(jobs_server.url, email) for email in DEMO_EMAILS}


def enqueue_now(database_url: str, scope: Scope, kind: str, payload: Any = None) -> int:
    return on_database(database_url, lambda db: enqueue(db, scope, kind, payload))


def test_job_shows_live_progress_then_the_result(
    database_url: str, admin: Scope, personas: dict[str, Persona], probe: Probe
) -> None:
    client = personas["admin@acme.example"]
    job_id = enqueue_now(database_url, admin, "test.sum", {"numbers": [1, 2, 3, 4]})

    def job() -> dict[str, Any]:
        return client.execute(JOB, id=str(job_id))["job"]

    halfway = eventually(lambda: (j := job())["stage"] == "halfway" and j)
    assert halfway["status"] == "RUNNING" and halfway["progress"] == 0.5
    assert halfway["kind"] == "test.sum" and halfway["id"] == str(job_id)
    assert halfway["result"] is None and halfway["finishedAt"] is None

    probe.gate(job_id).set()
    done = eventually(lambda: (j := job())["status"] == "SUCCEEDED" and j)
    assert done["result"] == {"sum": 10}
    assert done["progress"] == 1.0 and done["stage"] == "halfway"
    assert done["error"] is None
    assert datetime.fromisoformat(done["finishedAt"]) >= datetime.fromisoformat(done["createdAt"])

    again = client.error(CANCEL_JOB, id=str(job_id))
    assert again["extensions"]["code"] == "BAD_USER_INPUT"
    assert "id" in again["extensions"]["details"]["fields"]


def test_job_of_a_crashed_handler_shows_a_masked_error(
    database_url: str, admin: Scope, personas: dict[str, Persona]
) -> None:
    client = personas["admin@acme.example"]
    job_id = enqueue_now(database_url, admin, "test.crash")

    failed = eventually(
        lambda: (j := client.execute(JOB, id=str(job_id))["job"])["finishedAt"] and j
    )
    assert failed["status"] == "FAILED"
    assert failed["error"] == "Internal error (see server log)"
    assert "secret" not in str(failed)


def test_cancelling_a_queued_job_ends_it_at_once_and_it_never_runs(
    database_url: str, admin: Scope, personas: dict[str, Persona]
) -> None:
    kind = unique_kind("later")  # no worker of the server runs it: it stays queued
    job_id = enqueue_now(database_url, admin, kind)
    client = personas["admin@acme.example"]

    cancelled = client.execute(CANCEL_JOB, id=str(job_id))["cancelJob"]
    assert cancelled["status"] == "CANCELLED" and cancelled["finishedAt"] is not None
    assert client.execute(JOB, id=str(job_id))["job"]["status"] == "CANCELLED"

    calls: list[int | None] = []

    async def would_run(run: JobRun) -> None:
        calls.append(run.job.id)

    async def scenario(db: Database) -> tuple[bool, dict[str, Any]]:
        ran = await Worker(db, None, {kind: would_run}).run_once()
        return ran, await fetch_job(db, job_id)

    ran, row = on_database(database_url, scenario)
    assert not ran and calls == []
    assert row["status"] == JobStatus.CANCELLED
    assert row["attempts"] == 0 and row["started_at"] is None


def test_cancelling_a_running_job_stops_its_handler(
    database_url: str, admin: Scope, personas: dict[str, Persona], probe: Probe, sql: Any
) -> None:
    client = personas["admin@acme.example"]
    job_id = enqueue_now(database_url, admin, "test.slow")

    def job() -> dict[str, Any]:
        return client.execute(JOB, id=str(job_id))["job"]

    running = eventually(lambda: (j := job())["progress"] > 0 and j)
    assert running["status"] == "RUNNING" and job_id in probe.started

    flagged = client.execute(CANCEL_JOB, id=str(job_id))["cancelJob"]
    assert flagged["status"] == "RUNNING", "a running job stops at its worker's next beat"

    done = eventually(lambda: (j := job())["status"] == "CANCELLED" and j)
    assert probe.ended[job_id] == "stopped"
    assert done["finishedAt"] is not None and done["result"] is None
    assert 0 < done["progress"] < 1
    time.sleep(0.2)
    assert job() == done, "nothing of the stopped handler reaches the job any more"
    row = sql("SELECT lease_owner, cancel_requested FROM job WHERE id = $1", job_id)[0]
    assert row["lease_owner"] is None and row["cancel_requested"]

    again = client.error(CANCEL_JOB, id=str(job_id))
    assert again["extensions"]["code"] == "BAD_USER_INPUT"


def test_jobs_are_invisible_to_other_tenants_and_to_users_who_did_not_start_them(
    database_url: str,
    scopes: dict[str, Scope],
    personas: dict[str, Persona],
    workspace_ids: dict[str, str],
) -> None:
    admin, user = scopes["admin@acme.example"], scopes["user@acme.example"]
    kind = unique_kind("private")  # stays queued: only who may see it matters here
    admins_job = str(enqueue_now(database_url, admin, kind))
    users_job = str(enqueue_now(database_url, user, kind))
    globex, user_client = personas["admin@globex.example"], personas["user@acme.example"]
    agent_client = personas["agent@acme.example"]

    for persona in (globex, user_client, agent_client):
        for document in (JOB, CANCEL_JOB):
            error = persona.error(document, id=admins_job)
            assert error["extensions"]["code"] == "JOB_NOT_FOUND", (persona, document)
    acme = workspace_ids["acme"]
    error = globex.error(JOB, id=admins_job, workspaceId=acme)
    assert error["extensions"]["code"] == "NOT_FOUND"  # not a member of Acme at all

    own = user_client.execute(JOB, id=users_job)["job"]
    assert own["id"] == users_job and own["kind"] == kind and own["status"] == "QUEUED"
    admin_view = personas["admin@acme.example"].execute(JOB, id=users_job)["job"]
    assert admin_view["status"] == "QUEUED"  # the workspace admin sees every job
    assert user_client.execute(CANCEL_JOB, id=users_job)["cancelJob"]["status"] == "CANCELLED"
    # nobody else's attempt changed the admin's job
    still = personas["admin@acme.example"].execute(JOB, id=admins_job)["job"]
    assert still["status"] == "QUEUED"

    bad = user_client.error(JOB, id="not-a-number")
    assert bad["extensions"]["code"] == "BAD_USER_INPUT"
