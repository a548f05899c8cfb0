"""Custom dashboards (widgets, layout, refresh) and per-member dashboard preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.db import TZ, row_id, stamped, tenant_key


class Dashboard(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    owner_id: int = Field(sa_type=sa.BigInteger)
    name: str = Field(max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    widgets: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    refresh_interval_seconds: int = 30
    is_shared: bool = False
    view_count: int = 0
    last_viewed_at: datetime | None = Field(default=None, sa_type=TZ)
    created_at: datetime = stamped()
    updated_at: datetime = stamped()

    __table_args__ = (sa.Index("ix_dashboard_owner", "workspace_id", "owner_id"),)


class Preference(SQLModel, table=True):
    workspace_id: int = tenant_key()
    user_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    theme: str = Field(default="light", max_length=16)
    default_period: str = Field(default="D30", max_length=8)
    timezone: str = Field(default="UTC", max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    updated_at: datetime = stamped()
