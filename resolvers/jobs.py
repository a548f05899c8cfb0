"""Jobs (exports, scoring, retraining): the type, `job(id)` and `cancelJob`."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry.scalars import JSON

from models import jobs
from models.jobs import JobPriority
from resolvers.context import Info
from resolvers.enums import JobStatus
from resolvers.ids import parse_id

strawberry.enum(jobs.JobPriority, description="Workers take higher priorities first")
_PRIORITY_BY_RANK = {rank: name for name, rank in jobs.PRIORITY_RANK.items()}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@strawberry.type
class Job:
    id: strawberry.ID
    kind: str
    status: JobStatus
    progress: float = strawberry.field(description="0..1")
    stage: str | None
    details: JSON | None = strawberry.field(
        description="What the current stage reports besides `progress`; training: metric "
        "(its name), current and best (validation AUC), iteration/iterations, "
        "candidate/candidates while tuning, etaSeconds"
    )
    current_metric: float | None = strawberry.field(
        description="Training: the validation AUC after the latest boosting iteration"
    )
    best_metric: float | None = strawberry.field(
        description="Training: the best validation AUC of the run so far"
    )
    eta_seconds: float | None = strawberry.field(
        description="Seconds left in the current stage at its pace so far"
    )
    priority: JobPriority
    error: str | None = strawberry.field(description='A failure: "CODE: message"')
    error_code: str | None = strawberry.field(
        description="A failure's code, as GraphQL errors have it (MODEL_TRAINING_FAILED, ...; "
        "INTERNAL for an unexpected one, WORKER_LOST when its workers died too often)"
    )
    error_details: JSON | None = strawberry.field(
        description="The numbers behind the code (MODEL_TRAINING_FAILED: minSamples, "
        "actualSamples, ...)"
    )
    result: JSON | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: jobs.Job) -> Self:
        details = row.progress_details or {}
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            status=jobs.JobStatus(row.status),
            progress=row.progress,
            stage=row.stage,
            details=JSON(details) if details else None,
            current_metric=_number(details.get("current")),
            best_metric=_number(details.get("best")),
            eta_seconds=_number(details.get("etaSeconds")),
            priority=_PRIORITY_BY_RANK.get(row.priority, jobs.JobPriority.NORMAL),
            error=row.error,
            error_code=row.error_code,
            error_details=JSON(row.error_details) if row.error_details else None,
            result=JSON(row.result) if row.result is not None else None,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


@strawberry.type
class JobQueries:
    @strawberry.field(description="A job the viewer started (ADMIN: any job of the workspace)")
    async def job(
        self, info: Info, id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> Job:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.session() as session:
            row = await jobs.get_job(session, scope, parse_id(id, "id"))
        return Job.from_row(row)


@strawberry.type
class JobMutations:
    @strawberry.mutation(description="Queued jobs stop at once; running ones at their next beat")
    async def cancel_job(
        self, info: Info, id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> Job:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.transaction() as session:
            row = await jobs.request_cancel(session, scope, parse_id(id, "id"))
        await info.context.publish(scope.workspace_id, "job", [row.id])
        return Job.from_row(row)
