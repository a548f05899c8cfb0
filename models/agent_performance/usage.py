"""Each agent's usage pattern: zero-filled buckets, peak hours and busiest days, from
the hourly and daily rollups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models import periods
from models.agent_performance.numbers import BUSIEST_DAYS, MAX_USAGE_BUCKETS, PEAK_HOURS
from models.agent_performance.tables import (
    HOUR_COLUMNS,
    AgentUsageDay,
    AgentUsageDayMember,
    AgentUsageHour,
)
from models.agents import Agent, AgentKind
from models.errors import BadUserInput
from models.periods import TRUNC_UNITS, Window
from models.scope import Scope

# ---- usage -----------------------------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(slots=True)
class UsagePoint:
    timestamp: datetime
    executions: int = 0
    unique_users: int = 0
    credits: int = 0
    errors: int = 0


@dataclass(slots=True)
class AgentUsage:
    points: list[UsagePoint]
    peak_hours: list[int]
    busiest_days: list[str]


def next_bucket(at: datetime, granularity: str) -> datetime:
    return periods.next_bucket(at, TRUNC_UNITS[granularity])


def bucket_starts(window: Window, granularity: str) -> list[datetime]:
    """Every bucket touching [start, end); BAD_USER_INPUT past MAX_USAGE_BUCKETS."""
    if window.end <= window.start:
        raise BadUserInput("`range.end` must be after `range.start`", fields={"range": "empty"})
    # an estimate first, so a huge range is refused before anything is built
    unit = {"HOUR": 3600, "DAY": 86_400, "WEEK": 7 * 86_400, "MONTH": 28 * 86_400}[granularity]
    if window.length.total_seconds() / unit > MAX_USAGE_BUCKETS + 1:
        raise _too_many(granularity)
    out = periods.bucket_starts(window, TRUNC_UNITS[granularity])
    if len(out) > MAX_USAGE_BUCKETS:
        raise _too_many(granularity)
    return out


def _too_many(granularity: str) -> BadUserInput:
    return BadUserInput(
        f"At most {MAX_USAGE_BUCKETS} buckets: shorten the range or use a coarser granularity",
        fields={"granularity": f"over {MAX_USAGE_BUCKETS} {granularity} buckets in the range"},
    )


def _usage_query(scope: Scope, span: Window, granularity: str, kind: AgentKind) -> Any:
    """Usage rows per (agent, bucket), per (agent, hour of day), per (agent, ISO weekday),
    from the hourly rollup: AI agents' AI executions, human agents' interactions."""
    u = AgentUsageHour
    utc: Any = sa.literal_column("'UTC'")
    bucket = periods.trunc_sql(TRUNC_UNITS[granularity], col(u.hour))
    local = sa.func.timezone(utc, col(u.hour))
    hour = sa.cast(sa.extract("hour", local), sa.Integer)
    dow = sa.cast(sa.extract("isodow", local), sa.Integer)
    agent_id = col(u.agent_id)
    member = sa.and_(col(u.user_key) != 0, col(u.executions) > 0)
    return (
        select(  # type: ignore[call-overload]
            agent_id.label("agent_id"),
            bucket.label("bucket"),
            hour.label("hour"),
            dow.label("dow"),
            sa.func.sum(u.executions).label("executions"),
            sa.func.count(sa.distinct(col(u.user_key))).filter(member).label("users"),
            sa.func.sum(u.credits).label("credits"),
            sa.func.sum(u.errors).label("errors"),
            sa.func.grouping(bucket).label("no_bucket"),
            sa.func.grouping(hour).label("no_hour"),
        )
        .where(*_agents_of(u, scope, kind), col(u.hour) >= span.start, col(u.hour) < span.end)
        .group_by(
            sa.func.grouping_sets(
                sa.tuple_(agent_id, bucket), sa.tuple_(agent_id, hour), sa.tuple_(agent_id, dow)
            )
        )
    )


def _agents_of(table: Any, scope: Scope, kind: AgentKind) -> list[Any]:
    """A rollup's rows of the agents of `kind` the scope may read (one key range per agent);
    AI agents count their AI executions only."""
    agents = select(col(Agent.id)).where(scope.agents(Agent), col(Agent.kind) == kind)
    return [
        table.workspace_id == scope.workspace_id,
        table.agent_id == sa.any_(sa.func.array(agents.scalar_subquery())),
        *([table.ai_execution] if kind is AgentKind.AI else []),
    ]


def _day_bucket(day: Any, granularity: str) -> Any:
    unit: Any = sa.literal_column(f"'{TRUNC_UNITS[granularity]}'")
    return sa.func.date_trunc(unit, sa.cast(day, sa.DateTime))


def _daily_usage_query(scope: Scope, span: Window, granularity: str, kind: AgentKind) -> Any:
    """Totals per (agent, bucket) and per (agent, ISO weekday) from the daily rollup: DAY,
    WEEK and MONTH charts."""
    u = AgentUsageDay
    bucket = _day_bucket(col(u.day), granularity)
    dow = sa.cast(sa.extract("isodow", col(u.day)), sa.Integer)
    agent_id = col(u.agent_id)
    return (
        select(  # type: ignore[call-overload]
            agent_id.label("agent_id"),
            bucket.label("bucket"),
            dow.label("dow"),
            sa.func.sum(u.executions).label("executions"),
            sa.func.sum(u.credits).label("credits"),
            sa.func.sum(u.errors).label("errors"),
            sa.func.grouping(bucket).label("no_bucket"),
        )
        .where(*_agents_of(u, scope, kind), *_days(u, span))
        .group_by(sa.func.grouping_sets(sa.tuple_(agent_id, bucket), sa.tuple_(agent_id, dow)))
    )


def _daily_hours_query(scope: Scope, span: Window, kind: AgentKind) -> Any:
    """Each agent's executions per hour of the day over the span (peak hours)."""
    u = AgentUsageDay
    return (
        select(col(u.agent_id), *(sa.func.sum(getattr(u, h)).label(h) for h in HOUR_COLUMNS))
        .where(*_agents_of(u, scope, kind), *_days(u, span))
        .group_by(col(u.agent_id))
    )


def _days(table: Any, span: Window) -> list[Any]:
    return [table.day >= span.start.date(), table.day < span.end.date()]


def _daily_members_query(scope: Scope, span: Window, granularity: str, kind: AgentKind) -> Any:
    """Distinct members per (agent, bucket) from the daily member rollup (hash aggregates)."""
    m = AgentUsageDayMember
    where = _agents_of(m, scope, kind)
    pairs = (
        select(
            col(m.agent_id).label("agent_id"),
            _day_bucket(col(m.day), granularity).label("bucket"),
            col(m.user_key),
        )
        .where(
            *where,
            *_days(m, span),
            col(m.user_key) != 0,
            col(m.executions) > 0,
        )
        .distinct()
        .subquery()
    )
    return select(pairs.c.agent_id, pairs.c.bucket, sa.func.count().label("users")).group_by(
        pairs.c.agent_id, pairs.c.bucket
    )


async def agent_usage(
    session: AsyncSession, scope: Scope, window: Window, granularity: str, kind: AgentKind
) -> dict[int, AgentUsage]:
    """Usage of every agent of `kind` the scope may read over `window`: zero-filled buckets of
    `granularity` (UTC), whole buckets from the one holding the window's start to the one
    holding its end (hourly rollup for HOUR, daily rollups otherwise). Peak hours: the
    PEAK_HOURS hours of the day (UTC) with the most executions (ties: earlier hour); busiest
    days: the BUSIEST_DAYS weekdays likewise."""
    starts = bucket_starts(window, granularity)
    span = Window(starts[0], next_bucket(starts[-1], granularity))
    daily = granularity != "HOUR"
    if daily:
        totals = _daily_usage_query(scope, span, granularity, kind).subquery("t")
        members = _daily_members_query(scope, span, granularity, kind).subquery("m")
        query = select(totals, members.c.users).outerjoin(
            members,
            sa.and_(members.c.agent_id == totals.c.agent_id, members.c.bucket == totals.c.bucket),
        )
    else:
        query = _usage_query(scope, span, granularity, kind)
    rows = (await session.execute(query)).all()
    hours: dict[int, dict[int, int]] = {}
    if daily:
        for r in await session.execute(_daily_hours_query(scope, span, kind)):
            hours[r.agent_id] = {h: int(getattr(r, c) or 0) for h, c in enumerate(HOUR_COLUMNS)}
    buckets: dict[int, dict[datetime, UsagePoint]] = {}
    days: dict[int, dict[int, int]] = {}
    for r in rows:
        if not r.no_bucket:
            at = r.bucket.replace(tzinfo=UTC)
            buckets.setdefault(r.agent_id, {})[at] = UsagePoint(
                timestamp=at,
                executions=int(r.executions),
                unique_users=r.users or 0,
                credits=int(r.credits),
                errors=int(r.errors),
            )
        elif not daily and not r.no_hour:  # daily: hours come from _daily_hours_query
            hours.setdefault(r.agent_id, {})[r.hour] = int(r.executions)
        else:
            days.setdefault(r.agent_id, {})[r.dow] = int(r.executions)
    return {
        agent_id: AgentUsage(
            points=[found.get(at) or UsagePoint(timestamp=at) for at in starts],
            peak_hours=_top(hours.get(agent_id, {}), PEAK_HOURS),
            busiest_days=[WEEKDAYS[d - 1] for d in _top(days.get(agent_id, {}), BUSIEST_DAYS)],
        )
        for agent_id, found in buckets.items()
    }


def empty_usage(window: Window, granularity: str) -> AgentUsage:
    return AgentUsage(
        points=[UsagePoint(timestamp=at) for at in bucket_starts(window, granularity)],
        peak_hours=[],
        busiest_days=[],
    )


def _top(counts: dict[int, int], n: int) -> list[int]:
    return [k for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if v > 0][:n]


def usage_window(start: datetime, end: datetime) -> Window:
    """A client's range (times without a zone are UTC)."""

    def aware(at: datetime) -> datetime:
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

    return Window(aware(start), aware(end))
