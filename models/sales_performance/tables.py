"""The tables of the performance overview: the `lead_event_hour` rollup (migration 0013) and
the workspace's alert thresholds (`performance_threshold`), whose field defaults are the
defaults every workspace starts with."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.db import TZ, stamped


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
