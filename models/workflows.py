"""Automated workflows (follow-up, enrichment, notification, nurture), their runs, and the
per-day rollups of finished runs (migration 0015); the analytics over them live in
models/workflow_performance/."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.db import TZ, row_id, stamped, tenant_key


class WorkflowStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    DRAFT = "DRAFT"


class Workflow(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    name: str = Field(max_length=120)
    type: str = Field(max_length=24)
    status: str = Field(default=WorkflowStatus.ACTIVE, max_length=12)
    # [{"name": ..., "type": "email"|"call"|..., "description": ...}]
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = stamped()


class WorkflowType(StrEnum):
    FOLLOW_UP = "follow_up"
    ENRICHMENT = "enrichment"
    NOTIFICATION = "notification"
    NURTURE = "nurture"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STALLED = "STALLED"


class WorkflowRun(SQLModel, table=True):
    __tablename__ = "workflow_run"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    workflow_id: int = Field(sa_type=sa.BigInteger)
    lead_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    status: str = Field(max_length=12)
    current_step: int = 0
    started_at: datetime = Field(sa_type=TZ)
    finished_at: datetime | None = Field(default=None, sa_type=TZ)
    next_action_at: datetime | None = Field(default=None, sa_type=TZ)
    # seconds spent in each completed step, in step order
    step_seconds: list[int] = Field(default_factory=list, sa_type=JSONB)
    error: str | None = Field(default=None, max_length=500)

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["workspace_id", "workflow_id"],
            ["workflow.workspace_id", "workflow.id"],
            ondelete="CASCADE",
        ),
        sa.Index("ix_workflow_run_started", "workspace_id", "started_at"),
        sa.Index("ix_workflow_run_workflow", "workspace_id", "workflow_id"),
        # migration 0015: finished runs by time (index-only), the runs in progress
        sa.Index(
            "ix_workflow_run_finished",
            "workspace_id",
            "finished_at",
            postgresql_include=["workflow_id", "status", "started_at", "lead_id", "step_seconds"],
        ),
        sa.Index(
            "ix_workflow_run_active",
            "workspace_id",
            "workflow_id",
            "next_action_at",
            "id",
            postgresql_where=sa.text("status IN ('RUNNING', 'STALLED')"),
        ),
    )


class WorkflowRunDay(SQLModel, table=True):
    """Finished runs per (workflow, UTC day of finish, status). Kept by triggers on
    `workflow_run` (migration 0015)."""

    __tablename__ = "workflow_run_day"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    workflow_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: date = Field(primary_key=True)
    status: str = Field(primary_key=True, max_length=12)
    runs: int
    seconds: float = Field(description="Sum of finished_at - started_at")
    steps: int = Field(description="Completed steps of those runs")


class WorkflowStepDay(SQLModel, table=True):
    """Completed steps of finished runs per (workflow, UTC day of finish, step). Kept by
    triggers on `workflow_run` (migration 0015)."""

    __tablename__ = "workflow_step_day"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    workflow_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: date = Field(primary_key=True)
    step: int = Field(primary_key=True, sa_type=sa.SmallInteger)
    runs: int
    seconds: int = Field(sa_type=sa.BigInteger)
