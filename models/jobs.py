"""The job table and the queue operations on it: enqueue, claim with SKIP LOCKED, lease, finish."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import TZ, row_id, stamped, tenant_key, utcnow
from models.errors import BadUserInput, JobNotFound
from models.scope import Scope


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobPriority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"


# stored in job.priority; workers claim higher ranks first, then the oldest
PRIORITY_RANK = {JobPriority.LOW: -1, JobPriority.NORMAL: 0, JobPriority.HIGH: 1}


class Job(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    kind: str = Field(max_length=40)
    status: str = Field(default=JobStatus.QUEUED, max_length=12)
    progress: float = 0.0
    stage: str | None = Field(default=None, max_length=80)
    # what the stage reports besides a fraction (training: current/best metric, ETA seconds)
    progress_details: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    priority: int = Field(default=0, sa_type=sa.SmallInteger)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    error: str | None = Field(default=None, max_length=2000)
    # a failure's code (DomainError.code; INTERNAL for anything else) and its details
    error_code: str | None = Field(default=None, max_length=64)
    error_details: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    attempts: int = 0
    max_attempts: int = 3
    cancel_requested: bool = False
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: datetime | None = Field(default=None, sa_type=TZ)
    created_by: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = stamped()
    started_at: datetime | None = Field(default=None, sa_type=TZ)
    finished_at: datetime | None = Field(default=None, sa_type=TZ)

    __table_args__ = (
        # only unfinished jobs are in it, so the claim scan stays tiny whatever the history
        sa.Index(
            "ix_job_pending",
            "workspace_id",
            "created_at",
            postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING')"),
        ),
        sa.Index("ix_job_created_by", "workspace_id", "created_by"),
    )


async def enqueue(
    session: AsyncSession,
    scope: Scope,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    max_attempts: int = 3,
    priority: JobPriority = JobPriority.NORMAL,
) -> Job:
    return await enqueue_in(
        session,
        scope.workspace_id,
        kind,
        payload,
        created_by=scope.user_id,
        max_attempts=max_attempts,
        priority=priority,
    )


async def enqueue_in(
    session: AsyncSession,
    workspace_id: int,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    created_by: int | None = None,
    max_attempts: int = 3,
    priority: JobPriority = JobPriority.NORMAL,
) -> Job:
    """Queue a job in the caller's transaction (`created_by` None: the server's own)."""
    job = Job(
        workspace_id=workspace_id,
        kind=kind,
        payload=payload or {},
        created_by=created_by,
        max_attempts=max_attempts,
        priority=PRIORITY_RANK[priority],
    )
    session.add(job)
    await session.flush()
    return job


def _visible(scope: Scope) -> Any:
    clause = scope.where(Job)
    return clause if scope.is_admin else sa.and_(clause, col(Job.created_by) == scope.user_id)


async def get_job(session: AsyncSession, scope: Scope, job_id: int) -> Job:
    job = (
        (await session.execute(select(Job).where(_visible(scope), Job.id == job_id)))
        .scalars()
        .first()
    )
    if job is None:
        raise JobNotFound("Job not found", jobId=str(job_id))
    return job


async def jobs_by_ids(session: AsyncSession, scope: Scope, ids: list[int]) -> list[Job]:
    result = await session.execute(select(Job).where(_visible(scope), col(Job.id).in_(ids)))
    return list(result.scalars())


async def request_cancel(session: AsyncSession, scope: Scope, job_id: int) -> Job:
    """QUEUED jobs end at once; RUNNING ones are flagged and their worker stops at its next beat."""
    job = (
        (
            await session.execute(
                select(Job).where(_visible(scope), Job.id == job_id).with_for_update()
            )
        )
        .scalars()
        .first()
    )
    if job is None:
        raise JobNotFound("Job not found", jobId=str(job_id))
    if job.status in FINISHED:
        raise BadUserInput("Job has already finished", fields={"id": f"job is {job.status}"})
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = utcnow()
    else:
        job.cancel_requested = True
    return job


async def claim(
    session: AsyncSession, worker_id: str, kinds: list[str], lease: timedelta
) -> Job | None:
    """Take the oldest runnable job of the highest priority: queued, or running under a lease
    that has run out."""
    now = sa.func.now()
    runnable = (
        select(Job.workspace_id, Job.id)
        .where(
            col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            sa.or_(col(Job.status) == JobStatus.QUEUED, col(Job.lease_expires_at) < now),
            col(Job.kind).in_(kinds),
        )
        .order_by(col(Job.priority).desc(), col(Job.created_at), col(Job.id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .cte("runnable")
    )
    result = await session.execute(
        sa.update(Job)
        .where(col(Job.workspace_id) == runnable.c.workspace_id, col(Job.id) == runnable.c.id)
        .values(
            status=JobStatus.RUNNING,
            lease_owner=worker_id,
            lease_expires_at=now + lease,
            attempts=Job.attempts + 1,
            started_at=sa.func.coalesce(Job.started_at, now),
        )
        .returning(Job)
    )
    return result.scalars().first()


def _owned(job: Job, worker_id: str) -> Any:
    return sa.and_(
        col(Job.workspace_id) == job.workspace_id,
        col(Job.id) == job.id,
        col(Job.lease_owner) == worker_id,
        col(Job.status) == JobStatus.RUNNING,
    )


async def renew_lease(
    session: AsyncSession,
    job: Job,
    worker_id: str,
    lease: timedelta,
    *,
    progress: float | None = None,
    stage: str | None = None,
    details: dict[str, Any] | None = None,
) -> bool | None:
    """Extend the lease (and record progress). Returns cancel_requested, or None if lost.
    A progress report replaces the details (none: cleared), so they match the stage."""
    values: dict[str, Any] = {"lease_expires_at": sa.func.now() + lease}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
        values["progress_details"] = details
    if stage is not None:
        values["stage"] = stage[:80]
    result = await session.execute(
        sa.update(Job)
        .where(_owned(job, worker_id))
        .values(**values)
        .returning(col(Job.cancel_requested))
    )
    return result.scalar_one_or_none()


async def finish(
    session: AsyncSession,
    job: Job,
    worker_id: str,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    error_code: str | None = None,
    error_details: dict[str, Any] | None = None,
) -> Job | None:
    """End the job if this worker still holds it; a worker that lost its lease changes nothing."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": sa.func.now(),
        "lease_owner": None,
        "lease_expires_at": None,
        "result": result,
        "error": error and error[:2000],
        "error_code": error_code,
        "error_details": error_details,
    }
    if status == JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    out = await session.execute(
        sa.update(Job).where(_owned(job, worker_id)).values(**values).returning(Job)
    )
    return out.scalars().first()


async def fail_exhausted(session: AsyncSession) -> list[Job]:
    """Jobs whose workers died `max_attempts` times are failed rather than retried forever."""
    result = await session.execute(
        sa.update(Job)
        .where(
            col(Job.status) == JobStatus.RUNNING,
            col(Job.lease_expires_at) < sa.func.now(),
            col(Job.attempts) >= Job.max_attempts,
        )
        .values(
            status=JobStatus.FAILED,
            finished_at=sa.func.now(),
            lease_owner=None,
            lease_expires_at=None,
            error="worker lost too many times",
            error_code="WORKER_LOST",
        )
        .returning(Job)
    )
    return list(result.scalars())


async def cancel_expired_requests(session: AsyncSession) -> list[Job]:
    """A cancel requested on a job whose worker died: nobody will see the flag, so end it here."""
    result = await session.execute(
        sa.update(Job)
        .where(
            col(Job.status) == JobStatus.RUNNING,
            col(Job.cancel_requested),
            col(Job.lease_expires_at) < sa.func.now(),
        )
        .values(
            status=JobStatus.CANCELLED,
            finished_at=sa.func.now(),
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(Job)
    )
    return list(result.scalars())


async def queue_depth(session: AsyncSession) -> int:
    query = select(sa.func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED)
    return int((await session.execute(query)).scalar_one())
