"""The overview's plain results (what the resolvers map) and its documented constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from models.agents import Agent
from models.leads import LeadStage
from models.periods import Window, rate
from models.sales_performance.tables import PerformanceThreshold

# the seed's periods (1h, 24h, 7d, 30d); longer windows are the other fields' business
PERFORMANCE_PERIODS = ("H1", "H24", "D7", "D30")
HOURLY = ("H1", "H24")  # periods whose trends go per UTC hour; the others per UTC day
QUALIFIED_STAGES = (LeadStage.QUALIFIED, LeadStage.SHOWING, LeadStage.OFFER, LeadStage.WON)
CLOSED_STAGES = (LeadStage.WON, LeadStage.LOST)
ENGAGEMENT_TYPES = ("EMAIL_SENT", "EMAIL_OPENED", "EMAIL_REPLIED", "MEETING", "CALL")

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Rate(Generic[K]):
    """A group's (a source's, an agent's) new leads of the window and its leads WON in it."""

    key: K
    leads: int
    converted: int

    @property
    def rate(self) -> float:
        return rate(self.converted, self.leads)


AgentRate = Rate[Agent]  # a type only: build one with Rate(agent, ...)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    at: datetime
    leads: int
    converted: int
    scored: int
    score_sum: int

    @property
    def rate(self) -> float:
        return rate(self.converted, self.leads)

    @property
    def score(self) -> float:
        return rate(self.score_sum, self.scored)


@dataclass(slots=True)
class WindowNumbers:
    """The numbers of one window that alerts compare with the previous window's."""

    leads: int = 0
    active: int = 0
    converted: int = 0
    scored: int = 0
    score_sum: int = 0
    high_value: int = 0
    qualified: int = 0
    responded: int = 0
    response_hours: float = 0.0  # the median
    events: dict[str, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float:
        return rate(self.converted, self.leads)

    @property
    def average_score(self) -> float:
        return rate(self.score_sum, self.scored)

    def event_rate(self, part: str, *whole: str) -> float:
        return rate(self.events.get(part, 0), sum(self.events.get(w, 0) for w in whole))


@dataclass(frozen=True, slots=True)
class Alert:
    type: str  # THRESHOLD or TREND
    severity: str  # CRITICAL or WARNING
    metric: str
    message: str
    threshold: float
    current: float
    previous: float | None
    change: float | None


@dataclass(slots=True)
class Performance:
    period: str
    window: Window
    current: WindowNumbers
    previous: WindowNumbers
    daily: int
    weekly: int
    monthly: int
    by_source: list[Rate[str]]
    by_agent: list[AgentRate]
    trend: list[TrendPoint]
    thresholds: PerformanceThreshold
    alerts: list[Alert]

    @property
    def growth(self) -> float:
        """New leads of this window against the previous one, relative (0: none before)."""
        return rate(self.current.leads - self.previous.leads, self.previous.leads)
