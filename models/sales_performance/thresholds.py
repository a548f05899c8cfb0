"""The workspace's alert thresholds: reading them (defaults without a row), the settings a
mutation may change with their bounds, and the validated, audited update."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import update_workspace_settings
from models.errors import Forbidden, Validator
from models.sales_performance.tables import PerformanceThreshold
from models.scope import Scope


@dataclass(frozen=True, slots=True)
class ThresholdSetting:
    path: str
    column: str
    low: float
    high: float
    nullable: bool = True


THRESHOLD_SETTINGS: dict[str, ThresholdSetting] = {
    s.path: s
    for s in (
        ThresholdSetting("minConversionRate", "min_conversion_rate", 0, 10),
        ThresholdSetting("maxResponseTimeHours", "max_response_time_hours", 0, 24 * 365),
        ThresholdSetting("minAverageLeadScore", "min_average_lead_score", 0, 100),
        ThresholdSetting("minEmailOpenRate", "min_email_open_rate", 0, 10),
        ThresholdSetting("minLeadGrowth", "min_lead_growth", -1, 100),
        ThresholdSetting("maxChange", "max_change", 0.01, 10, nullable=False),
    )
}


async def load_thresholds(session: AsyncSession, workspace_id: int) -> PerformanceThreshold:
    row = await session.get(PerformanceThreshold, workspace_id)
    return row if row is not None else PerformanceThreshold(workspace_id=workspace_id)


def _validate(changes: Mapping[str, float | None]) -> None:
    v = Validator()
    v.check(bool(changes), "input", "no threshold given")
    for path, value in changes.items():
        s = THRESHOLD_SETTINGS.get(path)
        if s is None:
            v.check(False, path, "unknown threshold")
        elif value is None:
            v.check(s.nullable, path, "must not be null")
        else:
            v.check(
                math.isfinite(value) and s.low <= value <= s.high,
                path,
                f"at least {s.low:g} and at most {s.high:g}",
            )
    v.raise_if_any("Invalid performance thresholds")


async def update_thresholds(
    session: AsyncSession, scope: Scope, changes: Mapping[str, float | None]
) -> PerformanceThreshold:
    """Apply `changes` ({path: value, None switches a threshold off}); validated first, then
    upserted in the caller's transaction; ADMIN only; audited."""
    if not scope.is_admin:
        raise Forbidden("Only workspace admins change performance thresholds")
    _validate(changes)
    columns = {path: (THRESHOLD_SETTINGS[path].column, value) for path, value in changes.items()}
    row: PerformanceThreshold = await update_workspace_settings(
        session, PerformanceThreshold, scope, columns, "performance_thresholds.updated"
    )
    return row
