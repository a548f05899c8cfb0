"""The workspace activity feed (seed 002 "Recent Activities"): newest first, across tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


class ActivityType(StrEnum):
    NEW_USER = "NEW_USER"
    SUBSCRIPTION = "SUBSCRIPTION"
    PAYMENT = "PAYMENT"
    CALL = "CALL"
    LEAD_CREATED = "LEAD_CREATED"
    STAGE_CHANGE = "STAGE_CHANGE"


# one branch per type: (type, at, subject id, title, amount in cents or null); each branch is
# cut to :n by its own index before the union, so the feed costs 6 small index scans
_BRANCHES: dict[ActivityType, str] = {
    ActivityType.NEW_USER: """
        SELECT 'NEW_USER', m.created_at, m.user_id, u.full_name || ' joined as ' || m.role, NULL
        FROM membership m JOIN app_user u ON u.id = m.user_id
        WHERE m.workspace_id = :ws ORDER BY m.created_at DESC LIMIT :n""",
    ActivityType.SUBSCRIPTION: """
        SELECT 'SUBSCRIPTION', s.created_at, s.id, p.name || ' subscription ' || lower(s.status),
               p.price
        FROM billing_subscription s JOIN plan p ON p.id = s.plan_id
        WHERE s.workspace_id = :ws ORDER BY s.created_at DESC LIMIT :n""",
    ActivityType.PAYMENT: """
        SELECT 'PAYMENT', created_at, id, 'Payment ' || lower(status), amount
        FROM payment WHERE workspace_id = :ws ORDER BY created_at DESC LIMIT :n""",
    ActivityType.CALL: """
        SELECT 'CALL', started_at, id,
               initcap(lower(direction)) || ' call ' || lower(coalesce(outcome, status)), NULL
        FROM interaction WHERE workspace_id = :ws AND channel = 'CALL'
        ORDER BY started_at DESC LIMIT :n""",
    ActivityType.LEAD_CREATED: """
        SELECT 'LEAD_CREATED', created_at, id, 'New lead ' || name, NULL
        FROM lead WHERE workspace_id = :ws ORDER BY created_at DESC LIMIT :n""",
    ActivityType.STAGE_CHANGE: """
        SELECT 'STAGE_CHANGE', e.occurred_at, e.lead_id,
               l.name || ': ' || coalesce(e.from_stage, '?') || ' -> ' || e.to_stage, NULL
        FROM lead_event e JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id
        WHERE e.workspace_id = :ws AND e.type = 'STAGE_CHANGE'
        ORDER BY e.occurred_at DESC LIMIT :n""",
}


@dataclass(frozen=True, slots=True)
class Activity:
    type: ActivityType
    at: datetime
    subject_id: int
    title: str
    amount_cents: int | None


async def recent_activity(
    session: AsyncSession, workspace_id: int, types: list[ActivityType], limit: int
) -> list[Activity]:
    chosen = types or list(ActivityType)
    union = " UNION ALL ".join(f"({_BRANCHES[t]})" for t in dict.fromkeys(chosen))
    query = sa.text(f"SELECT * FROM ({union}) AS feed ORDER BY 2 DESC, 3 DESC LIMIT :n")
    rows = await session.execute(query, {"ws": workspace_id, "n": limit})
    return [Activity(ActivityType(r[0]), r[1], int(r[2]), r[3], r[4]) for r in rows]
