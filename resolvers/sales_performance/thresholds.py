"""The alert thresholds: their type, `updatePerformanceThresholds` and its input. Bounds and
defaults in the descriptions come from models.sales_performance (one source of truth)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry.types.unset import UNSET

from models import sales_performance as perf
from resolvers.context import Info


def _default(column: str) -> str:
    """A threshold's description: its default, from the table model."""
    value = perf.PerformanceThreshold.model_fields[column].default
    return "Default off" if value is None else f"Default {value:g}"


def _bounds(column: str) -> str:
    """A threshold input's description: its bounds, from the settings that validate it."""
    s = next(s for s in perf.THRESHOLD_SETTINGS.values() if s.column == column)
    return f"{s.low:g}..{s.high:g}" + ("" if s.nullable else "; not null")


@strawberry.type(description="The workspace's alert thresholds (defaults until updated); null: off")
class PerformanceThresholds:
    min_conversion_rate: float | None = strawberry.field(
        description=_default("min_conversion_rate")
    )
    max_response_time_hours: float | None = strawberry.field(
        description=_default("max_response_time_hours")
    )
    min_average_lead_score: float | None = strawberry.field(
        description=_default("min_average_lead_score")
    )
    min_email_open_rate: float | None = strawberry.field(
        description=_default("min_email_open_rate")
    )
    min_lead_growth: float | None = strawberry.field(description=_default("min_lead_growth"))
    max_change: float = strawberry.field(description=_default("max_change"))
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: perf.PerformanceThreshold) -> Self:
        return cls(
            min_conversion_rate=row.min_conversion_rate,
            max_response_time_hours=row.max_response_time_hours,
            min_average_lead_score=row.min_average_lead_score,
            min_email_open_rate=row.min_email_open_rate,
            min_lead_growth=row.min_lead_growth,
            max_change=row.max_change,
            updated_at=row.updated_at if row.updated_by is not None else None,
        )


@strawberry.input(description="Only the given thresholds change; null switches one off")
class PerformanceThresholdsInput:
    # the fields are named like the table's columns (THRESHOLD_SETTINGS maps them)
    min_conversion_rate: float | None = strawberry.field(
        default=UNSET, description=_bounds("min_conversion_rate")
    )
    max_response_time_hours: float | None = strawberry.field(
        default=UNSET, description=_bounds("max_response_time_hours")
    )
    min_average_lead_score: float | None = strawberry.field(
        default=UNSET, description=_bounds("min_average_lead_score")
    )
    min_email_open_rate: float | None = strawberry.field(
        default=UNSET, description=_bounds("min_email_open_rate")
    )
    min_lead_growth: float | None = strawberry.field(
        default=UNSET, description=_bounds("min_lead_growth")
    )
    max_change: float | None = strawberry.field(default=UNSET, description=_bounds("max_change"))


def _changes(input: PerformanceThresholdsInput) -> dict[str, Any]:
    """{setting path: value} of the fields given (null included, unset left out)."""
    given = {path: getattr(input, s.column) for path, s in perf.THRESHOLD_SETTINGS.items()}
    return {path: value for path, value in given.items() if value is not UNSET}


@strawberry.type
class PerformanceMutations:
    @strawberry.mutation(
        description="Change the performance overview's alert thresholds (validated); ADMIN "
        "only; audited"
    )
    async def update_performance_thresholds(
        self,
        info: Info,
        input: PerformanceThresholdsInput,
        workspace_id: strawberry.ID | None = None,
    ) -> PerformanceThresholds:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.transaction() as session:
            row = await perf.update_thresholds(session, scope, _changes(input))
        await info.context.publish(scope.workspace_id, "performance_config", [scope.workspace_id])
        return PerformanceThresholds.from_row(row)
