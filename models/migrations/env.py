"""Alembic environment: async engine, one advisory lock so concurrent replicas migrate once."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from models.db import create_engine
from models.tables import metadata

MIGRATION_LOCK = 7_201_001


def run_on(connection: Connection) -> None:
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(context.config.attributes["url"], pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


asyncio.run(run_online())
