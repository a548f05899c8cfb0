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
from models.workflows import WorkflowStatus, WorkflowType
from resolvers import context
from resolvers.agent_performance import (
    AgentLeaderboard,
    AgentRanking,
    agent_field,
    leaderboard_field,
)
from resolvers.agents import Agent, AgentKind, AgentStatus
from resolvers.context import Info
from resolvers.enums import Granularity, Period, Role
from resolvers.funnel import ConversionFunnel, FunnelSegmentInput, conversion_funnel_field
from resolvers.lead_insights import (
    LeadInsightFilter,
    LeadInsights,
    LeadInsightSort,
    lead_insights_field,
)
from resolvers.leads import LeadConnection, LeadFilter, LeadSort, lead_connection
from resolvers.ml_insights import (
    InsightCategory,
    MarketInsights,
    MlInsights,
    market_insights_field,
    ml_insights_field,
)
from resolvers.sales_performance import Performance, performance_field
from resolvers.scoring_trends import ScoringTrends, scoring_trends_field
from resolvers.workflows import (
    WorkflowPerformance,
    WorkflowsOverview,
    workflow_performance_field,
    workflows_field,
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
        return [Agent.from_row(row, self.scope) for row in rows]

    @strawberry.field(
        description="One agent the viewer may see (ADMIN: any; USER: own; AGENT: self); "
        "NOT_FOUND otherwise, also for another workspace's agent"
    )
    async def agent(self, info: Info, id: strawberry.ID) -> Agent:
        return await agent_field(info, self.scope, id)

    @strawberry.field(
        description="Agents ranked `by` over `period` among all the workspace's agents (of "
        "`kind`), with each one's rank change on the previous window and the workspace's "
        "benchmarks; entries are the agents the viewer may see; `limit` 1..100"
    )
    async def agent_leaderboard(
        self,
        info: Info,
        by: AgentRanking = AgentRanking.CONVERSION_RATE,
        period: Period = Period.D30,
        kind: AgentKind | None = None,
        limit: int = 10,
    ) -> AgentLeaderboard:
        return await leaderboard_field(info, self.scope, by, period, kind, limit)

    @strawberry.field(
        description="The period's leads (those you may see whose last activity, or creation, "
        "falls in the window): a summary over all of them and, for the open ones matching "
        "every `filter`, score, priority, insight sentences from SHAP factors and activity, "
        "recommendations and trends; `limit` 1..100"
    )
    async def lead_insights(
        self,
        info: Info,
        period: Period = Period.H24,
        filter: list[LeadInsightFilter] | None = None,
        limit: int = 50,
        sort: LeadInsightSort = LeadInsightSort.SCORE,
    ) -> LeadInsights:
        return await lead_insights_field(info, self.scope, period, filter, limit, sort)

    @strawberry.field(
        description="Score history of the viewer's leads per UTC bucket of `groupBy` (DAY, WEEK, "
        "MONTH) over `period` (D7, D30, D90): average score, high-value count, distribution "
        "and top improvers with a reason; overall trend, average improvement, best and "
        "concerning segments. `leadIds` (at most 1000) narrows it to those leads"
    )
    async def scoring_trends(
        self,
        info: Info,
        period: Period = Period.D30,
        group_by: Granularity = Granularity.DAY,
        lead_ids: list[strawberry.ID] | None = None,
    ) -> ScoringTrends:
        return await scoring_trends_field(info, self.scope, period, group_by, lead_ids)

    @strawberry.field(
        description="Insights over the viewer's leads: high-value clusters, segment and market "
        "trends, model performance (ADMIN) and operations, each with impact, confidence, "
        "numbers and recommendations; `limit` 1..50; "
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

    @strawberry.field(
        description="Conversion funnel of the viewer's leads created in `period` (D7, D30, D90, "
        "Y1): per stage how many got there, stage conversion, time to reach, bottlenecks by a "
        "documented rule; insights with potential improvement; the cohort by source and budget"
    )
    async def conversion_funnel(
        self,
        info: Info,
        period: Period = Period.D30,
        segment: FunnelSegmentInput | None = None,
        include_stages: bool = True,
    ) -> ConversionFunnel:
        return await conversion_funnel_field(info, self.scope, period, segment, include_stages)

    @strawberry.field(
        description="Sales performance of the viewer's leads over `period` (H1, H24, D7, D30): "
        "summary, lead generation, quality, conversion by source and agent, engagement, "
        "hourly (H1, H24) or daily trends, and alerts against the workspace's thresholds"
    )
    async def performance(self, info: Info, period: Period = Period.H24) -> Performance:
        return await performance_field(info, self.scope, period)

    @strawberry.field(
        description="Automated workflows: runs in progress now and finished today, each "
        "workflow's steps (30-day averages) and up to `first` (1..100) runs in progress with "
        "their next action, and the last 30 days' success rate and bottlenecks; `status` and "
        "`type` pick the workflows. Numbers cover the runs of the viewer's leads"
    )
    async def workflows(
        self,
        info: Info,
        status: WorkflowStatus | None = None,
        type: WorkflowType | None = None,
        first: int = 20,
    ) -> WorkflowsOverview:
        return await workflows_field(info, self.scope, status, type, first)

    @strawberry.field(
        description="Workflow runs finished in `period` (D7, D30, D90): overall and by type "
        "(with conversion impact), efficiency (time and cost saved, error rate), bottleneck "
        "steps and insights; `types` picks workflow types. Runs of the viewer's leads"
    )
    async def workflow_performance(
        self,
        info: Info,
        period: Period = Period.D30,
        types: list[WorkflowType] | None = None,
    ) -> WorkflowPerformance:
        return await workflow_performance_field(info, self.scope, period, types)

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
