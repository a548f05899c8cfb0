"""Workspaces, users and memberships: who may see what."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import TZ, row_id, stamped, tenant_key

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Role(StrEnum):
    ADMIN = "ADMIN"
    USER = "USER"
    AGENT = "AGENT"


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    name: str = Field(max_length=200)
    slug: str = Field(max_length=100, unique=True)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = stamped()


class User(SQLModel, table=True):
    # "user" is a reserved word in SQL; a plain name keeps raw SQL and psql sessions simple.
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    email: str = Field(max_length=320, unique=True)
    full_name: str = Field(max_length=200)
    password_hash: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    is_verified: bool = True
    is_active: bool = True
    created_at: datetime = stamped()
    last_login_at: datetime | None = Field(default=None, sa_type=TZ)


class Membership(SQLModel, table=True):
    workspace_id: int = tenant_key()
    user_id: int = Field(primary_key=True, foreign_key="app_user.id", ondelete="CASCADE")
    role: str = Field(max_length=16)
    created_at: datetime = stamped()

    __table_args__ = (sa.Index("ix_membership_user", "user_id"),)


class UserSession(SQLModel, table=True):
    """One sign-in session of a member: the source of DAU/WAU/MAU and session lengths."""

    __tablename__ = "user_session"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    user_id: int = Field(sa_type=sa.BigInteger)
    started_at: datetime = Field(sa_type=TZ)
    ended_at: datetime | None = Field(default=None, sa_type=TZ)
    executions: int = 0
    api_calls: int = 0

    __table_args__ = (sa.Index("ix_user_session_started", "workspace_id", "started_at"),)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email.strip().lower()))
    return result.scalars().first()


async def viewer_with_memberships(
    session: AsyncSession, user_id: int
) -> tuple[User, dict[int, Role], dict[int, Workspace]] | None:
    """The viewer, their roles and their workspaces, in one statement (runs on every request)."""
    rows = (
        await session.execute(
            select(User, Membership.role, Workspace)
            .outerjoin(Membership, col(Membership.user_id) == User.id)
            .outerjoin(Workspace, col(Workspace.id) == Membership.workspace_id)
            .where(User.id == user_id, User.is_active)
        )
    ).all()
    if not rows:
        return None
    user = rows[0][0]
    # no workspace: a user without memberships (the outer join); stored rows always have an id
    spaces = {ws.id: ws for _, _, ws in rows if ws is not None and ws.id is not None}
    roles = {ws.id: Role(role) for _, role, ws in rows if ws is not None and ws.id is not None}
    return user, roles, spaces


async def members(session: AsyncSession, workspace_id: int) -> list[tuple[User, str]]:
    """Members of a workspace with their role, by name."""
    rows = await session.execute(
        select(User, Membership.role)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.full_name, col(User.id))
    )
    return [(user, role) for user, role in rows.all()]


async def workspace_admins(session: AsyncSession) -> list[tuple[Workspace, int]]:
    """Every workspace with its longest-standing active ADMIN's user id (workspaces without
    one are left out). Crosses tenants: for system processes such as the demo simulator."""
    query = (
        select(Workspace, col(Membership.user_id))
        .join(Membership, col(Membership.workspace_id) == Workspace.id)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.role == Role.ADMIN, col(User.is_active))
        .order_by(col(Workspace.id), col(Membership.created_at), col(Membership.user_id))
        .ext(distinct_on(col(Workspace.id)))
    )
    return [(workspace, user_id) for workspace, user_id in (await session.execute(query)).all()]


async def workspaces(session: AsyncSession, slug: str | None = None) -> list[Workspace]:
    """Every workspace (or the one with `slug`), by id. Crosses tenants: for the CLI."""
    query = select(Workspace).order_by(col(Workspace.id))
    if slug is not None:
        query = query.where(Workspace.slug == slug)
    return list((await session.execute(query)).scalars())
