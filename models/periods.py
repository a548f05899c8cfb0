"""Time windows of the analytics fields: the contract's Period names, windows ending now and
the one before them, UTC buckets (date_trunc in Python and SQL), the division every rate uses
(0 for nothing, never NaN) and the high-value score rule the fields share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

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

# a lead scoring at least this is high value (sales performance; scoring trends' "excellent")
HIGH_VALUE_SCORE = 80


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


def change(current: float | None, previous: float | None) -> float | None:
    """(current - previous) / previous; None without both numbers or when previous is 0."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous


def rate(part: float, whole: float) -> float:
    """part / whole, 0.0 when there is nothing to divide by."""
    return part / whole if whole else 0.0


# ---- UTC buckets: hour, day, week (Monday) or month, as Postgres date_trunc(unit, at, 'UTC') --


def trunc(at: datetime, unit: str) -> datetime:
    """Start of the UTC hour / day / week (Monday, like Postgres) / month holding `at`."""
    at = at.astimezone(UTC)
    if unit == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_bucket(bucket: datetime, unit: str) -> datetime:
    """Start of the bucket after the one starting at `bucket`."""
    if unit == "hour":
        return bucket + timedelta(hours=1)
    if unit == "day":
        return bucket + timedelta(days=1)
    if unit == "week":
        return bucket + timedelta(days=7)
    return (bucket + timedelta(days=32)).replace(day=1)


def bucket_starts(span: Window, unit: str) -> list[datetime]:
    """Every bucket touching [start, end), oldest first."""
    out: list[datetime] = []
    at = trunc(span.start, unit)
    while at < span.end:
        out.append(at)
        at = next_bucket(at, unit)
    return out


def trunc_sql(unit: str, column: Any) -> Any:
    """date_trunc(unit, column, 'UTC') with the unit and zone as literals: the expression must
    render the same in SELECT and GROUP BY (bind parameters would differ)."""
    return sa.func.date_trunc(sa.literal_column(f"'{unit}'"), column, sa.literal_column("'UTC'"))
