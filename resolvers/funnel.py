"""The conversion funnel: its types and the resolver behind `Workspace.conversionFunnel`."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from ml.insights import Impact
from models import funnel
from models.funnel import BudgetBand, FunnelInsightType
from models.funnel import ConversionFunnel as FunnelReport
from models.leads import LeadSource, LeadStage, PropertyType
from models.periods import check_period
from models.scope import Scope
from resolvers.context import Info
from resolvers.enums import Period

strawberry.enum(
    BudgetBand,
    name="FunnelBudgetBand",
    description="Budget bands in dollars: UNDER_500K below 500,000; FROM_500K_TO_1M 500,000 up "
    "to 1,000,000 (excluded); OVER_1M 1,000,000 or more; UNKNOWN no budget given",
)
strawberry.enum(
    FunnelInsightType,
    description="BOTTLENECK: a stage the bottleneck rule flags; OPPORTUNITY: a stage that "
    f"would grow closed deals by {funnel.MIN_OPPORTUNITY:.0%} or more at its benchmark rate",
)

REACHED_RULE = (
    "A lead reached a stage when its stage history (CREATED and STAGE_CHANGE events) or its "
    "current stage got to that stage or a later one on NEW -> CONTACTED -> QUALIFIED -> "
    "SHOWING -> OFFER -> WON; a skipped stage counts as reached at the jump; LOST leads count "
    "for the stages they reached before"
)


@strawberry.type
class FunnelStage:
    stage: LeadStage
    name: str = strawberry.field(description="Display name (Lead Created ... Closed Deal)")
    count: int = strawberry.field(description="Leads of the cohort that reached the stage")
    percentage: float = strawberry.field(description="count / cohort, 0..100")
    conversion_rate: float = strawberry.field(
        description="count / count of the stage before, 0..1 (NEW: 1, or 0 for no leads)"
    )
    decided_conversion_rate: float = strawberry.field(
        description="Of the leads at the stage before whose fate there is known (moved on, or "
        "LOST with that as their furthest stage), the share that reached this one, 0..1: "
        "leaves out leads still open, which a young cohort has many of"
    )
    average_time_days: float = strawberry.field(
        description="Mean days from the lead's creation to first reaching the stage (0 for NEW)"
    )
    average_step_days: float = strawberry.field(
        description="Mean days from first reaching the stage before to first reaching this one"
    )
    bottleneck: bool = strawberry.field(
        description="Judged for stages after NEW with "
        f"{funnel.MIN_BASE}+ leads decided at the stage before: the stage with the lowest "
        f"decidedConversionRate when below {funnel.RATE_FACTOR:.0%} of the median "
        "decidedConversionRate of the judged stages, and any stage whose averageStepDays "
        f"exceeds {funnel.TIME_FACTOR:g}x their median"
    )
    bottleneck_reason: str | None = strawberry.field(description="The numbers behind the flag")

    @classmethod
    def from_model(cls, s: funnel.FunnelStage) -> Self:
        return cls(
            stage=s.stage,
            name=s.name,
            count=s.count,
            percentage=s.percentage,
            conversion_rate=s.conversion_rate,
            decided_conversion_rate=s.decided_conversion_rate,
            average_time_days=s.average_time_days,
            average_step_days=s.average_step_days,
            bottleneck=s.bottleneck,
            bottleneck_reason=s.bottleneck_reason,
        )


@strawberry.type(description=f"The cohort's funnel. {REACHED_RULE}")
class Funnel:
    stages: list[FunnelStage] = strawberry.field(
        description="NEW to WON in order; empty when `includeStages` is false"
    )
    total_leads: int = strawberry.field(description="The cohort: leads created in the window")
    overall_conversion_rate: float = strawberry.field(description="WON / cohort, 0..1")
    average_time_to_conversion_days: float = strawberry.field(
        description="Mean days from creation to WON of the cohort's won leads"
    )


@strawberry.type
class FunnelInsight:
    type: FunnelInsightType
    stage: LeadStage
    name: str
    impact: Impact = strawberry.field(
        description=f"HIGH at potentialImprovement >= {funnel.HIGH_IMPACT:g}, MEDIUM at >= "
        f"{funnel.MEDIUM_IMPACT:g}, else LOW"
    )
    recommendation: str
    reason: str = strawberry.field(description="The numbers the insight follows from")
    potential_improvement: float = strawberry.field(
        description="Relative growth in closed deals (0.15 = +15%) if this stage converted at "
        "benchmarkRate, the other stages unchanged: benchmarkRate / conversionRate - 1"
    )
    additional_conversions: int = strawberry.field(
        description="Closed deals that growth adds to the cohort's"
    )
    benchmark_rate: float | None = strawberry.field(
        description="The best conversionRate of this stage among the cohort's sources and "
        f"budget bands with {funnel.MIN_SEGMENT_BASE}+ leads at the stage before; null: none "
        "does better than the whole cohort"
    )
    benchmark_segment: str | None = strawberry.field(
        description="Where benchmarkRate comes from, e.g. `source REFERRAL`"
    )

    @classmethod
    def from_model(cls, i: funnel.FunnelInsight) -> Self:
        return cls(
            type=i.type,
            stage=i.stage,
            name=i.name,
            impact=Impact(i.impact.value),
            recommendation=i.recommendation,
            reason=i.reason,
            potential_improvement=i.potential_improvement,
            additional_conversions=i.additional_conversions,
            benchmark_rate=i.benchmark_rate,
            benchmark_segment=i.benchmark_segment,
        )


@strawberry.type
class FunnelSourceSegment:
    key: str = strawberry.field(description="The lead source (LeadSource value)")
    count: int = strawberry.field(description="Leads of the cohort from this source")
    converted: int = strawberry.field(description="Of them, leads that reached WON")
    conversion_rate: float = strawberry.field(description="converted / count, 0..1")


@strawberry.type
class FunnelBudgetSegment:
    band: BudgetBand
    count: int
    converted: int
    conversion_rate: float = strawberry.field(description="converted / count, 0..1")


@strawberry.type(description="The cohort by source (most leads first) and by budget band")
class FunnelSegmentation:
    by_source: list[FunnelSourceSegment]
    by_budget: list[FunnelBudgetSegment]


@strawberry.type(description="Conversion funnel analytics (seed 000)")
class ConversionFunnel:
    period: Period
    window_start: datetime = strawberry.field(description="Cohort: created at or after this")
    window_end: datetime = strawberry.field(description="... and before this (now)")
    funnel: Funnel
    insights: list[FunnelInsight] = strawberry.field(
        description="Bottlenecks first, then by potentialImprovement"
    )
    segmentation: FunnelSegmentation

    @classmethod
    def from_model(cls, f: FunnelReport, include_stages: bool) -> Self:
        return cls(
            period=Period(f.period),
            window_start=f.window.start,
            window_end=f.window.end,
            funnel=Funnel(
                stages=[FunnelStage.from_model(s) for s in f.stages] if include_stages else [],
                total_leads=f.total_leads,
                overall_conversion_rate=f.overall_conversion_rate,
                average_time_to_conversion_days=f.average_time_to_conversion_days,
            ),
            insights=[FunnelInsight.from_model(i) for i in f.insights],
            segmentation=FunnelSegmentation(
                by_source=[
                    FunnelSourceSegment(
                        key=r.key,
                        count=r.count,
                        converted=r.converted,
                        conversion_rate=r.conversion_rate,
                    )
                    for r in f.by_source
                ],
                by_budget=[
                    FunnelBudgetSegment(
                        band=BudgetBand(r.key),
                        count=r.count,
                        converted=r.converted,
                        conversion_rate=r.conversion_rate,
                    )
                    for r in f.by_budget
                ],
            ),
        )


@strawberry.input(name="FunnelSegment", description="Leads to analyse; every condition given holds")
class FunnelSegmentInput:
    source: LeadSource | None = None
    budget_band: BudgetBand | None = None
    property_type: PropertyType | None = None
    location: str | None = strawberry.field(
        default=None, description="Exact city, case-insensitive (e.g. `Austin, TX`)"
    )

    def to_model(self) -> funnel.FunnelSegment:
        return funnel.FunnelSegment(
            source=self.source,
            budget_band=self.budget_band,
            property_type=self.property_type,
            location=self.location,
        )


# ---- Workspace field (delegated to from resolvers/workspaces.py) --------------------------------


async def conversion_funnel_field(
    info: Info,
    scope: Scope,
    period: Period,
    segment: FunnelSegmentInput | None,
    include_stages: bool,
) -> ConversionFunnel:
    wanted = segment.to_model() if segment is not None else funnel.FunnelSegment()
    check_period(period.value, funnel.PERIODS)
    wanted.validate()

    async def compute() -> FunnelReport:
        async with info.context.db.custom_plans() as session:
            return await funnel.conversion_funnel(
                session, scope, period=period.value, segment=wanted
            )

    found = await info.context.cached(scope, ("conversionFunnel", period.value, wanted), compute)
    return ConversionFunnel.from_model(found, include_stages)
