"""The conversion funnel (seed 000): how far the leads created in a window got, how long each
stage took, where the funnel leaks (documented rules), and the same by source and budget band."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models.funnel.rollup import (
    BAND_BOUNDS,
    FUNNEL,
    BudgetBand,
    FunnelSegment,
    LeadFunnel,
    Tally,
    tallies,
)
from models.funnel.rules import (
    HIGH_IMPACT,
    MEDIUM_IMPACT,
    MIN_BASE,
    MIN_OPPORTUNITY,
    MIN_SEGMENT_BASE,
    RATE_FACTOR,
    STAGE_NAMES,
    TIME_FACTOR,
    FunnelInsight,
    FunnelInsightType,
    FunnelStage,
    Impact,
    bottlenecks,
    insights,
)
from models.periods import Window, check_period, rate, window
from models.scope import Scope

__all__ = [
    "BAND_BOUNDS",
    "HIGH_IMPACT",
    "MEDIUM_IMPACT",
    "MIN_BASE",
    "MIN_OPPORTUNITY",
    "MIN_SEGMENT_BASE",
    "PERIODS",
    "RATE_FACTOR",
    "TIME_FACTOR",
    "BudgetBand",
    "ConversionFunnel",
    "FunnelInsight",
    "FunnelInsightType",
    "FunnelSegment",
    "FunnelStage",
    "Impact",
    "LeadFunnel",
    "SegmentRow",
    "conversion_funnel",
]

PERIODS = ("D7", "D30", "D90", "Y1")


@dataclass(frozen=True, slots=True)
class SegmentRow:
    key: str
    count: int
    converted: int
    conversion_rate: float


@dataclass(frozen=True, slots=True)
class ConversionFunnel:
    period: str
    window: Window
    segment: FunnelSegment
    total_leads: int
    stages: list[FunnelStage]
    overall_conversion_rate: float
    average_time_to_conversion_days: float
    insights: list[FunnelInsight]
    by_source: list[SegmentRow]
    by_budget: list[SegmentRow]


def _rows(groups: dict[str, Tally]) -> list[SegmentRow]:
    return [
        SegmentRow(key, t.leads, t.reached[-1], rate(t.reached[-1], t.leads))
        for key, t in groups.items()
    ]


async def conversion_funnel(
    session: AsyncSession,
    scope: Scope,
    *,
    period: str = "D30",
    segment: FunnelSegment | None = None,
    now: datetime | None = None,
) -> ConversionFunnel:
    """The funnel of the viewer's leads created in the period's window (the cohort)."""
    check_period(period, PERIODS)
    segment = segment or FunnelSegment()
    segment.validate()
    span = window(period, now)
    groups = await tallies(session, scope, span, segment)

    total = Tally()
    by_source: dict[str, Tally] = {}
    by_band: dict[BudgetBand, Tally] = {b: Tally() for b in BudgetBand}
    for (source, band), t in groups.items():
        total.add(t)
        by_source.setdefault(source, Tally()).add(t)
        by_band[band].add(t)
    bands = {b: t for b, t in by_band.items() if t.leads}
    sources = dict(sorted(by_source.items(), key=lambda kv: (-kv[1].leads, kv[0])))

    found = bottlenecks(total)
    stages = [
        FunnelStage(
            stage=stage,
            name=STAGE_NAMES[stage],
            count=total.reached[k],
            percentage=100 * rate(total.reached[k], total.leads),
            conversion_rate=(1.0 if total.leads else 0.0) if k == 0 else total.stage_rate(k),
            decided_conversion_rate=(
                (1.0 if total.leads else 0.0) if k == 0 else total.decided_rate(k)
            ),
            average_time_days=total.average_days(k),
            average_step_days=0.0 if k == 0 else total.step_days(k),
            bottleneck=k in found,
            bottleneck_reason=found[k][1] if k in found else None,
        )
        for k, stage in enumerate(FUNNEL)
    ]
    segments = {f"source {s}": t for s, t in sources.items()} | {
        f"budget {b}": t for b, t in bands.items()
    }
    return ConversionFunnel(
        period=period,
        window=span,
        segment=segment,
        total_leads=total.leads,
        stages=stages,
        overall_conversion_rate=rate(total.reached[-1], total.leads),
        average_time_to_conversion_days=total.average_days(len(FUNNEL) - 1),
        insights=insights(total, segments, found),
        by_source=_rows(sources),
        by_budget=_rows({b.value: t for b, t in bands.items()}),
    )
