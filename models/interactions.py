"""Interactions (calls, chats, emails, AI executions) and scheduled callbacks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.db import TZ, row_id, stamped, tenant_key


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
