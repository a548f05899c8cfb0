"""Interactions (calls, chats, emails, AI executions) and scheduled callbacks."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.agents import Agent, AgentKind, AgentStatus
from models.db import TZ, row_id, stamped, tenant_key, utcnow
from models.errors import BadUserInput, NotFound, Validator
from models.leads import LeadEventInput, LeadEventType, leads_by_ids, record_lead_event
from models.scope import Scope


class Channel(StrEnum):
    CALL = "CALL"
    CHAT = "CHAT"
    EMAIL = "EMAIL"
    AI_EXECUTION = "AI_EXECUTION"


class Direction(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class InteractionStatus(StrEnum):
    QUEUED = "QUEUED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Outcome(StrEnum):
    CONVERTED = "CONVERTED"
    INTERESTED = "INTERESTED"
    NOT_INTERESTED = "NOT_INTERESTED"
    NO_ANSWER = "NO_ANSWER"
    CALLBACK_REQUESTED = "CALLBACK_REQUESTED"
    RESOLVED = "RESOLVED"


class Interaction(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    lead_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    # the member on whose behalf it ran (AI executions: the "unique users" of seed 001)
    user_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    channel: str = Field(max_length=16)
    direction: str = Field(default=Direction.OUTBOUND, max_length=10)
    status: str = Field(default=InteractionStatus.COMPLETED, max_length=12)
    outcome: str | None = Field(default=None, max_length=24)
    started_at: datetime = stamped()
    ended_at: datetime | None = Field(default=None, sa_type=TZ)
    duration_seconds: int | None = None
    credits: int = 0
    satisfaction: float | None = None
    topic: str | None = Field(default=None, max_length=80)
    success: bool | None = None
    error: str | None = Field(default=None, max_length=500)
    phone_number: str | None = Field(default=None, max_length=40)

    __table_args__ = (
        sa.Index("ix_interaction_started", "workspace_id", "started_at"),
        sa.Index("ix_interaction_agent", "workspace_id", "agent_id", "started_at"),
        sa.Index("ix_interaction_lead", "workspace_id", "lead_id"),
        sa.Index(
            "ix_interaction_live",
            "workspace_id",
            "status",
            postgresql_where=sa.text("status IN ('QUEUED', 'ACTIVE')"),
        ),
    )


class CallbackStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    COMPLETED = "COMPLETED"
    MISSED = "MISSED"
    CANCELLED = "CANCELLED"


class Callback(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    lead_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    scheduled_for: datetime = Field(sa_type=TZ)
    status: str = Field(default=CallbackStatus.SCHEDULED, max_length=12)
    completed_at: datetime | None = Field(default=None, sa_type=TZ)
    created_at: datetime = stamped()

    __table_args__ = (sa.Index("ix_callback_scheduled", "workspace_id", "scheduled_for"),)


# ---- writes ----------------------------------------------------------------------------------

# an AI agent's call costs credits per started minute (the rate the seed data was made with)
CALL_CREDITS_PER_MINUTE = 5
_SUCCESSFUL = {Outcome.CONVERTED, Outcome.INTERESTED, Outcome.CALLBACK_REQUESTED, Outcome.RESOLVED}
_OFF_DUTY = {AgentStatus.PAUSED, AgentStatus.INACTIVE}


async def _agent(session: AsyncSession, scope: Scope, agent_id: int) -> Agent:
    result = await session.execute(select(Agent).where(scope.agents(Agent), Agent.id == agent_id))
    agent = result.scalars().first()
    if agent is None:
        raise BadUserInput("Unknown agent", fields={"agentId": "no such agent in this workspace"})
    return agent


async def start_call(
    session: AsyncSession,
    scope: Scope,
    *,
    lead_id: int,
    agent_id: int,
    direction: Direction = Direction.OUTBOUND,
    topic: str | None = None,
) -> Interaction:
    """A call between an agent and a lead begins: ACTIVE until `end_call`. The lead's timeline
    gets its CALL event now, so the call shows in the activity feed while it is going on."""
    v = Validator()
    v.check(topic is None or 0 < len(topic) <= 80, "topic", "1 to 80 characters")
    v.raise_if_any("Invalid call")
    agent = await _agent(session, scope, agent_id)
    if agent.status in _OFF_DUTY:
        raise BadUserInput("Agent is not taking calls", fields={"agentId": f"is {agent.status}"})
    found = await leads_by_ids(session, scope, [lead_id])
    if not found:
        raise BadUserInput("Unknown lead", fields={"leadId": "no such lead in this workspace"})
    lead = found[0]
    if lead.do_not_call and direction is Direction.OUTBOUND:
        raise BadUserInput("Lead asked not to be called", fields={"leadId": "do not call"})
    ai = agent.kind == AgentKind.AI
    await record_lead_event(
        session,
        scope,
        LeadEventInput(
            lead_id=lead_id, type=LeadEventType.CALL, note=f"{direction.capitalize()} call"
        ),
    )
    call = Interaction(
        workspace_id=scope.workspace_id,
        agent_id=agent_id,
        lead_id=lead_id,
        # an AI agent calls on behalf of the lead's owner; a human agent is a member
        user_id=(lead.owner_id or scope.user_id) if ai else agent.user_id,
        channel=Channel.CALL,
        direction=direction,
        status=InteractionStatus.ACTIVE,
        started_at=utcnow(),
        topic=topic,
        phone_number=lead.phone,
    )
    session.add(call)
    await session.flush()
    return call


async def end_call(
    session: AsyncSession,
    scope: Scope,
    interaction_id: int,
    *,
    outcome: Outcome | None,
    satisfaction: float | None = None,
    error: str | None = None,
) -> Interaction:
    """An ACTIVE call ends: COMPLETED with its outcome, or FAILED with an error. Duration is
    the time since it started; AI agents' calls cost credits per started minute."""
    v = Validator()
    v.check(outcome is not None or error is not None, "outcome", "is required unless it failed")
    v.check(outcome is None or error is None, "error", "a failed call has no outcome")
    v.check(error is None or 0 < len(error) <= 500, "error", "1 to 500 characters")
    v.check(satisfaction is None or 1 <= satisfaction <= 5, "satisfaction", "must be 1..5")
    v.raise_if_any("Invalid call result")
    own_agents = select(col(Agent.id)).where(scope.agents(Agent))
    result = await session.execute(
        select(Interaction)
        .where(
            scope.where(Interaction),
            Interaction.id == interaction_id,
            Interaction.channel == Channel.CALL,
            col(Interaction.agent_id).in_(own_agents),
        )
        .with_for_update()
    )
    call = result.scalars().first()
    if call is None:
        raise NotFound("Call not found", interactionId=str(interaction_id))
    if call.status != InteractionStatus.ACTIVE:
        raise BadUserInput("The call has already ended", fields={"id": f"is {call.status}"})
    agent = await _agent(session, scope, call.agent_id) if call.agent_id is not None else None
    now = utcnow()
    seconds = max(0, round((now - call.started_at).total_seconds()))
    call.status = InteractionStatus.FAILED if error else InteractionStatus.COMPLETED
    call.outcome = outcome
    call.error = error
    call.ended_at = now
    call.duration_seconds = seconds
    call.satisfaction = satisfaction
    call.success = error is None and outcome in _SUCCESSFUL
    if agent is not None and agent.kind == AgentKind.AI:
        call.credits = max(1, math.ceil(seconds / 60)) * CALL_CREDITS_PER_MINUTE
    await session.flush()
    return call


async def record_ai_execution(
    session: AsyncSession,
    scope: Scope,
    *,
    agent_id: int,
    topic: str,
    duration_seconds: int,
    credits: int,
    error: str | None = None,
    lead_id: int | None = None,
) -> Interaction:
    """One finished run of an AI agent on the viewer's behalf (the credits consumed of seed 001)."""
    v = Validator()
    v.check(0 < len(topic) <= 80, "topic", "1 to 80 characters")
    v.check(0 <= duration_seconds <= 86_400, "durationSeconds", "must be 0..86400")
    v.check(0 <= credits <= 100_000, "credits", "must be 0..100000")
    v.check(error is None or 0 < len(error) <= 500, "error", "1 to 500 characters")
    v.raise_if_any("Invalid AI execution")
    agent = await _agent(session, scope, agent_id)
    if agent.kind != AgentKind.AI:
        raise BadUserInput("Not an AI agent", fields={"agentId": "is a human agent"})
    if lead_id is not None and not await leads_by_ids(session, scope, [lead_id]):
        raise BadUserInput("Unknown lead", fields={"leadId": "no such lead in this workspace"})
    now = utcnow()
    run = Interaction(
        workspace_id=scope.workspace_id,
        agent_id=agent_id,
        lead_id=lead_id,
        user_id=scope.user_id,
        channel=Channel.AI_EXECUTION,
        status=InteractionStatus.FAILED if error else InteractionStatus.COMPLETED,
        started_at=now - timedelta(seconds=duration_seconds),
        ended_at=now,
        duration_seconds=duration_seconds,
        credits=credits,
        topic=topic,
        success=error is None,
        error=error,
    )
    session.add(run)
    await session.flush()
    return run
