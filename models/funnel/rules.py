"""The funnel's rules: stage names, the bottleneck rule, benchmarks and insights with their
recommendations (a registry per stage). Pure functions over `Tally` sums."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from enum import StrEnum

from models.funnel.rollup import FUNNEL, Tally
from models.leads import LeadStage

STAGE_NAMES = {
    LeadStage.NEW: "Lead Created",
    LeadStage.CONTACTED: "Initial Contact",
    LeadStage.QUALIFIED: "Qualified",
    LeadStage.SHOWING: "Property Showing",
    LeadStage.OFFER: "Offer Submitted",
    LeadStage.WON: "Closed Deal",
}
# a stage is judged once MIN_BASE leads are decided at the stage before it (bottlenecks) or
# reached it (insights)
MIN_BASE = 20
RATE_FACTOR = 0.8  # the lowest decided rate is a bottleneck below 80% of the median one
TIME_FACTOR = 2.0  # a step is a bottleneck when it takes over twice the median step
# the benchmark of a stage: the best rate among segments with this many leads before it
MIN_SEGMENT_BASE = 30
MIN_OPPORTUNITY = 0.05  # an OPPORTUNITY insight needs at least +5% closed deals
HIGH_IMPACT, MEDIUM_IMPACT = 0.15, 0.05


class FunnelInsightType(StrEnum):
    BOTTLENECK = "BOTTLENECK"
    OPPORTUNITY = "OPPORTUNITY"


class Impact(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


# what to do about a stage: (when too few leads get through, when they take too long)
RECOMMENDATIONS: dict[LeadStage, tuple[str, str]] = {
    LeadStage.CONTACTED: (
        "Assign every new lead to an agent at once: unassigned leads are never contacted",
        "Improve initial response time: auto-assign and answer new leads within minutes",
    ),
    LeadStage.QUALIFIED: (
        "Qualify on the first call: budget, timeline and financing in one short script",
        "Book the qualification call during first contact instead of following up later",
    ),
    LeadStage.SHOWING: (
        "Send qualified leads matched listings and virtual tours to turn interest into showings",
        "Implement automated showing scheduling",
    ),
    LeadStage.OFFER: (
        "Follow up within 24 hours of every showing with comparables and a pre-approval check",
        "Prepare offer paperwork and financing before the showing",
    ),
    LeadStage.WON: (
        "Coach agents on negotiation and bring financing partners in before the offer",
        "Track open offers daily and clear inspection and financing blockers early",
    ),
}


@dataclass(frozen=True, slots=True)
class FunnelStage:
    stage: LeadStage
    name: str
    count: int
    percentage: float  # of the cohort, 0..100
    conversion_rate: float  # of the stage before, 0..1
    decided_conversion_rate: float  # of those at the stage before that moved on or were lost
    average_time_days: float  # from creation to first reaching the stage
    average_step_days: float  # from the stage before to this one
    bottleneck: bool
    bottleneck_reason: str | None


@dataclass(frozen=True, slots=True)
class FunnelInsight:
    type: FunnelInsightType
    stage: LeadStage
    name: str
    impact: Impact
    recommendation: str
    reason: str
    potential_improvement: float  # relative growth in closed deals, 0.15 = +15%
    additional_conversions: int
    benchmark_rate: float | None
    benchmark_segment: str | None


def _judged(total: Tally) -> list[int]:
    """Stages insights look at: after NEW, with MIN_BASE+ leads at the stage before."""
    return [k for k in range(1, len(FUNNEL)) if total.reached[k - 1] >= MIN_BASE]


def bottlenecks(total: Tally) -> dict[int, tuple[str, str]]:
    """Stage index -> (kind "rate" / "time", reason), over the stages after NEW whose decided
    base (leads that moved on from the stage before, or were lost there) is MIN_BASE or more:
    the one with the lowest decided rate when that is below RATE_FACTOR x the median decided
    rate; and each whose average step from the stage before takes over TIME_FACTOR x the
    median step."""
    judged = [k for k in range(1, len(FUNNEL)) if total.decided_base(k) >= MIN_BASE]
    found: dict[int, tuple[str, str]] = {}
    if len(judged) < 2:
        return found
    rates = {k: total.decided_rate(k) for k in judged}
    median_rate = statistics.median(rates.values())
    lowest = min(judged, key=lambda k: (rates[k], k))
    if rates[lowest] < RATE_FACTOR * median_rate:
        prev, stage = FUNNEL[lowest - 1], FUNNEL[lowest]
        found[lowest] = (
            "rate",
            f"Only {rates[lowest]:.1%} of the {prev} leads that moved on or were lost reached "
            f"{stage} ({total.reached[lowest]} of {total.decided_base(lowest)}), against a "
            f"median stage conversion of {median_rate:.1%}",
        )
    timed = [k for k in judged if total.timed[k]]
    if len(timed) >= 2:
        steps = {k: total.step_days(k) for k in timed}
        median_step = statistics.median(steps.values())
        for k in timed:
            if k not in found and median_step > 0 and steps[k] > TIME_FACTOR * median_step:
                found[k] = (
                    "time",
                    f"Long delay from {FUNNEL[k - 1]} to {FUNNEL[k]}: {steps[k]:.1f} days on "
                    f"average, {steps[k] / median_step:.1f}x the median step of "
                    f"{median_step:.1f} days",
                )
    return found


def _impact(potential: float) -> Impact:
    if potential >= HIGH_IMPACT:
        return Impact.HIGH
    return Impact.MEDIUM if potential >= MEDIUM_IMPACT else Impact.LOW


def benchmark(
    k: int, segments: dict[str, Tally], current: float
) -> tuple[float, str | None, float]:
    """(best rate, its segment, potential): the best stage-k rate among the segments with at
    least MIN_SEGMENT_BASE leads at the stage before; potential = best / current - 1, the
    relative growth in closed deals if stage k converted that well (other stages unchanged;
    0 when no segment does better or the stage converts nobody)."""
    best, where = current, None
    for name, t in segments.items():
        if t.reached[k - 1] >= MIN_SEGMENT_BASE and t.stage_rate(k) > best:
            best, where = t.stage_rate(k), name
    potential = best / current - 1 if where is not None and current > 0 else 0.0
    return best, where, potential


def insights(
    total: Tally, segments: dict[str, Tally], found: dict[int, tuple[str, str]]
) -> list[FunnelInsight]:
    """A BOTTLENECK insight per bottleneck stage, and an OPPORTUNITY per other judged stage that
    its benchmark would grow by MIN_OPPORTUNITY or more; bottlenecks first, then by potential."""
    out: list[FunnelInsight] = []
    won = total.reached[-1]
    for k in _judged(total):
        stage, current = FUNNEL[k], total.stage_rate(k)
        best, where, potential = benchmark(k, segments, current)
        if k in found:
            kind, reason = found[k]
            kind_type = FunnelInsightType.BOTTLENECK
        elif potential >= MIN_OPPORTUNITY:
            kind, kind_type = "rate", FunnelInsightType.OPPORTUNITY
            reason = (
                f"{where} converts {best:.1%} of {FUNNEL[k - 1]} leads to {stage}, "
                f"against {current:.1%} overall"
            )
        else:
            continue
        out.append(
            FunnelInsight(
                type=kind_type,
                stage=stage,
                name=STAGE_NAMES[stage],
                impact=_impact(potential),
                recommendation=RECOMMENDATIONS[stage][0 if kind == "rate" else 1],
                reason=reason,
                potential_improvement=potential,
                additional_conversions=round(won * potential),
                benchmark_rate=best if where is not None else None,
                benchmark_segment=where,
            )
        )
    out.sort(key=lambda i: (i.type is not FunnelInsightType.BOTTLENECK, -i.potential_improvement))
    return out
