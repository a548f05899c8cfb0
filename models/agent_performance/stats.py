"""Every agent's numbers over a window and the one before it (four statements, run
concurrently), ranks, trends and insights; which agents a viewer may read."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.agent_performance.insights import insights_of
from models.agent_performance.numbers import (
    AgentRanking,
    AgentStats,
    AgentStatsReport,
    AiNumbers,
    LeadNumbers,
)
from models.agent_performance.ranking import benchmarks_of, ranking, trends_of
from models.agents import Agent, AgentKind
from models.db import Database
from models.errors import NotFound
from models.periods import Window
from models.scope import Scope
from models.workspaces import Role

# ---- reads -----------------------------------------------------------------------------------

_LEADS = sa.text(
    """
SELECT agent_id, current,
       count(*) AS assigned,
       count(*) FILTER (WHERE converted_at < as_of) AS converted,
       coalesce(sum(value) FILTER (WHERE converted_at < as_of), 0) AS revenue,
       count(score) AS scored, avg(score)::float AS average_score
FROM (
    SELECT l.agent_id, l.converted_at, l.value, c.value AS score,
           l.created_at >= :start AS current,
           CASE WHEN l.created_at >= :start THEN :end ELSE :start END AS as_of
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id
    WHERE l.workspace_id = :ws AND l.created_at >= :previous_start AND l.created_at < :end
      AND l.agent_id IS NOT NULL
) l
GROUP BY 1, 2
"""
)

_RESPONSES = sa.text(
    """
SELECT agent_id, current, count(*) AS contacted,
       avg(extract(epoch FROM first_contact_at - lead_created_at))::float / 3600 AS hours
FROM (
    SELECT agent_id, lead_created_at, first_contact_at, lead_created_at >= :start AS current
    FROM lead_first_contact
    WHERE workspace_id = :ws AND lead_created_at >= :previous_start AND lead_created_at < :end
) c
WHERE first_contact_at < CASE WHEN current THEN :end ELSE :start END
GROUP BY 1, 2
"""
)

_AI = sa.text(
    """
SELECT agent_id, count(*) AS executions,
       count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED')) AS finished,
       count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED') AND success) AS succeeded,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       avg(duration_seconds)::float AS average_seconds,
       coalesce(sum(credits), 0) AS credits, avg(satisfaction)::float AS satisfaction
FROM interaction
WHERE workspace_id = :ws AND started_at >= :start AND started_at < :end
  AND channel = 'AI_EXECUTION' AND agent_id IS NOT NULL
GROUP BY 1
"""
)


def _bounds(scope: Scope, window: Window) -> dict[str, object]:
    return {
        "ws": scope.workspace_id,
        "start": window.start,
        "end": window.end,
        "previous_start": window.previous().start,
    }


async def _agents(db: Database, scope: Scope) -> list[sa.Row]:
    query = (
        select(
            col(Agent.id), col(Agent.name), col(Agent.kind), scope.agents(Agent).label("visible")
        )
        .where(scope.where(Agent))
        .order_by(col(Agent.id))
    )
    async with db.custom_plans() as session:
        return list((await session.execute(query)).all())


async def _rows(db: Database, statement: sa.TextClause, params: dict[str, object]) -> list[sa.Row]:
    async with db.custom_plans() as session:
        return list((await session.execute(statement, params)).all())


async def agent_stats(db: Database, scope: Scope, window: Window) -> AgentStatsReport:
    """Every agent of the workspace over `window` and the one before it; four statements,
    run concurrently. `visible` marks the agents the scope may read (Scope.agents)."""
    params = _bounds(scope, window)
    agents, leads, responses, ai = await asyncio.gather(
        _agents(db, scope),
        _rows(db, _LEADS, params),
        _rows(db, _RESPONSES, params),
        _rows(db, _AI, params),
    )
    numbers: dict[tuple[int, bool], LeadNumbers] = {}
    for r in leads:
        numbers[(r.agent_id, r.current)] = LeadNumbers(
            assigned=r.assigned,
            converted=r.converted,
            revenue=float(r.revenue),
            scored=r.scored,
            average_score=r.average_score,
        )
    for r in responses:
        found = numbers.setdefault((r.agent_id, r.current), LeadNumbers())
        found.contacted = r.contacted
        found.response_hours = r.hours
    runs = {
        r.agent_id: AiNumbers(
            executions=r.executions,
            finished=r.finished,
            succeeded=r.succeeded,
            failed=r.failed,
            average_seconds=r.average_seconds,
            credits=int(r.credits),
            satisfaction=r.satisfaction,
        )
        for r in ai
    }
    stats = {
        a.id: AgentStats(
            agent_id=a.id,
            name=a.name,
            kind=AgentKind(a.kind),
            visible=bool(a.visible),
            current=numbers.get((a.id, True)) or LeadNumbers(),
            previous=numbers.get((a.id, False)) or LeadNumbers(),
            ai=(runs.get(a.id) or AiNumbers()) if a.kind == AgentKind.AI else None,
        )
        for a in agents
    }
    benchmarks = {
        kind: benchmarks_of([s for s in stats.values() if s.kind is kind]) for kind in AgentKind
    }
    for kind in AgentKind:
        ordered = ranking(
            [s for s in stats.values() if s.kind is kind], AgentRanking.CONVERSION_RATE
        )
        for position, s in enumerate(ordered, start=1):
            s.rank = position
            s.ranked = len(ordered)
            s.percentile = round(100 * (len(ordered) - position) / len(ordered), 1)
    for s in stats.values():
        s.trends = trends_of(s.current, s.previous)
        s.insights = insights_of(s, benchmarks[s.kind])
    return AgentStatsReport(window=window, agents=stats, benchmarks=benchmarks)


# ---- one agent -------------------------------------------------------------------------------


async def visible_agent(session: AsyncSession, scope: Scope, agent_id: int) -> Agent:
    """An agent the viewer may read (Scope.agents), else NOT_FOUND (also for other tenants')."""
    found = (
        (await session.execute(select(Agent).where(scope.agents(Agent), Agent.id == agent_id)))
        .scalars()
        .first()
    )
    if found is None:
        raise NotFound("Agent not found", agentId=str(agent_id))
    return found


def may_read(scope: Scope, workspace_id: int, owner_id: int | None, user_id: int | None) -> bool:
    """Scope.agents for an agent row already loaded: ADMIN every agent of the workspace, USER
    the agents they own, AGENT themselves (tests check it against the SQL rule)."""
    if workspace_id != scope.workspace_id:
        return False
    if scope.role is Role.USER:
        return owner_id == scope.user_id
    if scope.role is Role.AGENT:
        return user_id == scope.user_id
    return True
