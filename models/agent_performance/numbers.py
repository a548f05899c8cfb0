"""An agent's numbers over a window: the plain results the resolvers map, and the
documented constants (trend band, limits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from models.agents import AgentKind
from models.periods import Window, rate


class TrendLabel(StrEnum):
    IMPROVING = "IMPROVING"
    STABLE = "STABLE"
    DECLINING = "DECLINING"


class AgentRanking(StrEnum):
    CONVERSION_RATE = "CONVERSION_RATE"
    REVENUE = "REVENUE"
    RESPONSE_TIME = "RESPONSE_TIME"


# a trend is IMPROVING / DECLINING when the number moved by more than this share of its
# previous value in the better / worse direction; STABLE otherwise or without both windows
TREND_BAND = 0.05
# how many hours of the day and days of the week usage names
PEAK_HOURS = 3
BUSIEST_DAYS = 2
MAX_USAGE_BUCKETS = 1000
LEADERBOARD_MAX = 100


# ---- numbers ---------------------------------------------------------------------------------


@dataclass(slots=True)
class LeadNumbers:
    """An agent's leads of one window, as of the window's end."""

    assigned: int = 0
    converted: int = 0
    revenue: float = 0.0
    scored: int = 0
    average_score: float | None = None
    contacted: int = 0
    response_hours: float | None = None

    @property
    def conversion_rate(self) -> float:
        return rate(self.converted, self.assigned)


@dataclass(slots=True)
class AiNumbers:
    """An AI agent's AI_EXECUTION interactions started in the window."""

    executions: int = 0
    finished: int = 0
    succeeded: int = 0
    failed: int = 0
    average_seconds: float | None = None
    credits: int = 0
    satisfaction: float | None = None

    @property
    def success_rate(self) -> float:
        return rate(self.succeeded, self.finished)

    @property
    def error_rate(self) -> float:
        return rate(self.failed, self.finished)


@dataclass(slots=True)
class Trends:
    conversion: TrendLabel = TrendLabel.STABLE
    response_time: TrendLabel = TrendLabel.STABLE
    lead_quality: TrendLabel = TrendLabel.STABLE


@dataclass(slots=True)
class AgentStats:
    agent_id: int
    name: str
    kind: AgentKind
    visible: bool
    current: LeadNumbers
    previous: LeadNumbers
    ai: AiNumbers | None
    rank: int | None = None
    ranked: int = 0
    percentile: float | None = None
    trends: Trends = field(default_factory=Trends)
    insights: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Benchmarks:
    """Means over the ranked agents (those with leads in the window; response time: those
    that contacted one) of one kind, or of all agents."""

    average_conversion_rate: float = 0.0
    average_response_time_hours: float | None = None
    average_lead_score: float | None = None
    top_performer_conversion_rate: float = 0.0


@dataclass(slots=True)
class AgentStatsReport:
    window: Window
    agents: dict[int, AgentStats]
    benchmarks: dict[AgentKind, Benchmarks]
