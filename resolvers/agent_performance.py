"""Agent analytics: the types and resolvers behind `Agent.performance`, `Agent.usage`,
`Workspace.agent` and `Workspace.agentLeaderboard` (numbers from models/agent_performance.py).

Every agent's numbers for a (viewer scope, period) come from one cached computation
(`("agentStats", period)`), from which each `Agent.performance` picks its row: a list of agents
costs the same few statements as one agent. Usage likewise (`("agentUsage", ...)`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry

from models import agent_performance as ap
from models.agent_performance import AgentRanking, TrendLabel
from models.agents import AgentKind
from models.periods import window
from models.scope import Scope
from resolvers.context import Info
from resolvers.enums import Granularity, Period
from resolvers.ids import parse_id

if TYPE_CHECKING:
    from resolvers.agents import Agent

strawberry.enum(
    TrendLabel,
    name="AgentTrendLabel",
    description="This window against the one before it: IMPROVING / DECLINING when the number "
    "moved by more than 5% of its previous value in the better / worse direction (response "
    "time: lower is better), STABLE within that band or when either window has no value",
)
strawberry.enum(
    AgentRanking,
    description="CONVERSION_RATE (higher first), REVENUE (higher first), RESPONSE_TIME (lower "
    "first); ties: more converted (response time: more leads contacted), then the lower id",
)

_STATS_DESCRIPTION = (
    "A window's leads of an agent: leads created in the window assigned to the agent now. Each "
    "window counts what had happened by its end (the current one: now)."
)


@strawberry.type(description="Trend labels, this window against the one before it")
class AgentTrends:
    conversion: TrendLabel = strawberry.field(description="Conversion rate")
    response_time: TrendLabel = strawberry.field(description="Average response time")
    lead_quality: TrendLabel = strawberry.field(description="Average current score of the leads")


@strawberry.type(description=_STATS_DESCRIPTION)
class AgentPerformance:
    window_start: datetime
    window_end: datetime
    leads_assigned: int = strawberry.field(
        description="Leads created in the window whose agent is this one (assignments carry no "
        "time of their own, so a lead counts at its creation)"
    )
    leads_converted: int = strawberry.field(
        description="Of those, the ones won (`convertedAt`) by the window's end"
    )
    conversion_rate: float = strawberry.field(description="leadsConverted / leadsAssigned, 0..1")
    leads_contacted: int = strawberry.field(
        description="Of the window's leads (created in it, whoever they are assigned to), those "
        "this agent made a CALL, EMAIL_SENT or MEETING on by the window's end"
    )
    average_response_time_hours: float | None = strawberry.field(
        description="Mean hours from a lead's creation to this agent's first CALL, EMAIL_SENT "
        "or MEETING event on it, over leadsContacted; null without any"
    )
    average_lead_score: float | None = strawberry.field(
        description="Mean current score (1..99) of the assigned leads; null if none is scored"
    )
    revenue_generated: float = strawberry.field(
        description="Sum of `value` of the converted leads (dollars)"
    )
    executions: int | None = strawberry.field(
        description="AI agents: AI_EXECUTION interactions started in the window; null for humans"
    )
    success_rate: float | None = strawberry.field(
        description="AI agents: successful / finished (COMPLETED or FAILED) executions, 0..1"
    )
    average_execution_seconds: float | None = strawberry.field(
        description="AI agents: mean duration of the executions"
    )
    error_rate: float | None = strawberry.field(
        description="AI agents: FAILED (with an error) / finished executions, 0..1"
    )
    credits_consumed: int | None = strawberry.field(
        description="AI agents: credits of the executions"
    )
    satisfaction: float | None = strawberry.field(
        description="AI agents: mean user satisfaction (1..5) of the rated executions"
    )
    rank: int | None = strawberry.field(
        description="By conversion rate among ALL the workspace's agents of the same kind with "
        "leads in the window (whatever the viewer may see); null without leads"
    )
    ranked_agents: int = strawberry.field(description="How many agents the rank is among")
    percentile: float | None = strawberry.field(
        description="Share of the ranked agents ranked below this one, 0..100 (rank 1 of 20: 95)"
    )
    trends: AgentTrends
    insights: list[str] = strawberry.field(
        description="Sentences from a fixed rule registry over these numbers and the "
        "workspace's benchmarks of the same kind"
    )

    @classmethod
    def from_model(cls, s: ap.AgentStats, w: ap.AgentStatsReport) -> Self:
        n, ai = s.current, s.ai
        return cls(
            window_start=w.window.start,
            window_end=w.window.end,
            leads_assigned=n.assigned,
            leads_converted=n.converted,
            conversion_rate=n.conversion_rate,
            leads_contacted=n.contacted,
            average_response_time_hours=n.response_hours,
            average_lead_score=n.average_score,
            revenue_generated=n.revenue,
            executions=ai.executions if ai else None,
            success_rate=ai.success_rate if ai else None,
            average_execution_seconds=ai.average_seconds if ai else None,
            error_rate=ai.error_rate if ai else None,
            credits_consumed=ai.credits if ai else None,
            satisfaction=ai.satisfaction if ai else None,
            rank=s.rank,
            ranked_agents=s.ranked,
            percentile=s.percentile,
            trends=AgentTrends(
                conversion=s.trends.conversion,
                response_time=s.trends.response_time,
                lead_quality=s.trends.lead_quality,
            ),
            insights=list(s.insights),
        )


@strawberry.type
class AgentUsagePoint:
    timestamp: datetime = strawberry.field(description="Start of the bucket (UTC)")
    executions: int = strawberry.field(description="Interactions started in the bucket")
    unique_users: int = strawberry.field(
        description="Distinct members they ran for (interaction.userId; a human agent's own)"
    )
    credits: int
    errors: int = strawberry.field(description="FAILED ones")


@strawberry.type(
    description="AI agents: their AI_EXECUTION interactions; human agents: their interactions "
    "of every channel (calls, chats, emails). Buckets in UTC, zero-filled"
)
class AgentUsage:
    points: list[AgentUsagePoint]
    peak_hours: list[int] = strawberry.field(
        description="The 3 hours of the day (0..23, UTC) with the most executions, most first"
    )
    busiest_days: list[str] = strawberry.field(
        description="The 2 weekdays (Monday..Sunday, UTC) with the most executions, most first"
    )

    @classmethod
    def from_model(cls, u: ap.AgentUsage) -> Self:
        return cls(
            points=[
                AgentUsagePoint(
                    timestamp=p.timestamp,
                    executions=p.executions,
                    unique_users=p.unique_users,
                    credits=p.credits,
                    errors=p.errors,
                )
                for p in u.points
            ],
            peak_hours=list(u.peak_hours),
            busiest_days=list(u.busiest_days),
        )


@strawberry.input(description="[start, end); times without a zone are UTC")
class AgentUsageRange:
    start: datetime
    end: datetime


@strawberry.type
class AgentLeaderboardEntry:
    rank: int = strawberry.field(description="Among all the workspace's agents (of `kind`)")
    agent: Annotated[Agent, strawberry.lazy("resolvers.agents")]
    value: float = strawberry.field(
        description="The ranking's number: conversion rate 0..1, revenue in dollars, or hours"
    )
    change: int | None = strawberry.field(
        description="Rank in the previous window minus rank now (positive: moved up); null if "
        "not ranked then"
    )


@strawberry.type(
    description="Means over the ranked agents (with leads in the window; response time: with "
    "a contacted lead) of the workspace, of `kind` if given, whatever the viewer may see"
)
class AgentBenchmarks:
    average_conversion_rate: float
    average_response_time_hours: float | None
    top_performer_conversion_rate: float


@strawberry.type
class AgentLeaderboard:
    entries: list[AgentLeaderboardEntry] = strawberry.field(
        description="Best first; only the agents the viewer may see (ADMIN all, USER own, "
        "AGENT self), with their workspace-wide ranks"
    )
    ranked_agents: int = strawberry.field(description="Agents ranked in the workspace")
    benchmarks: AgentBenchmarks
    window_start: datetime
    window_end: datetime


# ---- field functions ---------------------------------------------------------------------------


async def agent_stats(info: Info, scope: Scope, period: Period) -> ap.AgentStatsReport:
    db = info.context.db
    return await info.context.cached(
        scope,
        ("agentStats", period.value),
        lambda: ap.agent_stats(db, scope, window(period.value)),
    )


async def performance_field(
    info: Info, scope: Scope, agent_id: int, period: Period
) -> AgentPerformance | None:
    report = await agent_stats(info, scope, period)
    found = report.agents.get(agent_id)
    if found is None or not found.visible:
        return None
    return AgentPerformance.from_model(found, report)


async def usage_field(
    info: Info,
    scope: Scope,
    agent_id: int,
    kind: AgentKind,
    readable: bool,
    granularity: Granularity,
    period: Period,
    range: AgentUsageRange | None,
) -> AgentUsage | None:
    if range is not None:
        span = ap.usage_window(range.start, range.end)
        key: object = (span.start, span.end)
    else:
        span, key = window(period.value), period.value
    ap.bucket_starts(span, granularity.value)  # BAD_USER_INPUT before anything runs
    if not readable:
        return None

    async def compute() -> dict[int, ap.AgentUsage]:
        async with info.context.db.custom_plans() as session:
            return await ap.agent_usage(session, scope, span, granularity.value, kind)

    # one computation for all the agents of the kind (a list of agents is one statement)
    found = await info.context.cached(
        scope, ("agentUsage", kind.value, granularity.value, key), compute
    )
    usage = found.get(agent_id) or ap.empty_usage(span, granularity.value)
    return AgentUsage.from_model(usage)


async def leaderboard_field(
    info: Info,
    scope: Scope,
    by: AgentRanking,
    period: Period,
    kind: AgentKind | None,
    limit: int,
) -> AgentLeaderboard:
    from resolvers.agents import Agent

    ap.check_limit(limit)
    report = await agent_stats(info, scope, period)
    board = ap.leaderboard(report, by, kind, limit)
    loader = info.context.loaders(scope).agent_by_id
    rows = await loader.load_many([e.agent_id for e in board.entries])
    return AgentLeaderboard(
        entries=[
            AgentLeaderboardEntry(
                rank=e.rank, agent=Agent.from_row(row, scope), value=e.value, change=e.change
            )
            for e, row in zip(board.entries, rows, strict=True)
            if row is not None
        ],
        ranked_agents=board.ranked,
        benchmarks=AgentBenchmarks(
            average_conversion_rate=board.benchmarks.average_conversion_rate,
            average_response_time_hours=board.benchmarks.average_response_time_hours,
            top_performer_conversion_rate=board.benchmarks.top_performer_conversion_rate,
        ),
        window_start=report.window.start,
        window_end=report.window.end,
    )


async def agent_field(info: Info, scope: Scope, id: strawberry.ID) -> Agent:
    from resolvers.agents import Agent

    agent_id = parse_id(id, "id")
    async with info.context.db.session() as session:
        row = await ap.visible_agent(session, scope, agent_id)
    return Agent.from_row(row, scope)
