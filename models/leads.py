"""Leads, their events and score history, and the queries over them."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import TZ, row_id, stamped, tenant_key, utcnow
from models.errors import BadUserInput, NotFound, Validator
from models.scope import Scope


class LeadStage(StrEnum):
    NEW = "NEW"
    CONTACTED = "CONTACTED"
    QUALIFIED = "QUALIFIED"
    SHOWING = "SHOWING"
    OFFER = "OFFER"
    WON = "WON"
    LOST = "LOST"


class LeadSource(StrEnum):
    WEBSITE = "WEBSITE"
    REFERRAL = "REFERRAL"
    SOCIAL_MEDIA = "SOCIAL_MEDIA"
    PORTAL = "PORTAL"
    OPEN_HOUSE = "OPEN_HOUSE"
    PAID_ADS = "PAID_ADS"
    COLD_CALL = "COLD_CALL"
    EMAIL_CAMPAIGN = "EMAIL_CAMPAIGN"


class Timeline(StrEnum):
    IMMEDIATE = "IMMEDIATE"
    WITHIN_3_MONTHS = "WITHIN_3_MONTHS"
    WITHIN_6_MONTHS = "WITHIN_6_MONTHS"
    WITHIN_YEAR = "WITHIN_YEAR"
    BROWSING = "BROWSING"


class PropertyType(StrEnum):
    SINGLE_FAMILY = "SINGLE_FAMILY"
    CONDO = "CONDO"
    TOWNHOUSE = "TOWNHOUSE"
    MULTI_FAMILY = "MULTI_FAMILY"
    LAND = "LAND"
    COMMERCIAL = "COMMERCIAL"


class LeadEventType(StrEnum):
    CREATED = "CREATED"
    STAGE_CHANGE = "STAGE_CHANGE"
    EMAIL_SENT = "EMAIL_SENT"
    EMAIL_OPENED = "EMAIL_OPENED"
    EMAIL_REPLIED = "EMAIL_REPLIED"
    CALL = "CALL"
    MEETING = "MEETING"
    SHOWING = "SHOWING"
    WEBSITE_VISIT = "WEBSITE_VISIT"
    NOTE = "NOTE"


class Lead(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    source: str = Field(max_length=24)
    budget: int | None = None
    timeline: str | None = Field(default=None, max_length=24)
    property_type: str | None = Field(default=None, max_length=24)
    location: str | None = Field(default=None, max_length=120)
    stage: str = Field(default=LeadStage.NEW, max_length=16)
    # deal value once won; estimated value of the deal before
    value: int | None = None
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    do_not_call: bool = False
    created_at: datetime = stamped()
    updated_at: datetime = stamped()
    converted_at: datetime | None = Field(default=None, sa_type=TZ)
    last_activity_at: datetime | None = Field(default=None, sa_type=TZ)

    __table_args__ = (
        # agents are deactivated, never deleted, so a plain FK keeps assignments honest
        sa.ForeignKeyConstraint(["workspace_id", "agent_id"], ["agent.workspace_id", "agent.id"]),
        sa.Index("ix_lead_created", "workspace_id", sa.text("created_at DESC"), sa.text("id DESC")),
        sa.Index("ix_lead_budget", "workspace_id", sa.text("coalesce(budget, -1)"), "id"),
        sa.Index("ix_lead_agent", "workspace_id", "agent_id"),
        sa.Index("ix_lead_owner", "workspace_id", "owner_id"),
        sa.Index("ix_lead_stage", "workspace_id", "stage"),
    )


class LeadEvent(SQLModel, table=True):
    __tablename__ = "lead_event"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    lead_id: int = Field(sa_type=sa.BigInteger)
    type: str = Field(max_length=24)
    occurred_at: datetime = stamped()
    from_stage: str | None = Field(default=None, max_length=16)
    to_stage: str | None = Field(default=None, max_length=16)
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    note: str | None = Field(default=None, max_length=2000)

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["workspace_id", "lead_id"], ["lead.workspace_id", "lead.id"], ondelete="CASCADE"
        ),
        sa.Index(
            "ix_lead_event_lead",
            "workspace_id",
            "lead_id",
            sa.text("occurred_at DESC"),
            sa.text("id DESC"),
        ),
        sa.Index("ix_lead_event_time", "workspace_id", "occurred_at"),
        # each agent's closes in time order: the agent-history features (ml/features.py)
        sa.Index(
            "ix_lead_event_close",
            "workspace_id",
            "agent_id",
            "occurred_at",
            postgresql_include=["to_stage"],
            postgresql_where=sa.text(
                "type = 'STAGE_CHANGE' AND to_stage IN ('WON', 'LOST') AND agent_id IS NOT NULL"
            ),
        ),
        # the moves to LOST of a window: when a LOST lead closed (ml/market.py)
        sa.Index(
            "ix_lead_event_lost",
            "workspace_id",
            "occurred_at",
            postgresql_include=["lead_id"],
            postgresql_where=sa.text("to_stage = 'LOST'"),
        ),
    )


class AgentCloseDay(SQLModel, table=True):
    """Each agent's closes (stage changes to WON / LOST) per UTC day. Kept by triggers on
    `lead_event` (migration 0006), whatever writes the events; read by ml/features.py."""

    __tablename__ = "agent_close_day"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    agent_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: date = Field(primary_key=True)
    closed: int
    won: int


class LeadEngagement(SQLModel, table=True):
    """Each lead's engagement in its first 14 days (the scoring features' window). Kept by
    triggers on `lead_event` (migration 0007); final once the window has passed."""

    __tablename__ = "lead_engagement"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    emails_opened: int
    emails_replied: int
    calls: int
    website_visits: int
    first_response_at: datetime | None = Field(default=None, sa_type=TZ)


class CurrentScore(SQLModel, table=True):
    """Each lead's current score: its newest stored scoring's value, NULL until scored.

    One row per lead (a trigger on `lead` INSERT adds it; the lead's deletion removes it), in a
    table of its own rather than a `lead` column: a batch scoring rewrites up to every row,
    and a `lead` row is twelve index entries where this one is two (migration 0023). Reads of
    scores join it by the lead's key (`with_score`)."""

    __tablename__ = "lead_current_score"

    workspace_id: int = Field(primary_key=True)
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    value: int | None = Field(default=None, sa_type=sa.SmallInteger)

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["workspace_id", "lead_id"], ["lead.workspace_id", "lead.id"], ondelete="CASCADE"
        ),
        sa.Index(
            "ix_lead_current_score", "workspace_id", sa.text("coalesce(value, -1)"), "lead_id"
        ),
    )


class LeadScore(SQLModel, table=True):
    """Score history: one row per scoring of a lead by a model version.

    Append-only and bulk-written (COPY, a million rows per full rescoring), so it has no
    foreign keys: to `lead` the per-row check was 40% of the COPY (migration 0008), to
    `workspace` half of what remained (0022). Leads are never deleted on their own, and a
    workspace's deletion still removes its rows (0022's statement trigger)."""

    __tablename__ = "lead_score"

    workspace_id: int = tenant_key(foreign_key=False)
    id: int | None = row_id()
    lead_id: int = Field(sa_type=sa.BigInteger)
    model_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    model_version: str = Field(max_length=40)
    value: int = Field(sa_type=sa.SmallInteger)
    probability: float
    confidence: float | None = None
    scored_at: datetime = stamped()

    __table_args__ = (
        sa.Index(
            "ix_lead_score_lead",
            "workspace_id",
            "lead_id",
            sa.text("scored_at DESC"),
            sa.text("id DESC"),
            # index-only history reads (scoring trends, migration 0012)
            postgresql_include=["value"],
        ),
    )


# ---- reads -----------------------------------------------------------------------------------


class LeadSortField(StrEnum):
    CREATED_AT = "CREATED_AT"
    SCORE = "SCORE"
    BUDGET = "BUDGET"


_SORT_KEYS: dict[LeadSortField, Any] = {
    LeadSortField.CREATED_AT: Lead.created_at,
    LeadSortField.SCORE: sa.func.coalesce(CurrentScore.value, -1),
    LeadSortField.BUDGET: sa.func.coalesce(Lead.budget, -1),
}

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class LeadFilter:
    stages: list[LeadStage] | None = None
    sources: list[LeadSource] | None = None
    agent_ids: list[int] | None = None
    min_score: int | None = None
    max_score: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = None

    def validate(self) -> None:
        v = Validator()
        for name, bound in (("minScore", self.min_score), ("maxScore", self.max_score)):
            v.check(bound is None or 0 <= bound <= 100, f"filter.{name}", "must be 0..100")
        v.check(
            self.min_score is None or self.max_score is None or self.min_score <= self.max_score,
            "filter.minScore",
            "must not exceed maxScore",
        )
        v.check(
            self.created_after is None
            or self.created_before is None
            or self.created_after <= self.created_before,
            "filter.createdAfter",
            "must not be after createdBefore",
        )
        v.check(self.search is None or len(self.search) <= 200, "filter.search", "too long")
        v.raise_if_any("Invalid lead filter")

    @property
    def on_score(self) -> bool:
        """Whether `clauses` need the leads' CurrentScore joined (`leads_query`)."""
        return self.min_score is not None or self.max_score is not None

    def clauses(self) -> list[Any]:
        """Conditions on Lead (and on CurrentScore when `on_score`)."""
        out: list[Any] = []
        if self.stages:
            out.append(col(Lead.stage).in_([s.value for s in self.stages]))
        if self.sources:
            out.append(col(Lead.source).in_([s.value for s in self.sources]))
        if self.agent_ids:
            out.append(col(Lead.agent_id).in_(self.agent_ids))
        if self.min_score is not None:
            out.append(col(CurrentScore.value) >= self.min_score)
        if self.max_score is not None:
            out.append(col(CurrentScore.value) <= self.max_score)
        if self.created_after is not None:
            out.append(Lead.created_at >= self.created_after)
        if self.created_before is not None:
            out.append(Lead.created_at < self.created_before)
        if self.search:
            pattern = (
                "%"
                + self.search.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
                + "%"
            )
            out.append(sa.or_(col(Lead.name).ilike(pattern), col(Lead.email).ilike(pattern)))
        return out


@dataclass(frozen=True, slots=True)
class LeadSort:
    field: LeadSortField = LeadSortField.CREATED_AT
    descending: bool = True


def leads_query(*columns: Any, scored: bool) -> Any:
    """`select(*columns)` from Lead, joined to each lead's CurrentScore when `scored`."""
    query = select(*columns).select_from(Lead)
    if not scored:
        return query
    key = sa.and_(
        col(CurrentScore.workspace_id) == col(Lead.workspace_id),
        col(CurrentScore.lead_id) == col(Lead.id),
    )
    return query.join(CurrentScore, key)


@dataclass(slots=True)
class LeadPage:
    leads: list[Lead]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool = False
    # the filter the page was cut with (and whether it reads scores), so totalCount can be
    # asked for lazily
    where: list[Any] = field(default_factory=list)
    scored: bool = False


def encode_cursor(sort: LeadSort, lead: Lead, score: int | None) -> str:
    key: Any
    if sort.field is LeadSortField.CREATED_AT:
        key = lead.created_at.isoformat()
    elif sort.field is LeadSortField.SCORE:
        key = score if score is not None else -1
    else:
        key = lead.budget if lead.budget is not None else -1
    raw = json.dumps([sort.field.value, key, lead.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(sort: LeadSort, cursor: str) -> tuple[Any, int]:
    try:
        field_name, key, lead_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if field_name != sort.field.value or not isinstance(lead_id, int):
            raise ValueError("cursor belongs to another sort order")
        if sort.field is LeadSortField.CREATED_AT:
            key = datetime.fromisoformat(key)
        elif not isinstance(key, int):
            raise ValueError("bad key")
        return key, lead_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadUserInput(
            "Malformed cursor", fields={"after": "not a cursor of this list"}
        ) from exc


async def lead_page(
    session: AsyncSession,
    scope: Scope,
    *,
    filter: LeadFilter,
    sort: LeadSort,
    first: int,
    after: str | None,
) -> LeadPage:
    if not 0 <= first <= MAX_PAGE:
        raise BadUserInput(
            f"`first` must be between 0 and {MAX_PAGE}", fields={"first": f"at most {MAX_PAGE}"}
        )
    filter.validate()
    key = _SORT_KEYS[sort.field]
    where = [scope.leads(Lead), *filter.clauses()]
    scored = filter.on_score or sort.field is LeadSortField.SCORE
    columns = (Lead, CurrentScore.value) if scored else (Lead,)
    query = leads_query(*columns, scored=scored).where(*where)
    # the tie-breaker of the sort's index: ix_lead_current_score ends with lead_id
    tie = col(CurrentScore.lead_id) if sort.field is LeadSortField.SCORE else col(Lead.id)
    if after is not None:
        after_key, after_id = decode_cursor(sort, after)
        row = sa.tuple_(key, tie)
        bound = sa.tuple_(sa.literal(after_key, type_=key.type), sa.literal(after_id))
        query = query.where(row < bound if sort.descending else row > bound)
    order = (key.desc(), tie.desc()) if sort.descending else (key.asc(), tie.asc())
    result = await session.execute(query.order_by(*order).limit(first + 1))
    rows = list(result.all() if scored else ((lead, None) for lead in result.scalars()))
    page = rows[:first]
    return LeadPage(
        leads=[lead for lead, _ in page],
        cursors=[encode_cursor(sort, lead, score) for lead, score in page],
        has_next_page=len(rows) > first,
        has_previous_page=after is not None,
        where=where,
        scored=scored,
    )


async def count_leads(session: AsyncSession, where: list[Any], *, scored: bool = False) -> int:
    query = leads_query(sa.func.count(), scored=scored).select_from(Lead).where(*where)
    return int((await session.execute(query)).scalar_one())


async def leads_by_ids(session: AsyncSession, scope: Scope, ids: list[int]) -> list[Lead]:
    result = await session.execute(select(Lead).where(scope.leads(Lead), col(Lead.id).in_(ids)))
    return list(result.scalars())


async def recent_events_by_lead(
    session: AsyncSession, workspace_id: int, lead_ids: list[int], first: int
) -> dict[int, list[LeadEvent]]:
    """The newest `first` events of each lead, one statement for all leads (lateral join)."""
    ids = (
        sa.func.unnest(sa.cast(lead_ids, sa.ARRAY(sa.BigInteger)))
        .table_valued("id")
        .render_derived(name="l")
    )
    recent = (
        select(LeadEvent)
        .where(LeadEvent.workspace_id == workspace_id, LeadEvent.lead_id == ids.c.id)
        .order_by(col(LeadEvent.occurred_at).desc(), col(LeadEvent.id).desc())
        .limit(first)
        .lateral("e")
    )
    event = sa.orm.aliased(LeadEvent, recent)
    rows = (await session.execute(select(event).select_from(ids).join(recent, sa.true()))).scalars()
    out: dict[int, list[LeadEvent]] = defaultdict(list)
    for row in rows:
        out[row.lead_id].append(row)
    return out


async def latest_scores_by_lead(
    session: AsyncSession, workspace_id: int, lead_ids: list[int]
) -> dict[int, LeadScore]:
    query = (
        select(LeadScore)
        .where(LeadScore.workspace_id == workspace_id, col(LeadScore.lead_id).in_(lead_ids))
        .order_by(col(LeadScore.lead_id), col(LeadScore.scored_at).desc(), col(LeadScore.id).desc())
        .ext(distinct_on(col(LeadScore.lead_id)))
    )
    return {row.lead_id: row for row in (await session.execute(query)).scalars()}


# ---- writes ----------------------------------------------------------------------------------


_SET_CURRENT_SCORE = sa.text(
    """
UPDATE lead_current_score c SET value = s.value
FROM unnest(CAST(:ids AS bigint[]), CAST(:values AS smallint[])) AS s(id, value)
WHERE c.workspace_id = :ws AND c.lead_id = s.id AND c.value IS DISTINCT FROM s.value
"""
)
_SCORE_COLUMNS = (
    "workspace_id",
    "lead_id",
    "model_id",
    "model_version",
    "value",
    "probability",
    "confidence",
    "scored_at",
)


async def store_scores(
    session: AsyncSession,
    workspace_id: int,
    model_id: int | None,
    model_version: str,
    lead_ids: list[int],
    values: list[int],
    probabilities: list[float],
    confidences: list[float | None],
    *,
    scored_at: datetime | None = None,
) -> int:
    """Append one `lead_score` row per lead (COPY) and set each lead's CurrentScore, in the
    caller's transaction; the lead itself is left alone (a score is not an edit). Rows
    written."""
    if not lead_ids:
        return 0
    at = scored_at or utcnow()
    # the UPDATE goes first: SQLAlchemy sends BEGIN with its first statement, so the COPY
    # below on the raw connection runs inside the same transaction
    await session.execute(
        _SET_CURRENT_SCORE, {"ws": workspace_id, "ids": lead_ids, "values": values}
    )
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    records = [
        (workspace_id, lead_id, model_id, model_version, value, probability, confidence, at)
        for lead_id, value, probability, confidence in zip(
            lead_ids, values, probabilities, confidences, strict=True
        )
    ]
    await raw.copy_records_to_table("lead_score", records=records, columns=_SCORE_COLUMNS)
    return len(records)


@dataclass(slots=True)
class LeadInput:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    source: LeadSource | None = None
    budget: int | None = None
    timeline: Timeline | None = None
    property_type: PropertyType | None = None
    location: str | None = None
    stage: LeadStage | None = None
    value: int | None = None
    agent_id: int | None = None


def _validate_lead_input(data: LeadInput, *, creating: bool) -> None:
    import re

    v = Validator()
    if creating or data.name is not None:
        v.check(bool(data.name and data.name.strip()), "name", "must not be empty")
        v.check(data.name is None or len(data.name) <= 200, "name", "at most 200 characters")
    if creating:
        v.check(data.source is not None, "source", "is required")
    if data.email is not None:
        v.check(
            re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", data.email) is not None
            and len(data.email) <= 320,
            "email",
            "not an email address",
        )
    if data.phone is not None:
        v.check(
            re.fullmatch(r"\+?[0-9 ()\-.]{5,40}", data.phone) is not None,
            "phone",
            "not a phone number",
        )
    v.check(data.budget is None or 0 <= data.budget <= 10**11, "budget", "must be 0 or more")
    v.check(data.value is None or 0 <= data.value <= 10**11, "value", "must be 0 or more")
    v.check(
        data.location is None or len(data.location) <= 120, "location", "at most 120 characters"
    )
    v.raise_if_any("Invalid lead")


async def _check_agent(session: AsyncSession, scope: Scope, agent_id: int) -> None:
    from models.agents import Agent

    found = await session.execute(select(Agent.id).where(scope.agents(Agent), Agent.id == agent_id))
    if found.first() is None:
        raise BadUserInput("Unknown agent", fields={"agentId": "no such agent in this workspace"})


async def create_lead(session: AsyncSession, scope: Scope, data: LeadInput) -> Lead:
    _validate_lead_input(data, creating=True)
    if data.agent_id is not None:
        await _check_agent(session, scope, data.agent_id)
    now = utcnow()
    lead = Lead(
        workspace_id=scope.workspace_id,
        name=(data.name or "").strip(),
        email=data.email.strip().lower() if data.email else None,
        phone=data.phone,
        source=data.source,  # type: ignore[arg-type]
        budget=data.budget,
        timeline=data.timeline,
        property_type=data.property_type,
        location=data.location,
        stage=data.stage or LeadStage.NEW,
        value=data.value,
        agent_id=data.agent_id,
        owner_id=scope.user_id,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        converted_at=now if data.stage is LeadStage.WON else None,
    )
    session.add(lead)
    await session.flush()
    assert lead.id is not None  # assigned by the flush
    session.add(
        LeadEvent(
            workspace_id=scope.workspace_id,
            lead_id=lead.id,
            type=LeadEventType.CREATED,
            occurred_at=now,
            to_stage=lead.stage,
            agent_id=lead.agent_id,
        )
    )
    return lead


async def _lead_for_update(session: AsyncSession, scope: Scope, lead_id: int) -> Lead:
    result = await session.execute(
        select(Lead).where(scope.leads(Lead), Lead.id == lead_id).with_for_update()
    )
    lead = result.scalars().first()
    if lead is None:
        raise NotFound("Lead not found", leadId=str(lead_id))
    return lead


def _change_stage(lead: Lead, stage: LeadStage, at: datetime, agent_id: int | None) -> LeadEvent:
    assert lead.id is not None  # a stored row
    event = LeadEvent(
        workspace_id=lead.workspace_id,
        lead_id=lead.id,
        type=LeadEventType.STAGE_CHANGE,
        occurred_at=at,
        from_stage=lead.stage,
        to_stage=stage,
        agent_id=agent_id,
    )
    lead.stage = stage
    lead.converted_at = at if stage is LeadStage.WON else None
    return event


async def update_lead(session: AsyncSession, scope: Scope, lead_id: int, data: LeadInput) -> Lead:
    _validate_lead_input(data, creating=False)
    if data.agent_id is not None:
        await _check_agent(session, scope, data.agent_id)
    lead = await _lead_for_update(session, scope, lead_id)
    now = utcnow()
    for name in (
        "name",
        "phone",
        "source",
        "budget",
        "timeline",
        "property_type",
        "location",
        "value",
        "agent_id",
    ):
        value = getattr(data, name)
        if value is not None:
            setattr(lead, name, value.strip() if name == "name" else value)
    if data.email is not None:
        lead.email = data.email.strip().lower()
    if data.stage is not None and data.stage != lead.stage:
        session.add(_change_stage(lead, data.stage, now, lead.agent_id))
    lead.updated_at = now
    return lead


@dataclass(slots=True)
class LeadEventInput:
    lead_id: int
    type: LeadEventType
    occurred_at: datetime | None = None
    to_stage: LeadStage | None = None
    note: str | None = None
    # the stage the writer saw: a STAGE_CHANGE is refused if the lead has moved since
    from_stage: LeadStage | None = None


async def record_lead_event(session: AsyncSession, scope: Scope, data: LeadEventInput) -> LeadEvent:
    v = Validator()
    v.check(data.type is not LeadEventType.CREATED, "type", "CREATED is recorded by createLead")
    v.check(
        data.type is not LeadEventType.STAGE_CHANGE or data.to_stage is not None,
        "toStage",
        "is required for STAGE_CHANGE",
    )
    v.check(
        data.type is LeadEventType.STAGE_CHANGE or data.to_stage is None,
        "toStage",
        "only allowed for STAGE_CHANGE",
    )
    v.check(
        data.type is LeadEventType.STAGE_CHANGE or data.from_stage is None,
        "fromStage",
        "only allowed for STAGE_CHANGE",
    )
    now = utcnow()
    v.check(data.occurred_at is None or data.occurred_at <= now, "occurredAt", "is in the future")
    v.check(
        data.occurred_at is None or data.occurred_at.tzinfo is not None,
        "occurredAt",
        "needs a time zone",
    )
    v.check(data.note is None or len(data.note) <= 2000, "note", "at most 2000 characters")
    v.raise_if_any("Invalid lead event")
    lead = await _lead_for_update(session, scope, data.lead_id)
    at = data.occurred_at or now
    if data.type is LeadEventType.STAGE_CHANGE:
        assert data.to_stage is not None
        if data.from_stage is not None and data.from_stage != lead.stage:
            raise BadUserInput(
                "The lead has changed stage since", fields={"fromStage": f"is {lead.stage} now"}
            )
        if data.to_stage == lead.stage:
            raise BadUserInput("Lead is already in that stage", fields={"toStage": "unchanged"})
        event = _change_stage(lead, data.to_stage, at, lead.agent_id)
        event.note = data.note
    else:
        assert lead.id is not None  # a stored row
        event = LeadEvent(
            workspace_id=lead.workspace_id,
            lead_id=lead.id,
            type=data.type,
            occurred_at=at,
            agent_id=lead.agent_id,
            note=data.note,
        )
    if lead.last_activity_at is None or at > lead.last_activity_at:
        lead.last_activity_at = at
    lead.updated_at = now
    session.add(event)
    await session.flush()
    return event
