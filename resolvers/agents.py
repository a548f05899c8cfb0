"""Agents (human and AI): the type and its resolvers."""

from __future__ import annotations

from datetime import datetime, time
from typing import Self

import strawberry

from models import agents
from models.agent_performance import may_read
from models.agents import AgentKind, AgentStatus
from models.scope import Scope
from resolvers.agent_performance import (
    AgentPerformance,
    AgentUsage,
    AgentUsageRange,
    performance_field,
    usage_field,
)
from resolvers.context import Info
from resolvers.enums import Granularity, Period

strawberry.enum(AgentKind, description="HUMAN agents are members; AI agents run on their own")
strawberry.enum(AgentStatus)


@strawberry.type
class Agent:
    id: strawberry.ID
    name: str
    kind: AgentKind
    status: AgentStatus
    training_level: int
    personality: str | None
    working_hours_start: time | None
    working_hours_end: time | None
    created_at: datetime
    workspace_id: strawberry.Private[int]
    owner_id: strawberry.Private[int | None]
    user_id: strawberry.Private[int | None]
    # the viewer's scope where the caller knows it; else taken from the context by workspace
    scope: strawberry.Private[Scope | None] = None

    @classmethod
    def from_row(cls, row: agents.Agent, scope: Scope | None = None) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            kind=AgentKind(row.kind),
            status=AgentStatus(row.status),
            training_level=row.training_level,
            personality=row.personality,
            working_hours_start=row.working_hours_start,
            working_hours_end=row.working_hours_end,
            created_at=row.created_at,
            workspace_id=row.workspace_id,
            owner_id=row.owner_id,
            user_id=row.user_id,
            scope=scope,
        )

    async def _scope(self, info: Info) -> Scope:
        if self.scope is None:
            self.scope = await info.context.scope(str(self.workspace_id))
        return self.scope

    @strawberry.field(
        description="Leads, conversions, response time, lead quality and revenue over `period` "
        "(with executions, success, errors, credits and satisfaction for AI agents), rank, "
        "percentile, trends and insights. Null where the viewer may not read this agent's "
        "numbers (ADMIN: every agent; USER: the agents they own; AGENT: themselves)"
    )
    async def performance(self, info: Info, period: Period = Period.D30) -> AgentPerformance | None:
        return await performance_field(info, await self._scope(info), int(self.id), period)

    @strawberry.field(
        description="Usage over `range` (else the `period` ending now) in whole UTC "
        "`granularity` buckets, from the one holding the start to the one holding the end "
        "(more than 1000: BAD_USER_INPUT), with peak hours and busiest days. Null where the "
        "viewer may not read this agent's numbers (as for `performance`)"
    )
    async def usage(
        self,
        info: Info,
        granularity: Granularity = Granularity.HOUR,
        period: Period = Period.D7,
        range: AgentUsageRange | None = None,
    ) -> AgentUsage | None:
        scope = await self._scope(info)
        readable = may_read(scope, self.workspace_id, self.owner_id, self.user_id)
        return await usage_field(
            info, scope, int(self.id), self.kind, readable, granularity, period, range
        )
