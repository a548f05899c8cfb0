"""The sales performance overview (seed 000 "Get Performance Overview"): lead generation,
quality, conversion, engagement and their trends over a period, and the workspace's alert
thresholds (`performance_threshold`) the overview's alerts compare against.

Rules (README "Performance overview"), for a window W = [now - period, now) and the window
of the same length before it:
- total leads: leads created in W; active: of those, not WON or LOST now; converted: leads
  WON in W (`converted_at` in W); conversion rate = converted / total (conversions per new
  lead, the seed's arithmetic; 0 when no lead was created).
- average lead score: mean current score of W's scored leads; high value: score >= 80;
  qualified: now at QUALIFIED or beyond (QUALIFIED, SHOWING, OFFER, WON).
- response time: median hours from a lead's creation to its first call or email sent within
  14 days (the `lead_engagement` rollup), over W's leads that got one.
- engagement: events in W; email open rate = EMAIL_OPENED / EMAIL_SENT, response rate =
  EMAIL_REPLIED / EMAIL_SENT, meeting booked rate = MEETING / (EMAIL_SENT + CALL).
- trends: per UTC hour (H1, H24) or day (D7, D30) of W, the conversion rate and the average
  score of the bucket's new leads.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.agents import Agent
from models.audit import AuditLog
from models.db import TZ, Database, stamped, utcnow
from models.errors import Forbidden, Validator
from models.leads import Lead, LeadEngagement, LeadEvent, LeadStage
from models.periods import Window, check_period, rate, window
from models.scope import Scope

# the seed's periods (1h, 24h, 7d, 30d); longer windows are the other fields' business
PERFORMANCE_PERIODS = ("H1", "H24", "D7", "D30")
HOURLY = ("H1", "H24")
HIGH_VALUE_SCORE = 80
QUALIFIED_STAGES = (LeadStage.QUALIFIED, LeadStage.SHOWING, LeadStage.OFFER, LeadStage.WON)
CLOSED_STAGES = (LeadStage.WON, LeadStage.LOST)
ENGAGEMENT_TYPES = ("EMAIL_SENT", "EMAIL_OPENED", "EMAIL_REPLIED", "MEETING", "CALL")
HOUR = timedelta(hours=1)


class LeadEventHour(SQLModel, table=True):
    """Lead events per workspace, UTC hour and type. Kept by triggers on `lead_event`
    (migration 0013); the engagement rates of whole-workspace reads sum it."""

    __tablename__ = "lead_event_hour"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    hour: datetime = Field(primary_key=True, sa_type=TZ)
    type: str = Field(primary_key=True, max_length=24)
    events: int


class PerformanceThreshold(SQLModel, table=True):
    """A workspace's alert thresholds for the performance overview; no row means the
    defaults; a null threshold is switched off."""

    __tablename__ = "performance_threshold"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    min_conversion_rate: float | None = 0.05
    max_response_time_hours: float | None = 3.0
    # scores are 100 x the conversion probability: what is "good" depends on the workspace
    min_average_lead_score: float | None = None
    min_email_open_rate: float | None = 0.2
    min_lead_growth: float | None = -0.2
    # a metric this much worse (relative) than in the previous window raises a TREND alert
    max_change: float = 0.15
    updated_at: datetime = stamped()
    updated_by: int | None = None


# ---- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    key: str
    leads: int
    converted: int

    @property
    def rate(self) -> float:
        return rate(self.converted, self.leads)


@dataclass(frozen=True, slots=True)
class AgentRate:
    agent: Agent
    leads: int
    converted: int

    @property
    def rate(self) -> float:
        return rate(self.converted, self.leads)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    at: datetime
    leads: int
    converted: int
    scored: int
    score_sum: int

    @property
    def rate(self) -> float:
        return rate(self.converted, self.leads)

    @property
    def score(self) -> float:
        return rate(self.score_sum, self.scored)


@dataclass(slots=True)
class WindowNumbers:
    """The numbers of one window that alerts compare with the previous window's."""

    leads: int = 0
    active: int = 0
    converted: int = 0
    scored: int = 0
    score_sum: int = 0
    high_value: int = 0
    qualified: int = 0
    responded: int = 0
    response_hours: float = 0.0  # the median
    events: dict[str, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float:
        return rate(self.converted, self.leads)

    @property
    def average_score(self) -> float:
        return rate(self.score_sum, self.scored)

    def event_rate(self, part: str, *whole: str) -> float:
        return rate(self.events.get(part, 0), sum(self.events.get(w, 0) for w in whole))


@dataclass(frozen=True, slots=True)
class Alert:
    type: str  # THRESHOLD or TREND
    severity: str  # CRITICAL or WARNING
    metric: str
    message: str
    threshold: float
    current: float
    previous: float | None
    change: float | None


@dataclass(slots=True)
class Performance:
    period: str
    window: Window
    current: WindowNumbers
    previous: WindowNumbers
    daily: int
    weekly: int
    monthly: int
    by_source: list[Rate]
    by_agent: list[AgentRate]
    trend: list[TrendPoint]
    thresholds: PerformanceThreshold
    alerts: list[Alert]

    @property
    def growth(self) -> float:
        """New leads of this window against the previous one, relative (0: none before)."""
        return rate(self.current.leads - self.previous.leads, self.previous.leads)


# ---- reads ---------------------------------------------------------------------------------


def _trunc(unit: str, column: Any) -> Any:
    # literal unit and zone: the same expression must render identically in GROUP BY
    return sa.func.date_trunc(sa.literal_column(f"'{unit}'"), column, sa.literal_column("'UTC'"))


def _grouped(base: Any, *measures: Any) -> Any:
    """Aggregates of `base` (cur, bucket, source, agent_id, ...) per (cur, bucket),
    (cur, source) and (cur, agent_id) at once; `kind` tells the grouping apart."""
    c = base.c
    return sa.select(
        sa.func.grouping(c.bucket, c.source, c.agent_id).label("kind"),
        c.cur,
        c.bucket,
        c.source,
        c.agent_id,
        *measures,
    ).group_by(
        sa.func.grouping_sets(
            sa.tuple_(c.cur, c.bucket), sa.tuple_(c.cur, c.source), sa.tuple_(c.cur, c.agent_id)
        )
    )


BY_BUCKET, BY_SOURCE, BY_AGENT = 3, 5, 6  # grouping() of the three sets


async def _cohort(db: Database, scope: Scope, w: Window, unit: str) -> list[Any]:
    """Leads created in the window and the one before: counts, stages and scores."""
    span = w.previous().start
    base = (
        sa.select(
            (col(Lead.created_at) >= w.start).label("cur"),
            _trunc(unit, Lead.created_at).label("bucket"),
            col(Lead.source),
            col(Lead.agent_id),
            col(Lead.stage),
            col(Lead.score),
        )
        .where(scope.leads(Lead), col(Lead.created_at) >= span, col(Lead.created_at) < w.end)
        .subquery("l")
    )
    c = base.c
    query = _grouped(
        base,
        sa.func.count().label("leads"),
        sa.func.count().filter(c.stage.not_in([s.value for s in CLOSED_STAGES])).label("active"),
        sa.func.count(c.score).label("scored"),
        sa.func.coalesce(sa.func.sum(c.score), 0).label("score_sum"),
        sa.func.count().filter(c.score >= HIGH_VALUE_SCORE).label("high_value"),
        sa.func.count().filter(c.stage.in_([s.value for s in QUALIFIED_STAGES])).label("qualified"),
    )
    async with db.session() as session:
        return list((await session.execute(query)).all())


async def _conversions(db: Database, scope: Scope, w: Window, unit: str) -> list[Any]:
    """Leads WON in the window and the one before (the partial index on `converted_at`)."""
    span = w.previous().start
    base = (
        sa.select(
            (col(Lead.converted_at) >= w.start).label("cur"),
            _trunc(unit, Lead.converted_at).label("bucket"),
            col(Lead.source),
            col(Lead.agent_id),
        )
        .where(
            scope.leads(Lead),
            col(Lead.stage) == LeadStage.WON.value,
            col(Lead.converted_at) >= span,
            col(Lead.converted_at) < w.end,
        )
        .subquery("l")
    )
    async with db.session() as session:
        return list((await session.execute(_grouped(base, sa.func.count().label("n")))).all())


async def _response_hours(db: Database, scope: Scope, w: Window) -> dict[bool, tuple[int, float]]:
    """Per window (True: current): leads with a first response and the median hours to it."""
    G = LeadEngagement
    cohort = (
        sa.select(col(Lead.id), col(Lead.created_at))
        .where(
            scope.leads(Lead),
            col(Lead.created_at) >= w.previous().start,
            col(Lead.created_at) < w.end,
        )
        .cte("c")
        .prefix_with("MATERIALIZED")
    )
    hours = sa.extract("epoch", col(G.first_response_at) - cohort.c.created_at) / 3600.0
    # the cohort's id range bounds the rollup's key range (leads get ids in creation order,
    # so the range is tight): one range scan and a hash join instead of a probe per lead
    query = (
        sa.select(
            (cohort.c.created_at >= w.start).label("cur"),
            sa.func.count(),
            sa.func.percentile_cont(0.5).within_group(hours),
        )
        .select_from(cohort)
        .join(
            G,
            sa.and_(
                col(G.workspace_id) == scope.workspace_id,
                col(G.lead_id) == cohort.c.id,
                col(G.lead_id) >= sa.select(sa.func.min(cohort.c.id)).scalar_subquery(),
                col(G.lead_id) <= sa.select(sa.func.max(cohort.c.id)).scalar_subquery(),
            ),
        )
        .where(col(G.first_response_at).is_not(None))
        .group_by(sa.text("1"))
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return {bool(cur): (int(n), float(median or 0.0)) for cur, n, median in rows}


def _ragged(points: list[datetime]) -> tuple[list[tuple[datetime, datetime]], set[datetime]]:
    """Hours the rollup cannot answer (they hold a window boundary) as raw ranges, clipped
    to [first point, last point), and the set of those hours' starts."""
    lo, hi = points[0], points[-1]
    ranges, hours = [], set()
    for p in points:
        floor = p.replace(minute=0, second=0, microsecond=0)
        if floor == p:
            continue
        hours.add(floor)
        ranges.append((max(floor, lo), min(floor + HOUR, hi)))
    return ranges, hours


async def _events(db: Database, scope: Scope, w: Window) -> dict[bool, dict[str, int]]:
    """Engagement events per window (True: current) and type."""
    start, split, end = w.previous().start, w.start, w.end
    out: dict[bool, dict[str, int]] = {True: {}, False: {}}
    E = LeadEvent
    if scope.is_admin:
        # whole hours from the rollup, the hours holding a boundary from the events
        ranges, ragged = _ragged([start, split, end])
        R = LeadEventHour
        rolled = sa.select(
            col(R.type), (col(R.hour) >= split).label("cur"), sa.func.sum(col(R.events))
        ).where(
            col(R.workspace_id) == scope.workspace_id,
            col(R.type).in_(ENGAGEMENT_TYPES),
            col(R.hour) >= start,
            col(R.hour) < end,
            col(R.hour).not_in(list(ragged)) if ragged else sa.true(),
        )
        queries = [rolled.group_by(sa.text("1, 2"))]
        for lo, hi in ranges:
            queries.append(
                sa.select(col(E.type), (col(E.occurred_at) >= split).label("cur"), sa.func.count())
                .where(
                    col(E.workspace_id) == scope.workspace_id,
                    col(E.type).in_(ENGAGEMENT_TYPES),
                    col(E.occurred_at) >= lo,
                    col(E.occurred_at) < hi,
                )
                .group_by(sa.text("1, 2"))
            )
    else:
        queries = [
            sa.select(col(E.type), (col(E.occurred_at) >= split).label("cur"), sa.func.count())
            .join(
                Lead,
                sa.and_(col(Lead.workspace_id) == E.workspace_id, col(Lead.id) == col(E.lead_id)),
            )
            .where(
                scope.leads(Lead),
                # every event write keeps last_activity_at >= its time: only the leads active
                # since the span's start are looked into (their events by ix_lead_event_lead)
                col(Lead.last_activity_at) >= start,
                col(E.workspace_id) == scope.workspace_id,
                col(E.type).in_(ENGAGEMENT_TYPES),
                col(E.occurred_at) >= start,
                col(E.occurred_at) < end,
            )
            .group_by(sa.text("1, 2"))
        ]
    async with db.session() as session:
        for query in queries:
            for type_, cur, n in (await session.execute(query)).all():
                bucket = out[bool(cur)]
                bucket[type_] = bucket.get(type_, 0) + int(n)
    return out


async def _generation(db: Database, scope: Scope, end: datetime) -> tuple[int, int, int]:
    """New leads in the last day, 7 days and 30 days."""
    created = col(Lead.created_at)
    query = sa.select(
        sa.func.count().filter(created >= end - timedelta(days=1)),
        sa.func.count().filter(created >= end - timedelta(days=7)),
        sa.func.count(),
    ).where(scope.leads(Lead), created >= end - timedelta(days=30), created < end)
    async with db.session() as session:
        daily, weekly, monthly = (await session.execute(query)).one()
    return int(daily), int(weekly), int(monthly)


async def _agents_and_thresholds(
    db: Database, scope: Scope
) -> tuple[dict[int, Agent], PerformanceThreshold]:
    """The workspace's agents (a lead's agent is visible to whoever sees the lead) and its
    alert thresholds."""
    async with db.session() as session:
        rows = (await session.execute(select(Agent).where(scope.where(Agent)))).scalars()
        agents = {row.id: row for row in rows if row.id is not None}
        return agents, await load_thresholds(session, scope.workspace_id)


async def load_thresholds(session: AsyncSession, workspace_id: int) -> PerformanceThreshold:
    row = await session.get(PerformanceThreshold, workspace_id)
    return row if row is not None else PerformanceThreshold(workspace_id=workspace_id)


def _buckets(w: Window, unit: str) -> list[datetime]:
    step = HOUR if unit == "hour" else timedelta(days=1)
    at = w.start.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        at = at.replace(hour=0)
    out = []
    while at < w.end:
        out.append(at)
        at += step
    return out


async def sales_performance(
    db: Database, scope: Scope, period: str, now: datetime | None = None
) -> Performance:
    """The overview of `period` for the viewer's leads; its reads run at once, each on a
    connection of its own."""
    check_period(period, PERFORMANCE_PERIODS)
    w = window(period, now)
    unit = "hour" if period in HOURLY else "day"
    cohort, won, responses, events, generation, (names, thresholds) = await asyncio.gather(
        _cohort(db, scope, w, unit),
        _conversions(db, scope, w, unit),
        _response_hours(db, scope, w),
        _events(db, scope, w),
        _generation(db, scope, w.end),
        _agents_and_thresholds(db, scope),
    )
    numbers = {True: WindowNumbers(), False: WindowNumbers()}
    sources: dict[str, list[int]] = {}
    agents: dict[int, list[int]] = {}
    buckets: dict[datetime, list[int]] = {b: [0, 0, 0, 0] for b in _buckets(w, unit)}
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
            (AgentRate(names[a], leads, conv) for a, (leads, conv) in agents.items() if a in names),
            key=lambda a: (-a.converted, -a.leads, a.agent.id or 0),
        ),
        trend=[TrendPoint(at, *counts) for at, counts in sorted(buckets.items())],
        thresholds=thresholds,
        alerts=[],
    )
    result.alerts = performance_alerts(result)
    return result


# ---- alerts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One watched metric: its value in a window (None: no data to judge), which way is
    bad, and the threshold column; messages show values in `unit`."""

    metric: str
    label: str
    column: str
    higher_is_worse: bool
    value: Any  # (Performance, WindowNumbers) -> float | None
    unit: str = ""
    trend: bool = True

    def show(self, value: float) -> str:
        if self.unit == "%":
            return f"{value * 100:.1f}%"
        return f"{value:.1f}{self.unit}"


def _with(sample: int, value: float) -> float | None:
    return value if sample > 0 else None


ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "conversionRate",
        "Conversion rate",
        "min_conversion_rate",
        False,
        lambda p, n: _with(n.leads, n.conversion_rate),
        "%",
    ),
    AlertRule(
        "responseTimeHours",
        "Response time",
        "max_response_time_hours",
        True,
        lambda p, n: _with(n.responded, n.response_hours),
        " h",
    ),
    AlertRule(
        "averageLeadScore",
        "Average lead score",
        "min_average_lead_score",
        False,
        lambda p, n: _with(n.scored, n.average_score),
    ),
    AlertRule(
        "emailOpenRate",
        "Email open rate",
        "min_email_open_rate",
        False,
        lambda p, n: _with(
            n.events.get("EMAIL_SENT", 0), n.event_rate("EMAIL_OPENED", "EMAIL_SENT")
        ),
        "%",
    ),
    AlertRule(
        "leadGrowth",
        "Lead growth",
        "min_lead_growth",
        False,
        lambda p, n: _with(p.previous.leads, p.growth) if n is p.current else None,
        "%",
        trend=False,
    ),
)


def performance_alerts(p: Performance) -> list[Alert]:
    """THRESHOLD (CRITICAL): the window's value is on the wrong side of its configured
    threshold. TREND (WARNING): it is worse than the previous window's by at least
    `max_change`, relative. Metrics without data in a window raise nothing."""
    out: list[Alert] = []
    for rule in ALERT_RULES:
        current = rule.value(p, p.current)
        if current is None:
            continue
        previous = rule.value(p, p.previous) if rule.trend else None
        change = (current - previous) / previous if previous else None
        limit = getattr(p.thresholds, rule.column)
        if limit is not None and (current > limit if rule.higher_is_worse else current < limit):
            side = "above" if rule.higher_is_worse else "below"
            out.append(
                Alert(
                    "THRESHOLD",
                    "CRITICAL",
                    rule.metric,
                    f"{rule.label} {rule.show(current)} is {side} the {rule.show(limit)} threshold",
                    limit,
                    current,
                    previous,
                    change,
                )
            )
        worse = None if change is None else (change if rule.higher_is_worse else -change)
        if worse is not None and worse >= p.thresholds.max_change - 1e-12:
            verb = "increased" if change is not None and change > 0 else "decreased"
            out.append(
                Alert(
                    "TREND",
                    "WARNING",
                    rule.metric,
                    f"{rule.label} {verb} by {abs(change or 0) * 100:.0f}% "
                    f"({rule.show(current)} vs {rule.show(previous or 0.0)})",
                    p.thresholds.max_change,
                    current,
                    previous,
                    change,
                )
            )
    return out


# ---- thresholds ----------------------------------------------------------------------------


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


async def update_thresholds(
    session: AsyncSession, scope: Scope, changes: Mapping[str, float | None]
) -> PerformanceThreshold:
    """Apply `changes` ({path: value, None switches a threshold off}); validated first, then
    upserted in the caller's transaction; ADMIN only; audited."""
    if not scope.is_admin:
        raise Forbidden("Only workspace admins change performance thresholds")
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
    await session.execute(
        insert(PerformanceThreshold)
        .values(**_defaults(scope.workspace_id))
        .on_conflict_do_nothing(index_elements=["workspace_id"])
    )
    row = await session.get(
        PerformanceThreshold, scope.workspace_id, with_for_update=True, populate_existing=True
    )
    assert row is not None
    diff: dict[str, Any] = {}
    for path, value in changes.items():
        column = THRESHOLD_SETTINGS[path].column
        before = getattr(row, column)
        if before != value:
            diff[path] = {"from": before, "to": value}
            setattr(row, column, value)
    if diff:
        row.updated_at, row.updated_by = utcnow(), scope.user_id
        session.add(row)
        session.add(
            AuditLog(
                workspace_id=scope.workspace_id,
                actor_id=scope.user_id,
                action="performance_thresholds.updated",
                target_type="performance_threshold",
                target_id=str(scope.workspace_id),
                details={"changes": diff},
            )
        )
        await session.flush()
    return row


def _defaults(workspace_id: int) -> dict[str, Any]:
    defaults = PerformanceThreshold(workspace_id=workspace_id)
    return {
        c.name: getattr(defaults, c.name)
        for c in PerformanceThreshold.__table__.columns  # type: ignore[attr-defined]
    }
