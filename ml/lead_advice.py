"""Lead advice: the sentences and recommendations of a lead insight (ml/lead_insights.py),
from the lead's SHAP factors (ml/explain.py) and its activity. Pure functions.

- Sentences explain a scored lead's current score: its FACTOR_TOP strongest SHAP factors (at
  least FACTOR_MIN log-odds either way), worded by FACTOR_SENTENCES / FACTOR_COUNTS, then its
  activity (engagement against the window before, ENGAGEMENT_STEP either way; no activity for
  QUIET_DAYS).
- Recommendations are the ADVICE registry: each rule that holds for the lead gives one, HIGH
  before MEDIUM before LOW (registry order within a priority), at most MAX_RECOMMENDATIONS;
  when none holds, the stage's NEXT_STEP (so every open lead has at least one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ml.explain import Contribution, Explanation
from ml.insights import Impact
from models.lead_insights import LeadPriority
from models.leads import Lead

FACTOR_TOP = 3
FACTOR_MIN = 0.10  # log-odds
ENGAGEMENT_STEP = 0.25  # relative change worth a sentence
QUIET_DAYS = 14
MAX_RECOMMENDATIONS = 3

# feature -> (sentence when it raises the odds, when it lowers them); {value} is the readable
# value. A factor lowers or raises the odds against the model's base rate: the wording names
# the value and its effect, never "high" or "low" (a large value can still weigh down).
FACTOR_SENTENCES: dict[str, tuple[str, str]] = {
    "timeline": (
        "Timeline ({value}) points to a ready buyer",
        "Timeline ({value}) points to a later purchase",
    ),
    "property_type": (
        "Buyers of {value} properties convert well",
        "Buyers of {value} properties convert less often",
    ),
    "location": ("{value} is a strong market for closing", "Leads in {value} close less often"),
    "source": ("Leads from {value} convert well", "Leads from {value} convert less often"),
    "agent": ("The assigned agent lifts the odds", "The assigned agent weighs on the odds"),
    "log_budget": (
        "Budget of ${value} fits buyers who close",
        "Budget of ${value} lowers the odds",
    ),
    "first_response_hours": (
        "First response after {value} helped the odds",
        "First response after {value} hurt the odds",
    ),
    "agent_closed_before": (
        "The agent's record ({value} closed leads) lifts the odds",
        "The agent's record ({value} closed leads) weighs on the odds",
    ),
    "agent_win_rate": (
        "The agent's win rate of {value} lifts the odds",
        "The agent's win rate of {value} weighs on the odds",
    ),
}
# counted engagement in the first 14 days: feature -> (one, several)
FACTOR_COUNTS: dict[str, tuple[str, str]] = {
    "emails_opened": ("email opened", "emails opened"),
    "emails_replied": ("email reply", "email replies"),
    "calls": ("call", "calls"),
    "website_visits": ("website visit", "website visits"),
}


class RecommendationType(StrEnum):
    CONTACT = "CONTACT"
    SHOWING = "SHOWING"
    CLOSING = "CLOSING"
    FOLLOW_UP = "FOLLOW_UP"
    ASSIGNMENT = "ASSIGNMENT"
    PRICING = "PRICING"
    NURTURE = "NURTURE"


@dataclass(frozen=True, slots=True)
class Recommendation:
    type: RecommendationType
    action: str
    priority: Impact
    reason: str


@dataclass(frozen=True, slots=True)
class LeadTrends:
    score_change: int | None
    engagement_events: int
    previous_engagement_events: int
    engagement_change: float | None
    last_activity: datetime | None


# ---- sentences ---------------------------------------------------------------------------------


def factor_sentence(c: Contribution) -> str:
    if c.feature in FACTOR_COUNTS:
        one, several = FACTOR_COUNTS[c.feature]
        single = c.value == "1"
        counted = f"{c.value} {one if single else several}" if c.value != "0" else f"No {several}"
        if c.shap > 0:
            return f"{counted} early on {'shows' if single else 'show'} interest"
        return f"{counted} early on {'weighs' if single else 'weigh'} on the odds"
    raises, lowers = FACTOR_SENTENCES.get(
        c.feature, (f"{c.feature} {{value}} raises the odds", f"{c.feature} {{value}} lowers them")
    )
    return (raises if c.shap > 0 else lowers).format(value=c.value)


def factor_sentences(explanation: Explanation) -> list[str]:
    strong = [c for c in explanation.contributions if abs(c.shap) >= FACTOR_MIN]
    strong.sort(key=lambda c: (-abs(c.shap), c.feature))
    return [factor_sentence(c) for c in strong[:FACTOR_TOP]]


def activity_sentences(trends: LeadTrends, quiet_days: int | None) -> list[str]:
    out = []
    change, now, before = (
        trends.engagement_change,
        trends.engagement_events,
        trends.previous_engagement_events,
    )
    if change is not None and abs(change) >= ENGAGEMENT_STEP:
        out.append(
            f"Engagement {'up' if change > 0 else 'down'} {abs(change):.0%} on the period "
            f"before ({now} against {before} events)"
        )
    elif change is None and now > 0:
        out.append(f"{now} engagement events in the period, none in the one before")
    if quiet_days is not None and quiet_days >= QUIET_DAYS:
        out.append(f"No activity for {quiet_days} days")
    return out


# ---- recommendations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeadFacts:
    """What the advice rules read about one lead."""

    lead: Lead
    priority: LeadPriority
    probability: float | None
    trends: LeadTrends
    quiet_days: int | None
    hours_old: float
    explanation: Explanation | None
    score: int | None = None  # the lead's current score

    def shap(self, feature: str) -> float:
        if self.explanation is None:
            return 0.0
        return next((c.shap for c in self.explanation.contributions if c.feature == feature), 0.0)


@dataclass(frozen=True, slots=True)
class AdviceRule:
    type: RecommendationType
    applies: Callable[[LeadFacts], bool]
    build: Callable[[LeadFacts], tuple[str, Impact, str]]  # action, priority, reason


def _money(amount: float) -> str:
    if amount >= 1_000_000:
        return f"${amount / 1_000_000:.1f}M".replace(".0M", "M")
    return f"${round(amount / 1000):,}K"


def _probability(f: LeadFacts) -> str:
    return "unknown" if f.probability is None else f"{f.probability:.0%}"


def _contact(f: LeadFacts) -> tuple[str, Impact, str]:
    urgent = f.priority is LeadPriority.URGENT
    return (
        "Call today and offer a showing within 24 hours"
        if urgent
        else "Contact the lead within 48 hours",
        Impact.HIGH,
        f"{f.priority.value} priority: score {f.score} in the top quartile"
        f"{' with a near timeline' if urgent else ''}, conversion probability {_probability(f)}",
    )


def _pricing(f: LeadFacts) -> tuple[str, Impact, str]:
    budget = float(f.lead.budget or 0)
    low, high = round(budget * 0.85, -4), round(budget * 1.15, -4)
    fits = "; the budget raises the conversion odds" if f.shap("log_budget") > 0 else ""
    return (
        f"Focus on listings between {_money(low)} and {_money(high)}",
        Impact.MEDIUM,
        f"Stated budget {_money(budget)}, +/- 15%{fits}",
    )


ADVICE: tuple[AdviceRule, ...] = (
    AdviceRule(
        RecommendationType.CONTACT,
        lambda f: (
            f.priority in (LeadPriority.URGENT, LeadPriority.HIGH)
            and f.lead.stage in ("NEW", "CONTACTED", "QUALIFIED")
        ),
        _contact,
    ),
    AdviceRule(
        RecommendationType.CONTACT,
        lambda f: f.lead.stage == "NEW" and f.hours_old >= 24,
        lambda f: (
            "Make the first contact today",
            Impact.HIGH,
            f"Still NEW {f.hours_old / 24:.0f} days after arriving",
        ),
    ),
    AdviceRule(
        RecommendationType.CLOSING,
        lambda f: f.lead.stage == "OFFER",
        lambda f: (
            "Follow up on the open offer within 48 hours",
            Impact.HIGH,
            f"An offer is on the table; conversion probability {_probability(f)}",
        ),
    ),
    AdviceRule(
        RecommendationType.SHOWING,
        lambda f: f.lead.stage in ("CONTACTED", "QUALIFIED") and (f.probability or 0) >= 0.5,
        lambda f: (
            "Schedule a property showing",
            Impact.HIGH,
            f"{f.lead.stage.title()} with a conversion probability of {_probability(f)}",
        ),
    ),
    AdviceRule(
        RecommendationType.FOLLOW_UP,
        lambda f: f.quiet_days is not None and f.quiet_days >= QUIET_DAYS,
        lambda f: (
            "Send a re-engagement email with new listings",
            Impact.HIGH
            if f.priority in (LeadPriority.URGENT, LeadPriority.HIGH)
            else Impact.MEDIUM,
            f"No activity for {f.quiet_days} days",
        ),
    ),
    AdviceRule(
        RecommendationType.FOLLOW_UP,
        lambda f: (
            (f.trends.engagement_change or 0) <= -0.5 and f.trends.previous_engagement_events >= 2
        ),
        lambda f: (
            "Check in: ask what changed in their search",
            Impact.MEDIUM,
            f"Engagement down {abs(f.trends.engagement_change or 0):.0%} "
            f"({f.trends.engagement_events} against {f.trends.previous_engagement_events} events)",
        ),
    ),
    AdviceRule(
        RecommendationType.ASSIGNMENT,
        lambda f: f.lead.agent_id is None,
        lambda f: (
            "Assign an agent",
            Impact.HIGH if f.priority is not LeadPriority.LOW else Impact.MEDIUM,
            f"Nobody works this {f.priority.value} priority lead",
        ),
    ),
    AdviceRule(RecommendationType.PRICING, lambda f: bool(f.lead.budget), _pricing),
    AdviceRule(
        RecommendationType.NURTURE,
        lambda f: f.priority is LeadPriority.LOW and f.lead.timeline in ("WITHIN_YEAR", "BROWSING"),
        lambda f: (
            "Add to a monthly nurture campaign",
            Impact.LOW,
            f"LOW priority and timeline {str(f.lead.timeline).replace('_', ' ').lower()}",
        ),
    ),
)
_RANK = {Impact.HIGH: 0, Impact.MEDIUM: 1, Impact.LOW: 2}

# when no rule holds, the stage's usual next step: every open lead gets one recommendation
NEXT_STEP: dict[str, str] = {
    "NEW": "Make the first contact",
    "CONTACTED": "Qualify budget, timeline and financing",
    "QUALIFIED": "Propose listings that match and offer a showing",
    "SHOWING": "Ask for feedback on the showing and discuss an offer",
    "OFFER": "Follow up on the open offer",
}


def _next_step(facts: LeadFacts) -> Recommendation:
    stage = str(facts.lead.stage)
    return Recommendation(
        RecommendationType.FOLLOW_UP,
        NEXT_STEP.get(stage, "Follow up"),
        Impact.LOW,
        f"The next step for a lead at {stage}; no other rule applies",
    )


def recommendations(facts: LeadFacts) -> tuple[Recommendation, ...]:
    found = [
        Recommendation(rule.type, *rule.build(facts)) for rule in ADVICE if rule.applies(facts)
    ] or [_next_step(facts)]
    found.sort(key=lambda r: _RANK[r.priority])  # stable: registry order within a priority
    return tuple(found[:MAX_RECOMMENDATIONS])
