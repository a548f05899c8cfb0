"""`sales_performance`: the overview of a period, assembled from the reads (run at once) and
judged by the alert rules."""

from __future__ import annotations

import asyncio
from datetime import datetime

from models.db import Database
from models.periods import bucket_starts, check_period, window
from models.sales_performance import queries
from models.sales_performance.alerts import performance_alerts
from models.sales_performance.numbers import (
    HOURLY,
    PERFORMANCE_PERIODS,
    Performance,
    Rate,
    TrendPoint,
    WindowNumbers,
)
from models.sales_performance.queries import BY_AGENT, BY_BUCKET, BY_SOURCE
from models.scope import Scope


async def sales_performance(
    db: Database, scope: Scope, period: str, now: datetime | None = None
) -> Performance:
    """The overview of `period` for the viewer's leads; its reads run at once, each on a
    connection of its own."""
    check_period(period, PERFORMANCE_PERIODS)
    w = window(period, now)
    unit = "hour" if period in HOURLY else "day"
    cohort, won, responses, events, generation, (names, thresholds) = await asyncio.gather(
        queries.cohort(db, scope, w, unit),
        queries.conversions(db, scope, w, unit),
        queries.response_hours(db, scope, w),
        queries.events(db, scope, w),
        queries.generation(db, scope, w.end),
        queries.agents_and_thresholds(db, scope),
    )
    numbers = {True: WindowNumbers(), False: WindowNumbers()}
    # current window only: [new leads, converted] per source / agent id, and
    # [new leads, converted, scored, score sum] per trend bucket
    sources: dict[str, list[int]] = {}
    agents: dict[int, list[int]] = {}
    buckets: dict[datetime, list[int]] = {b: [0, 0, 0, 0] for b in bucket_starts(w, unit)}
    for r in cohort:
        if r.kind == BY_BUCKET:
            n = numbers[bool(r.cur)]
            n.leads += r.leads
            n.active += r.active
            n.scored += r.scored
            n.score_sum += int(r.score_sum)
            n.high_value += r.high_value
            n.qualified += r.qualified
            if r.cur and r.bucket in buckets:
                buckets[r.bucket][0] += r.leads
                buckets[r.bucket][2] += r.scored
                buckets[r.bucket][3] += int(r.score_sum)
        elif r.cur and r.kind == BY_SOURCE:
            sources.setdefault(r.source, [0, 0])[0] += r.leads
        elif r.cur and r.kind == BY_AGENT and r.agent_id is not None:
            agents.setdefault(r.agent_id, [0, 0])[0] += r.leads
    for r in won:
        if r.kind == BY_BUCKET:
            numbers[bool(r.cur)].converted += r.n
            if r.cur and r.bucket in buckets:
                buckets[r.bucket][1] += r.n
        elif r.cur and r.kind == BY_SOURCE:
            sources.setdefault(r.source, [0, 0])[1] += r.n
        elif r.cur and r.kind == BY_AGENT and r.agent_id is not None:
            agents.setdefault(r.agent_id, [0, 0])[1] += r.n
    for cur, n in numbers.items():
        n.responded, n.response_hours = responses.get(cur, (0, 0.0))
        n.events = events[cur]
    daily, weekly, monthly = generation
    result = Performance(
        period=period,
        window=w,
        current=numbers[True],
        previous=numbers[False],
        daily=daily,
        weekly=weekly,
        monthly=monthly,
        by_source=sorted(
            (Rate(k, leads, conv) for k, (leads, conv) in sources.items()),
            key=lambda s: (-s.leads, s.key),
        ),
        by_agent=sorted(
            (Rate(names[a], leads, conv) for a, (leads, conv) in agents.items() if a in names),
            key=lambda a: (-a.converted, -a.leads, a.key.id or 0),
        ),
        trend=[TrendPoint(at, *counts) for at, counts in sorted(buckets.items())],
        thresholds=thresholds,
        alerts=[],
    )
    result.alerts = performance_alerts(result)
    return result
