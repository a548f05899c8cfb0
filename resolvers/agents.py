"""Agents (human and AI): the type and its resolvers."""

from __future__ import annotations

from datetime import datetime, time
from typing import Self

import strawberry

from models import agents
from models.agents import AgentKind, AgentStatus

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

    @classmethod
    def from_row(cls, row: agents.Agent) -> Self:
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
        )
