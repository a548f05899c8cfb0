"""Workspaces, the viewer and memberships; login. Workspace is the root of every dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from app import auth
from models import agents, workspaces
from models.errors import BadUserInput, Forbidden
from models.leads import PropertyType
from models.scope import Scope
from resolvers import context
from resolvers.agents import Agent, AgentKind, AgentStatus
from resolvers.context import Info
from resolvers.enums import Period, Role
from resolvers.leads import LeadConnection, LeadFilter, LeadSort, lead_connection
from resolvers.ml_insights import (
    InsightCategory,
    MarketInsights,
    MlInsights,
    market_insights_field,
    ml_insights_field,
)


@strawberry.type
class Member:
    id: strawberry.ID
    email: str
    full_name: str
    role: Role
    last_login_at: datetime | None


@strawberry.type
class Workspace:
    id: strawberry.ID
    name: str
    slug: str
    created_at: datetime
    scope: strawberry.Private[Scope]

    @classmethod
    def from_row(cls, row: workspaces.Workspace, scope: Scope) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            slug=row.slug,
            created_at=row.created_at,
            scope=scope,
        )

    @strawberry.field(description="The viewer's role here")
    def viewer_role(self) -> Role:
        return self.scope.role

    @strawberry.field(
        description="Leads the viewer may see, newest first by default; `first` <= 100"
    )
    async def leads(
        self,
        info: Info,
        filter: LeadFilter | None = None,
        sort: LeadSort | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> LeadConnection:
        return await lead_connection(info, self.scope, filter, sort, first, after)

    @strawberry.field(description="Agents the viewer may see (ADMIN: all; USER: own; AGENT: self)")
    async def agents(
        self, info: Info, kind: AgentKind | None = None, status: AgentStatus | None = None
    ) -> list[Agent]:
        async with info.context.db.session() as session:
            rows = await agents.list_agents(session, self.scope, kind=kind, status=status)
        return [Agent.from_row(row) for row in rows]

    @strawberry.field(
        description="Insights over the viewer's leads: high-value clusters, segment and market "
        "trends, each with impact, confidence, numbers and recommendations; `limit` 1..50; "
        "`period` (D7, D30, D90, Y1) is the trend window, compared with the one before it"
    )
    async def ml_insights(
        self,
        info: Info,
        category: InsightCategory | None = None,
        limit: int = 20,
        period: Period = Period.D30,
    ) -> MlInsights:
        return await ml_insights_field(info, self.scope, category, limit, period)

    @strawberry.field(
        description="Budget and price trends, demand, days to close and conversion of the "
        "viewer's leads over `timeframe` (D7, D30, D90, Y1) against the one before it; "
        "`location` matches case-insensitively, an unknown one gives zeros"
    )
    async def market_insights(
        self,
        info: Info,
        location: str | None = None,
        property_type: PropertyType | None = None,
        timeframe: Period = Period.D30,
    ) -> MarketInsights:
        return await market_insights_field(info, self.scope, location, property_type, timeframe)

    @strawberry.field(description="Members of the workspace (ADMIN only)")
    async def users(self, info: Info, first: int = 50, offset: int = 0) -> list[Member]:
        if not self.scope.is_admin:
            raise Forbidden("Only admins can list the members of a workspace")
        if not 0 <= first <= 100 or offset < 0:
            raise BadUserInput("Bad page", fields={"first": "0..100", "offset": ">= 0"})
        async with info.context.db.session() as session:
            rows = await workspaces.members(session, self.scope.workspace_id)
        return [
            Member(
                id=strawberry.ID(str(u.id)),
                email=u.email,
                full_name=u.full_name,
                role=workspaces.Role(role),
                last_login_at=u.last_login_at,
            )
            for u, role in rows[offset : offset + first]
        ]


@strawberry.type
class Membership:
    role: Role
    workspace: Workspace


@strawberry.type
class Viewer:
    id: strawberry.ID
    email: str
    full_name: str
    memberships: list[Membership]

    @classmethod
    def from_viewer(cls, viewer: context.Viewer) -> Self:
        return cls(
            id=strawberry.ID(str(viewer.id)),
            email=viewer.user.email,
            full_name=viewer.user.full_name,
            memberships=[
                Membership(
                    role=role,
                    workspace=Workspace.from_row(viewer.workspaces[ws], Scope(ws, viewer.id, role)),
                )
                for ws, role in sorted(viewer.roles.items())
            ],
        )


@strawberry.type
class LoginPayload:
    token: str
    viewer: Viewer


@strawberry.type
class WorkspaceQueries:
    @strawberry.field(description="The signed-in user")
    async def viewer(self, info: Info) -> Viewer:
        viewer = await info.context.viewer()
        return Viewer.from_viewer(viewer)

    @strawberry.field(
        description="A workspace of the viewer; no id: `X-Workspace-Id`, else the first"
    )
    async def workspace(self, info: Info, id: strawberry.ID | None = None) -> Workspace:
        scope = await info.context.scope(id)
        viewer = await info.context.viewer()
        return Workspace.from_row(viewer.workspaces[scope.workspace_id], scope)


@strawberry.type
class WorkspaceMutations:
    @strawberry.mutation(description="Exchange email and password for a bearer token")
    async def login(self, info: Info, email: str, password: str) -> LoginPayload:
        limits = info.context.services.limits
        await limits.hit("login", f"addr:{info.context.client_host}")
        await limits.hit("login", f"email:{email.strip().lower()}")
        token, _ = await auth.login(info.context.db, info.context.settings, email, password)
        info.context.authorization = f"Bearer {token}"
        viewer = await info.context.viewer()
        return LoginPayload(token=token, viewer=Viewer.from_viewer(viewer))
