"""The funnel's rollup and its one aggregate: `lead_funnel` (migration 0010) holds one row per
lead with its segment columns and the first time it reached each stage, kept by triggers on
`lead` and `lead_event`; a cohort's funnel is one grouped scan of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import TZ
from models.errors import Validator
from models.leads import LeadSource, LeadStage, PropertyType
from models.periods import Window, rate
from models.scope import Scope

# the path a lead walks; LOST leads count for the stages they reached before
FUNNEL = (
    LeadStage.NEW,
    LeadStage.CONTACTED,
    LeadStage.QUALIFIED,
    LeadStage.SHOWING,
    LeadStage.OFFER,
    LeadStage.WON,
)
DAY_SECONDS = 86_400.0


# how far a lead got, 0 NEW .. 5 WON: its history or its current stage, whichever is further
_DEPTH = (
    "CASE "
    + " ".join(
        f"WHEN {stage.lower()}_at IS NOT NULL OR stage = '{stage}' THEN {k}"
        for k, stage in reversed(list(enumerate(FUNNEL)))
        if k
    )
    + " ELSE 0 END"
)


def _seconds(later: str, earlier: str = "created_at") -> Any:
    """Seconds from `earlier` to `later`, never below 0 (events can be backdated); NULL
    until `later` is reached."""
    return sa.Column(
        sa.Integer,
        sa.Computed(
            f"CASE WHEN {later} IS NOT NULL THEN least(greatest(date_part('epoch', "
            f"{later} - {earlier}), 0), 2147483647)::integer END"
        ),
    )


class LeadFunnel(SQLModel, table=True):
    """One row per lead: what the funnel groups and filters on, copied from `lead`, and when
    the lead first reached each stage (from its CREATED / STAGE_CHANGE events). Kept by
    triggers on `lead` and `lead_event` (migration 0010)."""

    __tablename__ = "lead_funnel"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    created_at: datetime = Field(sa_type=TZ)
    source: str = Field(max_length=24)
    budget: int | None = None
    property_type: str | None = Field(default=None, max_length=24)
    location: str | None = Field(default=None, max_length=120)
    owner_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    stage: str = Field(max_length=16)
    contacted_at: datetime | None = Field(default=None, sa_type=TZ)
    qualified_at: datetime | None = Field(default=None, sa_type=TZ)
    showing_at: datetime | None = Field(default=None, sa_type=TZ)
    offer_at: datetime | None = Field(default=None, sa_type=TZ)
    won_at: datetime | None = Field(default=None, sa_type=TZ)
    # stored generated columns (migration 0010), what the aggregate reads
    depth: int = Field(sa_column=sa.Column(sa.SmallInteger, sa.Computed(_DEPTH), nullable=False))
    contacted_after_s: int | None = Field(default=None, sa_column=_seconds("contacted_at"))
    qualified_after_s: int | None = Field(default=None, sa_column=_seconds("qualified_at"))
    showing_after_s: int | None = Field(default=None, sa_column=_seconds("showing_at"))
    offer_after_s: int | None = Field(default=None, sa_column=_seconds("offer_at"))
    won_after_s: int | None = Field(default=None, sa_column=_seconds("won_at"))
    qualified_step_s: int | None = Field(
        default=None, sa_column=_seconds("qualified_at", "contacted_at")
    )
    showing_step_s: int | None = Field(
        default=None, sa_column=_seconds("showing_at", "qualified_at")
    )
    offer_step_s: int | None = Field(default=None, sa_column=_seconds("offer_at", "showing_at"))
    won_step_s: int | None = Field(default=None, sa_column=_seconds("won_at", "offer_at"))

    __table_args__ = (sa.Index("ix_lead_funnel_created", "workspace_id", "created_at"),)


class BudgetBand(StrEnum):
    UNDER_500K = "UNDER_500K"
    FROM_500K_TO_1M = "FROM_500K_TO_1M"
    OVER_1M = "OVER_1M"
    UNKNOWN = "UNKNOWN"


# [low, high) in dollars; UNKNOWN is a lead without a budget
BAND_BOUNDS: dict[BudgetBand, tuple[int | None, int | None]] = {
    BudgetBand.UNDER_500K: (None, 500_000),
    BudgetBand.FROM_500K_TO_1M: (500_000, 1_000_000),
    BudgetBand.OVER_1M: (1_000_000, None),
}


@dataclass(frozen=True, slots=True)
class FunnelSegment:
    """Which leads of the cohort to analyse; every given condition must hold."""

    source: LeadSource | None = None
    budget_band: BudgetBand | None = None
    property_type: PropertyType | None = None
    location: str | None = None

    def validate(self) -> None:
        v = Validator()
        v.check(
            self.location is None or 0 < len(self.location.strip()) <= 120,
            "segment.location",
            "1..120 characters",
        )
        v.raise_if_any("Invalid funnel segment")

    def clauses(self) -> list[Any]:
        f = LeadFunnel
        out: list[Any] = []
        if self.source is not None:
            out.append(col(f.source) == self.source.value)
        if self.budget_band is not None:
            out.append(band_clause(self.budget_band))
        if self.property_type is not None:
            out.append(col(f.property_type) == self.property_type.value)
        if self.location is not None:
            out.append(sa.func.lower(col(f.location)) == self.location.strip().lower())
        return out


def band_clause(band: BudgetBand) -> Any:
    budget = col(LeadFunnel.budget)
    if band is BudgetBand.UNKNOWN:
        return budget.is_(None)
    low, high = BAND_BOUNDS[band]
    parts: list[Any] = [budget >= low] if low is not None else [budget.is_not(None)]
    if high is not None:
        parts.append(budget < high)
    return sa.and_(*parts)


# ---- the one aggregate ---------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Sums over a group of leads, additive: per funnel stage, how many reached it, how many
    were LOST with it as their furthest stage, how many of those that reached it have a known
    time, and the seconds from creation and from the stage before."""

    leads: int = 0
    reached: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    lost_at: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    timed: list[int] = field(default_factory=lambda: [0] * len(FUNNEL))
    since_created: list[float] = field(default_factory=lambda: [0.0] * len(FUNNEL))
    since_previous: list[float] = field(default_factory=lambda: [0.0] * len(FUNNEL))

    def add(self, other: Tally) -> None:
        self.leads += other.leads
        for k in range(len(FUNNEL)):
            self.reached[k] += other.reached[k]
            self.lost_at[k] += other.lost_at[k]
            self.timed[k] += other.timed[k]
            self.since_created[k] += other.since_created[k]
            self.since_previous[k] += other.since_previous[k]

    def stage_rate(self, k: int) -> float:
        """Of the leads that reached stage k - 1, the share that reached stage k."""
        return rate(self.reached[k], self.reached[k - 1])

    def decided_base(self, k: int) -> int:
        """Leads at stage k - 1 whose fate there is known: moved on to k, or lost there."""
        return self.reached[k] + self.lost_at[k - 1]

    def decided_rate(self, k: int) -> float:
        """Stage conversion without the leads still open at stage k - 1 (a young cohort's
        late stages are still filling up: its plain rate there understates the stage)."""
        return rate(self.reached[k], self.decided_base(k))

    def average_days(self, k: int) -> float:
        return rate(self.since_created[k], self.timed[k]) / DAY_SECONDS

    def step_days(self, k: int) -> float:
        return rate(self.since_previous[k], self.timed[k]) / DAY_SECONDS


def _aggregate(scope: Scope, span: Window, segment: FunnelSegment) -> Any:
    f = LeadFunnel
    depth = col(f.depth)
    # seconds from creation, and from the stage before, to each stage after NEW
    table = f.__table__.c  # type: ignore[attr-defined]
    after: list[Any] = [table[f"{s.lower()}_after_s"] for s in FUNNEL[1:]]
    step: list[Any] = [after[0]] + [table[f"{s.lower()}_step_s"] for s in FUNNEL[2:]]
    band = sa.case(
        *((band_clause(b), b.value) for b in BAND_BOUNDS), else_=BudgetBand.UNKNOWN.value
    ).label("band")
    lost = col(f.stage) == LeadStage.LOST.value
    columns: list[Any] = [col(f.source).label("source"), band, sa.func.count().label("leads")]
    columns += [sa.func.count().filter(lost, depth == k) for k in range(len(FUNNEL) - 1)]
    for k in range(1, len(FUNNEL)):
        columns += [
            sa.func.count().filter(depth >= k),
            sa.func.count(after[k - 1]),
            sa.func.sum(after[k - 1]),
            sa.func.sum(step[k - 1]),
        ]
    return (
        select(*columns)
        .where(
            scope.leads(f),
            col(f.created_at) >= span.start,
            col(f.created_at) < span.end,
            *segment.clauses(),
        )
        # by position: the band's CASE has bound parameters, which Postgres would not match
        .group_by(sa.text("1"), sa.text("2"))
    )


async def tallies(
    session: AsyncSession, scope: Scope, span: Window, segment: FunnelSegment
) -> dict[tuple[str, BudgetBand], Tally]:
    rows = (await session.execute(_aggregate(scope, span, segment))).all()
    out: dict[tuple[str, BudgetBand], Tally] = {}
    for row in rows:
        t = Tally(leads=int(row[2]))
        t.reached[0] = t.timed[0] = t.leads
        t.lost_at[:-1] = [int(n) for n in row[3 : 2 + len(FUNNEL)]]
        for k in range(1, len(FUNNEL)):
            base = 2 + len(FUNNEL) + 4 * (k - 1)
            t.reached[k] = int(row[base])
            t.timed[k] = int(row[base + 1])
            t.since_created[k] = float(row[base + 2] or 0)
            t.since_previous[k] = float(row[base + 3] or 0)
        out[(row[0], BudgetBand(row[1]))] = t
    return out
