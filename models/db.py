"""Engine and sessions: the only place that knows how we reach Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import Field

TZ = sa.DateTime(timezone=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def tenant_key() -> Any:
    """`workspace_id` column that leads the primary key of every tenant-owned table."""
    return Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")


def row_id() -> Any:
    """Second half of a tenant primary key: a bigint identity, globally unique per table."""
    return Field(
        default=None,
        sa_column_args=[sa.Identity(always=False)],
        sa_type=sa.BigInteger,
        primary_key=True,
    )


def stamped() -> Any:
    """A non-null timestamptz defaulting to now (UTC)."""
    return Field(default_factory=utcnow, sa_type=TZ, nullable=False)


def asyncpg_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (what users paste) and pin the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        # reuse the most recent connections: they are warm (asyncpg's per-connection type
        # caches) and the rest can idle out
        pool_use_lifo=True,
        connect_args={"server_settings": {"application_name": "dashgraph"}},
    )


class Database:
    """One engine (one pool) per process, and the session factory over it."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # reads run in autocommit: no BEGIN/ROLLBACK round trips around every loader's SELECT
        self.reads = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """For reads: each statement on its own, no transaction around them."""
        async with self.reads() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """For writes: one transaction, committed at the end, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
