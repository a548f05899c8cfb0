"""Leads: types, the paged list, `lead(id)` and the lead mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from ml.score_cache import OnlineScore
from models import leads
from models.errors import Forbidden, NotFound
from models.leads import LeadEventType, LeadSortField, LeadSource, LeadStage, PropertyType, Timeline
from models.scope import Scope
from resolvers.agents import Agent
from resolvers.context import Info
from resolvers.enums import SortDirection
from resolvers.ids import parse_id
from resolvers.ml_explain import LeadExplanation, lead_explanation

strawberry.enum(LeadStage)
strawberry.enum(LeadSource)
strawberry.enum(Timeline, description="When the lead wants to buy")
strawberry.enum(PropertyType)
strawberry.enum(LeadEventType)
strawberry.enum(LeadSortField)


@strawberry.type(
    description="The lead's score by the model version serving it (the champion, or the "
    "challenger for its A/B share), cached per (lead, version, the lead's last change)"
)
class LeadScore:
    value: int = strawberry.field(description="1..99, round(100 * probability) clipped")
    probability: float = strawberry.field(description="Conversion probability, 0..1")
    confidence: float | None = strawberry.field(
        description="2 * |probability - 0.5|, 0..1: 0 a coin flip, 1 certain either way"
    )
    model_id: strawberry.ID = strawberry.field(description="The version that scored")
    model_version: str
    scored_at: datetime
    prediction_time_ms: float = strawberry.field(
        description="Server-side milliseconds: for a fresh prediction the feature build and "
        "predict of the batch it ran in; for a cached score the cache lookup"
    )
    cached: bool = strawberry.field(
        description="True when the score was not predicted by this request (process cache, "
        "or a stored score newer than the lead's last change)"
    )
    fallback: bool = strawberry.field(
        description="True when the serving version failed and the ML config's fallback model "
        "scored instead (modelId and modelVersion are the fallback's)"
    )

    @classmethod
    def from_online(cls, score: OnlineScore) -> Self:
        return cls(
            value=score.value,
            probability=score.probability,
            confidence=score.confidence,
            model_id=strawberry.ID(str(score.model_id)),
            model_version=score.model_version,
            scored_at=score.scored_at,
            prediction_time_ms=score.prediction_time_ms,
            cached=score.cached,
            fallback=score.fallback,
        )


@strawberry.type
class LeadEvent:
    id: strawberry.ID
    type: LeadEventType
    occurred_at: datetime
    from_stage: LeadStage | None
    to_stage: LeadStage | None
    note: str | None

    @classmethod
    def from_row(cls, row: leads.LeadEvent) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)),
            type=LeadEventType(row.type),
            occurred_at=row.occurred_at,
            from_stage=LeadStage(row.from_stage) if row.from_stage else None,
            to_stage=LeadStage(row.to_stage) if row.to_stage else None,
            note=row.note,
        )


@strawberry.type
class Lead:
    id: strawberry.ID
    name: str
    email: str | None
    phone: str | None
    source: LeadSource
    budget: int | None
    timeline: Timeline | None
    property_type: PropertyType | None
    location: str | None
    stage: LeadStage
    value: int | None = strawberry.field(description="Deal value once won; an estimate before")
    created_at: datetime
    updated_at: datetime
    converted_at: datetime | None
    last_activity_at: datetime | None
    row: strawberry.Private[leads.Lead]
    scope: strawberry.Private[Scope]

    @classmethod
    def from_row(cls, row: leads.Lead, scope: Scope) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            email=row.email,
            phone=row.phone,
            source=LeadSource(row.source),
            budget=row.budget,
            timeline=Timeline(row.timeline) if row.timeline else None,
            property_type=PropertyType(row.property_type) if row.property_type else None,
            location=row.location,
            stage=LeadStage(row.stage),
            value=row.value,
            created_at=row.created_at,
            updated_at=row.updated_at,
            converted_at=row.converted_at,
            last_activity_at=row.last_activity_at,
            row=row,
            scope=scope,
        )

    @strawberry.field(description="The agent the lead is assigned to")
    async def agent(self, info: Info) -> Agent | None:
        if self.row.agent_id is None:
            return None
        row = await info.context.loaders(self.scope).agent_by_id.load(self.row.agent_id)
        return Agent.from_row(row) if row else None

    @strawberry.field(description="Newest first")
    async def events(self, info: Info, first: int = 10) -> list[LeadEvent]:
        if not 0 <= first <= leads.MAX_PAGE:
            from models.errors import BadUserInput

            raise BadUserInput("`first` must be 0..100", fields={"first": "at most 100"})
        assert self.row.id is not None  # a stored row
        rows = await info.context.loaders(self.scope).events_by_lead.load((self.row.id, first))
        return [LeadEvent.from_row(row) for row in rows]

    @strawberry.field(
        description="Scored online by the serving model version (cached), or by `model` (a "
        "trained version of the workspace: its score is not stored); null while the workspace "
        "has no model. PREDICTION_TIMEOUT past the ML config's timeout"
    )
    async def score(self, info: Info, model: strawberry.ID | None = None) -> LeadScore | None:
        loaders = info.context.loaders(self.scope)
        if model is None:
            found = await loaders.online_score_by_lead.load(self.row)
        else:
            chosen = await loaders.online_score_by_model.load((self.row, parse_id(model, "model")))
            assert not isinstance(chosen, Exception)  # the loader raises it
            found = chosen
        return LeadScore.from_online(found) if found else None

    @strawberry.field(
        description="Why the serving model scores the lead as it does (SHAP); null while the "
        "workspace has no model"
    )
    async def explanation(self, info: Info) -> LeadExplanation | None:
        return await lead_explanation(info, self.scope, self.row)


@strawberry.type
class LeadEdge:
    cursor: str
    node: Lead


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class LeadConnection:
    edges: list[LeadEdge]
    page_info: PageInfo
    page: strawberry.Private[leads.LeadPage]

    @strawberry.field(description="Leads matching the filter, all pages together")
    async def total_count(self, info: Info) -> int:
        async with info.context.db.session() as session:
            return await leads.count_leads(session, self.page.where, scored=self.page.scored)


@strawberry.input
class LeadFilter:
    stages: list[LeadStage] | None = None
    sources: list[LeadSource] | None = None
    agent_ids: list[strawberry.ID] | None = None
    min_score: int | None = None
    max_score: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = strawberry.field(default=None, description="In name or email")

    def to_model(self) -> leads.LeadFilter:
        return leads.LeadFilter(
            stages=self.stages,
            sources=self.sources,
            agent_ids=[parse_id(a, "filter.agentIds") for a in self.agent_ids]
            if self.agent_ids
            else None,
            min_score=self.min_score,
            max_score=self.max_score,
            created_after=self.created_after,
            created_before=self.created_before,
            search=self.search,
        )


@strawberry.input
class LeadSort:
    field: LeadSortField = LeadSortField.CREATED_AT
    direction: SortDirection = SortDirection.DESC

    def to_model(self) -> leads.LeadSort:
        return leads.LeadSort(field=self.field, descending=self.direction is SortDirection.DESC)


async def lead_connection(
    info: Info,
    scope: Scope,
    filter: LeadFilter | None,
    sort: LeadSort | None,
    first: int,
    after: str | None,
) -> LeadConnection:
    async with info.context.db.session() as session:
        page = await leads.lead_page(
            session,
            scope,
            filter=(filter or LeadFilter()).to_model(),
            sort=(sort or LeadSort()).to_model(),
            first=first,
            after=after,
        )
    edges = [
        LeadEdge(cursor=c, node=Lead.from_row(row, scope))
        for row, c in zip(page.leads, page.cursors, strict=True)
    ]
    return LeadConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        page=page,
    )


@strawberry.input
class CreateLeadInput:
    name: str
    source: LeadSource
    email: str | None = None
    phone: str | None = None
    budget: int | None = None
    timeline: Timeline | None = None
    property_type: PropertyType | None = None
    location: str | None = None
    stage: LeadStage | None = None
    value: int | None = None
    agent_id: strawberry.ID | None = None

    def to_model(self) -> leads.LeadInput:
        return _lead_input(self)


@strawberry.input(description="Only the fields given change")
class UpdateLeadInput:
    name: str | None = None
    source: LeadSource | None = None
    email: str | None = None
    phone: str | None = None
    budget: int | None = None
    timeline: Timeline | None = None
    property_type: PropertyType | None = None
    location: str | None = None
    stage: LeadStage | None = None
    value: int | None = None
    agent_id: strawberry.ID | None = None

    def to_model(self) -> leads.LeadInput:
        return _lead_input(self)


def _lead_input(data: CreateLeadInput | UpdateLeadInput) -> leads.LeadInput:
    return leads.LeadInput(
        name=data.name,
        email=data.email,
        phone=data.phone,
        source=data.source,
        budget=data.budget,
        timeline=data.timeline,
        property_type=data.property_type,
        location=data.location,
        stage=data.stage,
        value=data.value,
        agent_id=parse_id(data.agent_id, "agentId") if data.agent_id else None,
    )


@strawberry.input
class LeadEventInput:
    lead_id: strawberry.ID
    type: LeadEventType
    occurred_at: datetime | None = strawberry.field(default=None, description="Default: now")
    to_stage: LeadStage | None = strawberry.field(default=None, description="For STAGE_CHANGE")
    note: str | None = None


@strawberry.type
class LeadQueries:
    @strawberry.field(description="One lead of the workspace (argument, header, or first)")
    async def lead(
        self, info: Info, id: strawberry.ID, workspace_id: strawberry.ID | None = None
    ) -> Lead:
        scope = await info.context.scope(workspace_id)
        row = await info.context.loaders(scope).lead_by_id.load(parse_id(id, "id"))
        if row is None:
            raise NotFound("Lead not found", leadId=str(id))
        return Lead.from_row(row, scope)


@strawberry.type
class LeadMutations:
    @strawberry.mutation(description="Create a lead; publishes a `lead` change event")
    async def create_lead(
        self, info: Info, input: CreateLeadInput, workspace_id: strawberry.ID | None = None
    ) -> Lead:
        scope = await info.context.scope(workspace_id)
        if scope.role.value == "AGENT":
            raise Forbidden("Agents work the leads assigned to them; they cannot create leads")
        async with info.context.db.transaction() as session:
            row = await leads.create_lead(session, scope, input.to_model())
        await info.context.publish(scope.workspace_id, "lead", [row.id])
        return Lead.from_row(row, scope)

    @strawberry.mutation
    async def update_lead(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateLeadInput,
        workspace_id: strawberry.ID | None = None,
    ) -> Lead:
        scope = await info.context.scope(workspace_id)
        async with info.context.db.transaction() as session:
            row = await leads.update_lead(session, scope, parse_id(id, "id"), input.to_model())
        await info.context.publish(scope.workspace_id, "lead", [row.id])
        return Lead.from_row(row, scope)

    @strawberry.mutation(description="Record an activity or stage change on a lead")
    async def record_lead_event(
        self, info: Info, input: LeadEventInput, workspace_id: strawberry.ID | None = None
    ) -> LeadEvent:
        scope = await info.context.scope(workspace_id)
        data = leads.LeadEventInput(
            lead_id=parse_id(input.lead_id, "input.leadId"),
            type=input.type,
            occurred_at=input.occurred_at,
            to_stage=input.to_stage,
            note=input.note,
        )
        async with info.context.db.transaction() as session:
            row = await leads.record_lead_event(session, scope, data)
        await info.context.publish(scope.workspace_id, "lead", [row.lead_id])
        return LeadEvent.from_row(row)
