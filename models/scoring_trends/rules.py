"""The documented rules of scoring trends: periods and buckets, thresholds, the trend label,
reasons of a rise, and the recommendation registry of concerning segments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from models.errors import BadUserInput
from models.periods import HIGH_VALUE_SCORE, PERIODS, check_period, trunc
from models.scoring_trends.results import Segment

TREND_PERIODS = ("D7", "D30", "D90")
UNITS = {"DAY": "day", "WEEK": "week", "MONTH": "month"}
MAX_LEAD_IDS = 1000
BANDS = (("excellent", HIGH_VALUE_SCORE), ("good", 60), ("moderate", 40), ("low", 0))
MIN_IMPROVEMENT = 10  # points; smaller rises are noise between two scorings
TOP_IMPROVERS = 5
IMPROVING = 1.0  # mean change per rescoring, points, at or above which the trend is IMPROVING
DECLINING = -1.0
MIN_SEGMENT_SAMPLE = 20
CONCERNING_DROP = -2.0
UNSPECIFIED = "UNSPECIFIED"


def window_start(now: datetime, period: str, unit: str) -> datetime:
    """Start of the bucket holding `now - period`."""
    return trunc(now - PERIODS[period], unit)


# ---- reasons ------------------------------------------------------------------------------------

# how an activity reads in a reason: event type -> (singular, plural)
ACTIVITY_WORDS: dict[str, tuple[str, str]] = {
    "EMAIL_OPENED": ("email opened", "emails opened"),
    "EMAIL_REPLIED": ("email reply", "email replies"),
    "EMAIL_SENT": ("email sent", "emails sent"),
    "CALL": ("call", "calls"),
    "MEETING": ("meeting", "meetings"),
    "SHOWING": ("showing", "showings"),
    "WEBSITE_VISIT": ("website visit", "website visits"),
    "NOTE": ("note", "notes"),
}


def reason_text(
    activity: dict[str, int],
    stages: tuple[str | None, str | None] | None,
    version: str | None,
    before_version: str | None,
) -> str:
    """What the data shows changed between a lead's two scorings, most telling first."""
    parts: list[str] = []
    if stages is not None and stages[1] is not None:
        parts.append(f"stage {stages[0] or '?'} -> {stages[1]}")
    for kind, (one, many) in ACTIVITY_WORDS.items():
        n = activity.get(kind, 0)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    if version is not None and before_version is not None and version != before_version:
        parts.append(f"rescored by model {version} (was {before_version})")
    if not parts:
        return "No new activity since the previous scoring (time-based factors moved)"
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A rule of the registry: applies to a segment (dimension, and value or any)."""

    dimension: str
    value: str | None
    text: str

    def matches(self, segment: Segment) -> bool:
        return self.dimension == segment.dimension and self.value in (None, segment.value)


# specific rules first; the first match wins
RECOMMENDATIONS: tuple[Recommendation, ...] = (
    Recommendation("SOURCE", "PAID_ADS", "Review ad targeting and landing pages for this channel"),
    Recommendation("SOURCE", "SOCIAL_MEDIA", "Qualify social leads faster with a short form"),
    Recommendation("SOURCE", "COLD_CALL", "Move cold-call leads to a nurture sequence"),
    Recommendation("SOURCE", "EMAIL_CAMPAIGN", "Refresh the campaign content and segmenting"),
    Recommendation("SOURCE", "PORTAL", "Respond to portal leads within the hour"),
    Recommendation("SOURCE", "REFERRAL", "Follow up referrals personally and quickly"),
    Recommendation("SOURCE", "WEBSITE", "Add a follow-up offer to website enquiries"),
    Recommendation("SOURCE", "OPEN_HOUSE", "Call open-house visitors within a day"),
    Recommendation("PROPERTY_TYPE", "COMMERCIAL", "Target with investment-focused content"),
    Recommendation("PROPERTY_TYPE", "MULTI_FAMILY", "Target with investment-focused content"),
    Recommendation("PROPERTY_TYPE", "LAND", "Share zoning and development information"),
    Recommendation("PROPERTY_TYPE", UNSPECIFIED, "Ask these leads what property they want"),
    Recommendation("SOURCE", None, "Review how this channel's leads are followed up"),
    Recommendation("PROPERTY_TYPE", None, "Send listings matched to these leads' budgets"),
)


def recommendation_for(segment: Segment) -> str:
    return next(r.text for r in RECOMMENDATIONS if r.matches(segment))


def overall_trend(average_improvement: float) -> str:
    if average_improvement >= IMPROVING:
        return "IMPROVING"
    if average_improvement <= DECLINING:
        return "DECLINING"
    return "STABLE"


def check_arguments(period: str, group_by: str, lead_ids: Sequence[object] | None) -> None:
    """BAD_USER_INPUT before anything is read or cached."""
    check_period(period, TREND_PERIODS)
    check_period(group_by, tuple(UNITS), "groupBy")
    if lead_ids is not None and len(lead_ids) > MAX_LEAD_IDS:
        raise BadUserInput(
            f"`leadIds` takes at most {MAX_LEAD_IDS} ids",
            fields={"leadIds": f"at most {MAX_LEAD_IDS} ids"},
        )
