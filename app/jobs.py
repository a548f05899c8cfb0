"""Job workers: claim with SKIP LOCKED, run a handler under a renewed lease, honour cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app.pubsub import ChangeEvent, PubSub
from models import jobs as queue
from models.db import Database
from models.jobs import Job, JobStatus

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a handler (by `JobRun.progress`) once a cancel was requested."""


@dataclass(slots=True)
class JobRun:
    """A handler's view of its job: the row, and progress reports (which also beat the lease)."""

    job: Job
    worker: Worker
    cancel_requested: bool = False
    lease_lost: bool = False

    async def progress(
        self, fraction: float, stage: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        flag = await self.worker.beat(self.job, progress=fraction, stage=stage, details=details)
        if flag is None:
            # another worker owns the job now (this one stalled past its lease): stop here
            # rather than run it twice side by side until the next heartbeat notices
            self.lease_lost = True
            raise JobCancelled()
        if flag:
            self.cancel_requested = True
            raise JobCancelled()


Handler = Callable[[JobRun], Coroutine[Any, Any, dict[str, Any] | None]]


@dataclass
class Worker:
    """Runs jobs of the registered kinds; several workers (and processes) share one table."""

    db: Database
    pubsub: PubSub | None
    handlers: dict[str, Handler]
    concurrency: int = 2
    lease: timedelta = timedelta(seconds=30)
    poll_seconds: float = 1.0
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    running: dict[int, asyncio.Task[Any]] = field(default_factory=dict)

    def wake(self) -> None:
        """A job was enqueued by this process: look now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(n), name=f"job-worker-{n}")
            for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self, n: int) -> None:
        while True:
            try:
                ran = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker %s-%d failed; retrying", self.worker_id, n)
                ran = False
            if not ran:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> bool:
        """Claim and run one job; False when there was nothing to do."""
        async with self.db.transaction() as session:
            # cancels first: a user's cancel outranks "worker lost" on the last attempt
            for ended in await queue.cancel_expired_requests(session) + await queue.fail_exhausted(
                session
            ):
                await self._announce(ended)
            job = await queue.claim(session, self.worker_id, list(self.handlers), self.lease)
        if job is None:
            return False
        await self._announce(job)
        await self._run(job)
        return True

    async def _run(self, job: Job) -> None:
        assert job.id is not None
        run = JobRun(job, self)
        handler_task = asyncio.create_task(self.handlers[job.kind](run))
        self.running[job.id] = handler_task
        beats = asyncio.create_task(self._heartbeat(job, handler_task, run))
        status, result, error = JobStatus.SUCCEEDED, None, None
        code: str | None = None
        details: dict[str, Any] | None = None
        try:
            result = await handler_task
        except (JobCancelled, asyncio.CancelledError):
            if run.lease_lost:
                return  # another worker owns the job now; it alone may finish it
            if not run.cancel_requested:
                raise  # the worker itself is shutting down: the lease runs out, the job is retried
            status = JobStatus.CANCELLED
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            status, error = JobStatus.FAILED, _public_error(exc)
            code, details = _error_code(exc)
        finally:
            beats.cancel()
            self.running.pop(job.id, None)
        async with self.db.transaction() as session:
            done = await queue.finish(
                session,
                job,
                self.worker_id,
                status,
                result=result,
                error=error,
                error_code=code,
                error_details=details,
            )
        if done is None:
            log.warning("job %s: lease lost before finishing; another worker owns it now", job.id)
        else:
            await self._announce(done)

    async def _heartbeat(self, job: Job, handler: asyncio.Task[Any], run: JobRun) -> None:
        """Renew the lease at a third of its length; stop the handler when a cancel comes in."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                flag = await self.beat(job)
            except Exception:
                # a database blip must not end the heartbeat: the lease would then run out
                # under a live run and a second worker would start the same job
                log.warning("job %s: lease renewal failed; retrying", job.id, exc_info=True)
                continue
            if flag is None:
                log.warning("job %s: lease lost; stopping the local run", job.id)
                run.lease_lost = True
                handler.cancel()
                return
            if flag:
                run.cancel_requested = True
                handler.cancel()
                return

    async def beat(
        self,
        job: Job,
        *,
        progress: float | None = None,
        stage: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool | None:
        async with self.db.transaction() as session:
            flag = await queue.renew_lease(
                session,
                job,
                self.worker_id,
                self.lease,
                progress=progress,
                stage=stage,
                details=details,
            )
        if progress is not None and flag is not None:
            job.progress, job.stage = progress, stage or job.stage
            job.progress_details = details
            await self._announce(job)
        return flag

    async def _announce(self, job: Job) -> None:
        if self.pubsub is not None:
            await self.pubsub.publish(ChangeEvent(job.workspace_id, "job", [str(job.id)]))


def _error_code(exc: Exception) -> tuple[str, dict[str, Any] | None]:
    """A failed job's code and details: a domain error's own, else INTERNAL (masked)."""
    from models.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.code, dict(exc.details) or None
    return "INTERNAL", None


def _public_error(exc: Exception) -> str:
    """A failed job shows its domain message; anything else is masked (the log has it all)."""
    from models.errors import DomainError

    if isinstance(exc, DomainError):
        return f"{exc.code}: {exc.message}"
    return "Internal error (see server log)"
