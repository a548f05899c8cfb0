"""Ranks, benchmarks, trend labels and the leaderboard over computed agent numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.agent_performance.numbers import (
    LEADERBOARD_MAX,
    TREND_BAND,
    AgentRanking,
    AgentStats,
    AgentStatsReport,
    Benchmarks,
    LeadNumbers,
    TrendLabel,
    Trends,
)
from models.agents import AgentKind
from models.errors import BadUserInput

# ---- ranks, benchmarks, trends ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    """A leaderboard metric: which agents it ranks, its value, and the order (best first)."""

    ranking: AgentRanking
    eligible: Callable[[LeadNumbers], bool]
    value: Callable[[LeadNumbers], float]
    higher_is_better: bool


METRICS: dict[AgentRanking, Metric] = {
    m.ranking: m
    for m in (
        Metric(
            AgentRanking.CONVERSION_RATE,
            lambda n: n.assigned > 0,
            lambda n: n.conversion_rate,
            True,
        ),
        Metric(AgentRanking.REVENUE, lambda n: n.assigned > 0, lambda n: n.revenue, True),
        Metric(
            AgentRanking.RESPONSE_TIME,
            lambda n: n.contacted > 0,
            lambda n: n.response_hours or 0.0,
            False,
        ),
    )
}


def ranking(
    agents: list[AgentStats], by: AgentRanking, *, previous: bool = False
) -> list[AgentStats]:
    """The agents `by` ranks (those with data for it), best first; ties: more converted
    (response time: more contacted), then the lower id."""
    metric = METRICS[by]

    def numbers(s: AgentStats) -> LeadNumbers:
        return s.previous if previous else s.current

    def key(s: AgentStats) -> tuple[float, int, int]:
        n = numbers(s)
        value = metric.value(n)
        volume = n.contacted if by is AgentRanking.RESPONSE_TIME else n.converted
        return (-value if metric.higher_is_better else value, -volume, s.agent_id)

    return sorted((s for s in agents if metric.eligible(numbers(s))), key=key)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def benchmarks_of(agents: list[AgentStats]) -> Benchmarks:
    ranked = [s.current for s in agents if s.current.assigned > 0]
    rates = [n.conversion_rate for n in ranked]
    return Benchmarks(
        average_conversion_rate=_mean(rates) or 0.0,
        average_response_time_hours=_mean(
            [s.current.response_hours for s in agents if s.current.response_hours is not None]
        ),
        average_lead_score=_mean([n.average_score for n in ranked if n.average_score is not None]),
        top_performer_conversion_rate=max(rates, default=0.0),
    )


def trend(current: float | None, previous: float | None, *, higher_is_better: bool) -> TrendLabel:
    """IMPROVING / DECLINING past TREND_BAND of the previous value; STABLE within it or when
    either window has no value."""
    if current is None or previous is None:
        return TrendLabel.STABLE
    band = TREND_BAND * abs(previous)
    if current - previous > band:
        return TrendLabel.IMPROVING if higher_is_better else TrendLabel.DECLINING
    if previous - current > band:
        return TrendLabel.DECLINING if higher_is_better else TrendLabel.IMPROVING
    return TrendLabel.STABLE


def trends_of(current: LeadNumbers, previous: LeadNumbers) -> Trends:
    def conversion(n: LeadNumbers) -> float | None:
        return n.conversion_rate if n.assigned else None

    return Trends(
        conversion=trend(conversion(current), conversion(previous), higher_is_better=True),
        response_time=trend(
            current.response_hours, previous.response_hours, higher_is_better=False
        ),
        lead_quality=trend(current.average_score, previous.average_score, higher_is_better=True),
    )


# ---- leaderboard -----------------------------------------------------------------------------


@dataclass(slots=True)
class LeaderboardEntry:
    rank: int
    agent_id: int
    value: float
    change: int | None


@dataclass(slots=True)
class Leaderboard:
    entries: list[LeaderboardEntry]
    benchmarks: Benchmarks
    ranked: int


def leaderboard(
    report: AgentStatsReport, by: AgentRanking, kind: AgentKind | None, limit: int
) -> Leaderboard:
    """Ranks over every agent of the workspace (of `kind`); entries: the ones the viewer may
    see, best first, at most `limit`. change = previous rank - rank (up is positive), null
    when the agent was not ranked in the previous window."""
    check_limit(limit)
    agents = [s for s in report.agents.values() if kind is None or s.kind is kind]
    metric = METRICS[by]
    before = {s.agent_id: i for i, s in enumerate(ranking(agents, by, previous=True), start=1)}
    ordered = ranking(agents, by)
    entries = [
        LeaderboardEntry(
            rank=position,
            agent_id=s.agent_id,
            value=metric.value(s.current),
            change=before[s.agent_id] - position if s.agent_id in before else None,
        )
        for position, s in enumerate(ordered, start=1)
        if s.visible
    ]
    return Leaderboard(
        entries=entries[:limit], benchmarks=benchmarks_of(agents), ranked=len(ordered)
    )


def check_limit(limit: int) -> None:
    if not 1 <= limit <= LEADERBOARD_MAX:
        raise BadUserInput(
            f"`limit` must be 1..{LEADERBOARD_MAX}", fields={"limit": f"1..{LEADERBOARD_MAX}"}
        )
