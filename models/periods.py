"""Time windows of the analytics fields: the contract's Period names, windows ending now and
the one before them, and the division every rate uses (0 for nothing, never NaN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.db import utcnow
from models.errors import BadUserInput

# the contract's Period names -> window length
PERIODS: dict[str, timedelta] = {
    "H1": timedelta(hours=1),
    "H24": timedelta(hours=24),
    "D7": timedelta(days=7),
    "D30": timedelta(days=30),
    "D90": timedelta(days=90),
    "Y1": timedelta(days=365),
}

# Granularity names -> Postgres date_trunc unit
TRUNC_UNITS: dict[str, str] = {"HOUR": "hour", "DAY": "day", "WEEK": "week", "MONTH": "month"}


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end): the period's window, ending at `end` (now, unless a test fixes it)."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Window:
        """The window of the same length just before this one (for growth and trends)."""
        return Window(self.start - self.length, self.start)

    def contains(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


def check_period(name: str, allowed: tuple[str, ...], field_name: str = "period") -> None:
    """BAD_USER_INPUT naming the field when a field accepts only some periods (seed 000:
    scoring trends and the funnel take 7d/30d/90d)."""
    if name not in allowed:
        raise BadUserInput(
            f"`{field_name}` must be one of {', '.join(allowed)}",
            fields={field_name: f"one of {', '.join(allowed)}"},
        )


def window(period: str, now: datetime | None = None) -> Window:
    end = now or utcnow()
    return Window(end - PERIODS[period], end)


def rate(part: float, whole: float) -> float:
    """part / whole, 0.0 when there is nothing to divide by."""
    return part / whole if whole else 0.0
