"""Jobs (exports, scoring, retraining): the type, `job(id)` and `cancelJob`."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry.scalars import JSON

from models import jobs
from resolvers.context import Info
from resolvers.enums import JobStatus
from resolvers.ids import parse_id


@strawberry.type
class Job:
    id: strawberry.ID
    kind: str
    status: JobStatus
    progress: float = strawberry.field(description="0..1")
    stage: str | None
    error: str | None
    result: JSON | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: jobs.Job) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            status=jobs.JobStatus(row.status),
            progress=row.progress,
            stage=row.stage,
            error=row.error,
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
