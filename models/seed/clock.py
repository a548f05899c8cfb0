"""Synthetic time: int64 microseconds since the epoch, with growth and a weekly/daily rhythm.

Every generator works on int64 arrays (vectorised, exact, deterministic) and turns them into
timestamptz columns only when building frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HISTORY_DAYS = 540  # ~18 months of history behind `now`

# activity by hour of day (UTC) and day of week (Monday first); the maximum is 1 so the
# product can be used directly as an acceptance probability
HOUR_WEIGHT = np.array(
    [0.05, 0.03, 0.02, 0.02, 0.03, 0.06, 0.15, 0.35, 0.60, 0.80, 0.90, 0.90]
    + [0.80, 0.85, 1.00, 1.00, 0.95, 0.80, 0.60, 0.45, 0.35, 0.25, 0.15, 0.08]
)
DOW_WEIGHT = np.array([1.00, 1.00, 0.95, 0.95, 0.85, 0.40, 0.30])


def rhythm(t: np.ndarray) -> np.ndarray:
    hour = (t // HOUR) % 24
    dow = (t // DAY + 3) % 7  # 1970-01-01 was a Thursday
    return HOUR_WEIGHT[hour] * DOW_WEIGHT[dow]


@dataclass(frozen=True, slots=True)
class Clock:
    now: int
    start: int

    @classmethod
    def at(cls, now: datetime | None) -> Clock:
        moment = now or datetime.now(UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # whole seconds: shorter CSV, and nothing generated can land after `now`
        us = int(moment.timestamp()) * SECOND
        return cls(now=us, start=us - HISTORY_DAYS * DAY)

    def history(self, rng: np.random.Generator, n: int, growth: float = 1.2) -> np.ndarray:
        """n times in [start, now): density grows as e^(growth * x) towards now, times rhythm."""
        span = self.now - self.start
        k = np.expm1(growth)

        def draw(m: int) -> np.ndarray:
            x = np.log1p(rng.random(m) * k) / growth
            return self.start + (x * span).astype(np.int64)

        return _thinned(rng, draw, n)

    def within(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One time per window [lo, hi), following the rhythm; empty windows give lo."""
        width = np.maximum(hi - lo, 0).astype(np.float64)
        out = lo + (rng.random(lo.size) * width).astype(np.int64)
        pending = np.flatnonzero(width > HOUR)  # inside an hour the rhythm is flat anyway
        for _ in range(10):
            if pending.size == 0:
                break
            rejected = rng.random(pending.size) >= rhythm(out[pending])
            pending = pending[rejected]
            out[pending] = lo[pending] + (rng.random(pending.size) * width[pending]).astype(
                np.int64
            )
        return out

    def recent(
        self, rng: np.random.Generator, n: int, max_age: int, min_age: int = 0
    ) -> np.ndarray:
        """n times uniformly between `max_age` and `min_age` before now (forced fresh data)."""
        return self.now - rng.integers(min_age, max_age, n, endpoint=False)


def _thinned(rng: np.random.Generator, draw: Callable[[int], np.ndarray], n: int) -> np.ndarray:
    """Rejection sampling against the rhythm, vectorised: redraw only the rejected ones."""
    out = draw(n)
    pending = np.arange(n)
    for _ in range(12):
        rejected = rng.random(pending.size) >= rhythm(out[pending])
        pending = pending[rejected]
        if pending.size == 0:
            break
        out[pending] = draw(pending.size)
    return out
