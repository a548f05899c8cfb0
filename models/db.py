"""Engine and sessions: the only place that knows how we reach Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Field

TZ = sa.DateTime(timezone=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def tenant_key(*, foreign_key: bool = True) -> Any:
    """`workspace_id` column that leads the primary key of every tenant-owned table.

    `foreign_key=False` for bulk-written tables whose per-row check costs more than it guards
    (the score history: a trigger removes a deleted workspace's rows instead)."""
    if not foreign_key:
        return Field(primary_key=True)
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


_CUSTOM_PLANS = sa.text("SET LOCAL plan_cache_mode = force_custom_plan")


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
    async def custom_plans(self) -> AsyncIterator[AsyncSession]:
        """For analytics reads (every field's aggregates; their best plan depends on their
        values: a window, a viewer's leads): a transaction in which each statement is planned
        for its own parameters. asyncpg prepares statements, and Postgres switches a prepared
        statement to a generic plan after five runs on a connection: one such plan of lead
        insights for a USER ran for minutes on the large bench instead of 0.2 s. Planning
        costs a few ms a statement, paid by cold reads only (results are cached); the online
        paths (`Lead.score`, loaders) keep their cached plans."""
        async with self.sessions() as session, session.begin():
            await session.execute(_CUSTOM_PLANS)
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """For writes: one transaction, committed at the end, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


async def copy_frame(
    db: Database,
    sql: str,
    params: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    array_params: tuple[str, ...] = (),
) -> pl.DataFrame:
    """A query's rows as a polars frame, read with COPY (CSV) instead of row by row: the bulk
    read path (whole-workspace feature frames), ~10x faster than decoding rows in Python.

    `sql` uses `:name` parameters; `schema` names the columns in order with their types
    (Datetime columns must come out of Postgres as timestamptz, Boolean as boolean).
    `array_params` are passed as bigint arrays.
    """
    statement = sa.text(sql)
    if array_params:
        statement = statement.bindparams(
            *(sa.bindparam(name, type_=ARRAY(sa.BigInteger)) for name in array_params)
        )
    compiled = statement.compile(dialect=db.engine.dialect)
    args = [params[name] for name in compiled.positiontup or ()]
    async with db.session() as session:
        return await _copy(session, compiled.string, args, schema)


async def copy_select(
    session: AsyncSession, statement: sa.ClauseElement, schema: Mapping[str, Any]
) -> pl.DataFrame:
    """`copy_frame` for a Core select, in the caller's session (its transaction and plans):
    the columns `schema` names, in order, with their types."""
    compiled = cast(
        SQLCompiler,
        statement.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
        ),
    )
    args = [compiled.params[name] for name in compiled.positiontup or ()]
    return await _copy(session, compiled.string, args, schema)


async def _copy(
    session: AsyncSession, sql: str, args: list[Any], schema: Mapping[str, Any]
) -> pl.DataFrame:
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_from_query(sql, *args, output=collect, format="csv")
    names = list(schema)
    if not chunks:
        return pl.DataFrame(schema=dict(schema))
    as_text = {
        name: pl.String
        for name, dtype in schema.items()
        if isinstance(dtype, pl.Datetime) or dtype == pl.Boolean or dtype == pl.String
    }
    frame = pl.read_csv(
        b"".join(chunks),
        has_header=False,
        new_columns=names,
        schema_overrides={**schema, **as_text},
    )
    converted = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            # Postgres writes the session zone's offset: "+00", "+05:30" (%#z takes both)
            converted.append(
                pl.col(name)
                .str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_unit="us", time_zone="UTC")
                .dt.cast_time_unit(dtype.time_unit or "us")
            )
        elif dtype == pl.Boolean:
            converted.append(pl.col(name) == "t")
    return frame.with_columns(converted) if converted else frame
