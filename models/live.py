"""Live metrics: the numbers a live dashboard shows, in one statement per workspace."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

LIVE_METRICS = sa.text(
    """
    WITH today AS (
        SELECT date_trunc('day', now() AT TIME ZONE w.timezone) AT TIME ZONE w.timezone AS start
        FROM workspace w WHERE w.id = :ws
    )
    SELECT
        (SELECT count(*) FROM lead WHERE workspace_id = :ws) AS total_leads,
        (SELECT count(*) FROM lead, today
          WHERE workspace_id = :ws AND created_at >= today.start) AS new_leads_today,
        (SELECT count(*) FROM lead WHERE workspace_id = :ws AND stage = 'WON') AS won_leads,
        (SELECT avg(value)::float FROM lead_current_score WHERE workspace_id = :ws)
          AS average_score,
        (SELECT count(*) FROM interaction
          WHERE workspace_id = :ws AND status = 'ACTIVE' AND channel = 'CALL') AS active_calls,
        (SELECT count(*) FROM interaction, today
          WHERE workspace_id = :ws AND channel = 'CALL'
            AND started_at >= today.start) AS calls_today,
        (SELECT coalesce(sum(credits), 0) FROM interaction, today
          WHERE workspace_id = :ws AND started_at >= today.start) AS credits_today,
        (SELECT coalesce(sum(amount), 0) FROM payment, today
          WHERE workspace_id = :ws AND status = 'SUCCEEDED'
            AND created_at >= today.start) AS revenue_today_cents
    """
)


@dataclass(frozen=True, slots=True)
class LiveMetrics:
    total_leads: int
    new_leads_today: int
    active_calls: int
    calls_today: int
    conversion_rate: float
    average_score: float | None
    revenue_today: float
    credits_consumed_today: int


async def live_metrics(session: AsyncSession, workspace_id: int) -> LiveMetrics:
    row = (await session.execute(LIVE_METRICS, {"ws": workspace_id})).one()
    return LiveMetrics(
        total_leads=row.total_leads,
        new_leads_today=row.new_leads_today,
        active_calls=row.active_calls,
        calls_today=row.calls_today,
        conversion_rate=row.won_leads / row.total_leads if row.total_leads else 0.0,
        average_score=row.average_score,
        revenue_today=row.revenue_today_cents / 100,
        credits_consumed_today=int(row.credits_today),
    )
