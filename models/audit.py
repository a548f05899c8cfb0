"""Audit log: who changed what, for status changes and other sensitive writes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from models.db import row_id, stamped, tenant_key, utcnow
from models.scope import Scope


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


async def update_workspace_settings(
    session: AsyncSession,
    table: type[Any],
    scope: Scope,
    changes: Mapping[str, tuple[str, Any]],
    action: str,
) -> Any:
    """A workspace's settings row of `table` (keyed by workspace_id; inserted with the model's
    defaults when missing), locked, with `changes` ({path: (column, value)}) applied; the
    changed values are audited as `action`. In the caller's transaction. The row."""
    defaults = table(workspace_id=scope.workspace_id)
    await session.execute(
        insert(table)
        .values(**{c.name: getattr(defaults, c.name) for c in table.__table__.columns})
        .on_conflict_do_nothing(index_elements=["workspace_id"])
    )
    row = await session.get(table, scope.workspace_id, with_for_update=True, populate_existing=True)
    assert row is not None
    diff: dict[str, Any] = {}
    for path, (column, value) in changes.items():
        before = getattr(row, column)
        if before != value:
            diff[path] = {"from": before, "to": value}
            setattr(row, column, value)
    if diff:
        row.updated_at, row.updated_by = utcnow(), scope.user_id
        session.add(row)
        session.add(
            AuditLog(
                workspace_id=scope.workspace_id,
                actor_id=scope.user_id,
                action=action,
                target_type=table.__tablename__,
                target_id=str(scope.workspace_id),
                details={"changes": diff},
            )
        )
        await session.flush()
    return row
