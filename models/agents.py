"""Agents, human and AI, and the queries over them."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import row_id, stamped, tenant_key
from models.scope import Scope


class AgentKind(StrEnum):
    HUMAN = "HUMAN"
    AI = "AI"


class AgentStatus(StrEnum):
    ACTIVE = "ACTIVE"
    TRAINING = "TRAINING"
    LEARNING = "LEARNING"
    PAUSED = "PAUSED"
    INACTIVE = "INACTIVE"


class Agent(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    kind: str = Field(max_length=8)
    name: str = Field(max_length=200)
    status: str = Field(default=AgentStatus.ACTIVE, max_length=16)
    training_level: int = 100
    personality: str | None = Field(default=None, max_length=40)
    working_hours_start: time | None = None
    working_hours_end: time | None = None
    # the member this agent is (human agents), and the member who owns it (USER role rules)
    user_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = stamped()

    __table_args__ = (
        sa.Index("ix_agent_user", "workspace_id", "user_id"),
        sa.Index("ix_agent_owner", "workspace_id", "owner_id"),
    )


async def agents_by_ids(session: AsyncSession, scope: Scope, ids: list[int]) -> list[Agent]:
    """Agents by id inside the workspace (a lead's agent is visible to whoever sees the lead)."""
    result = await session.execute(select(Agent).where(scope.where(Agent), col(Agent.id).in_(ids)))
    return list(result.scalars())


async def list_agents(
    session: AsyncSession,
    scope: Scope,
    *,
    kind: AgentKind | None = None,
    status: AgentStatus | None = None,
) -> list[Agent]:
    query = select(Agent).where(scope.agents(Agent)).order_by(col(Agent.id))
    if kind is not None:
        query = query.where(Agent.kind == kind)
    if status is not None:
        query = query.where(Agent.status == status)
    return list((await session.execute(query)).scalars())
