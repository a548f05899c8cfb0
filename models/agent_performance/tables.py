"""The rollups and covering indexes of migration 0014 behind the agent analytics."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, col

from models.db import TZ
from models.interactions import Interaction
from models.leads import Lead


class LeadFirstContact(SQLModel, table=True):
    """Each agent's first contact (CALL, EMAIL_SENT or MEETING) with each lead, at or after
    the lead's creation. Kept by triggers on `lead_event` (migration 0014)."""

    __tablename__ = "lead_first_contact"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    agent_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    lead_created_at: datetime = Field(sa_type=TZ)
    first_contact_at: datetime = Field(sa_type=TZ)

    __table_args__ = (
        sa.Index(
            "ix_lead_first_contact_created",
            "workspace_id",
            "lead_created_at",
            postgresql_include=["agent_id", "first_contact_at"],
        ),
    )


class AgentUsageHour(SQLModel, table=True):
    """Each agent's interactions per UTC hour, split by AI execution or not and by member
    (`user_key`: the interaction's user_id, 0 for none), so that distinct members per bucket
    stay exact. Kept by triggers on `interaction` (migration 0014); rows may fall to zero."""

    __tablename__ = "agent_usage_hour"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    agent_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    hour: datetime = Field(primary_key=True, sa_type=TZ)
    ai_execution: bool = Field(primary_key=True)
    user_key: int = Field(primary_key=True, sa_type=sa.BigInteger)
    executions: int
    credits: int = Field(sa_type=sa.BigInteger)
    errors: int


class AgentUsageDay(SQLModel, table=True):
    """Each agent's interactions per UTC day (AI execution or not), with the executions of
    each hour of the day (h00..h23: the peak hours of long ranges). Kept by triggers on
    `interaction` (migration 0014)."""

    __tablename__ = "agent_usage_day"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    agent_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: date = Field(primary_key=True)
    ai_execution: bool = Field(primary_key=True)
    executions: int
    credits: int = Field(sa_type=sa.BigInteger)
    errors: int
    h00: int
    h01: int
    h02: int
    h03: int
    h04: int
    h05: int
    h06: int
    h07: int
    h08: int
    h09: int
    h10: int
    h11: int
    h12: int
    h13: int
    h14: int
    h15: int
    h16: int
    h17: int
    h18: int
    h19: int
    h20: int
    h21: int
    h22: int
    h23: int


HOUR_COLUMNS = [f"h{h:02d}" for h in range(24)]


class AgentUsageDayMember(SQLModel, table=True):
    """Each member's executions with each agent per UTC day (`user_key` 0: none): distinct
    members of daily, weekly and monthly buckets. Kept by triggers on `interaction`."""

    __tablename__ = "agent_usage_day_member"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    agent_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: date = Field(primary_key=True)
    ai_execution: bool = Field(primary_key=True)
    user_key: int = Field(primary_key=True, sa_type=sa.BigInteger)
    executions: int


# covering indexes of migration 0014 on other domains' tables: the window reads are index-only
sa.Index(
    "ix_lead_agent_cohort",
    col(Lead.workspace_id),
    col(Lead.created_at),
    postgresql_include=["agent_id", "converted_at", "value", "score"],
)
sa.Index(
    "ix_interaction_agent_activity",
    col(Interaction.workspace_id),
    col(Interaction.started_at),
    postgresql_include=[
        "agent_id",
        "channel",
        "status",
        "user_id",
        "lead_id",
        "success",
        "duration_seconds",
        "credits",
        "satisfaction",
    ],
)
