"""Audit log: who changed what, for status changes and other sensitive writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.db import row_id, stamped, tenant_key


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    actor_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    action: str = Field(max_length=60)
    target_type: str = Field(max_length=40)
    target_id: str | None = Field(default=None, max_length=60)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    created_at: datetime = stamped()

    __table_args__ = (sa.Index("ix_audit_log_created", "workspace_id", "created_at"),)
