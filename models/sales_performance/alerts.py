"""The overview's alerts: a registry of watched metrics, each compared with its configured
threshold (THRESHOLD) and with the previous window (TREND)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.periods import change
from models.sales_performance.numbers import Alert, Performance, WindowNumbers


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One watched metric: its value in a window (None: no data to judge), which way is
    bad, and the threshold column; messages show values in `unit`."""

    metric: str
    label: str
    column: str
    higher_is_worse: bool
    value: Callable[[Performance, WindowNumbers], float | None]
    unit: str = ""
    trend: bool = True

    def show(self, value: float) -> str:
        if self.unit == "%":
            return f"{value * 100:.1f}%"
        return f"{value:.1f}{self.unit}"


def _with(sample: int, value: float) -> float | None:
    return value if sample > 0 else None


ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "conversionRate",
        "Conversion rate",
        "min_conversion_rate",
        False,
        lambda p, n: _with(n.leads, n.conversion_rate),
        "%",
    ),
    AlertRule(
        "responseTimeHours",
        "Response time",
        "max_response_time_hours",
        True,
        lambda p, n: _with(n.responded, n.response_hours),
        " h",
    ),
    AlertRule(
        "averageLeadScore",
        "Average lead score",
        "min_average_lead_score",
        False,
        lambda p, n: _with(n.scored, n.average_score),
    ),
    AlertRule(
        "emailOpenRate",
        "Email open rate",
        "min_email_open_rate",
        False,
        lambda p, n: _with(
            n.events.get("EMAIL_SENT", 0), n.event_rate("EMAIL_OPENED", "EMAIL_SENT")
        ),
        "%",
    ),
    AlertRule(
        "leadGrowth",
        "Lead growth",
        "min_lead_growth",
        False,
        lambda p, n: _with(p.previous.leads, p.growth) if n is p.current else None,
        "%",
        trend=False,
    ),
)


def performance_alerts(p: Performance) -> list[Alert]:
    """THRESHOLD (CRITICAL): the window's value is on the wrong side of its configured
    threshold. TREND (WARNING): it is worse than the previous window's by at least
    `max_change`, relative. Metrics without data in a window raise nothing."""
    out: list[Alert] = []
    for rule in ALERT_RULES:
        current = rule.value(p, p.current)
        if current is None:
            continue
        previous = rule.value(p, p.previous) if rule.trend else None
        moved = change(current, previous)
        limit = getattr(p.thresholds, rule.column)
        if limit is not None and (current > limit if rule.higher_is_worse else current < limit):
            side = "above" if rule.higher_is_worse else "below"
            out.append(
                Alert(
                    "THRESHOLD",
                    "CRITICAL",
                    rule.metric,
                    f"{rule.label} {rule.show(current)} is {side} the {rule.show(limit)} threshold",
                    limit,
                    current,
                    previous,
                    moved,
                )
            )
        worse = None if moved is None else (moved if rule.higher_is_worse else -moved)
        if worse is not None and worse >= p.thresholds.max_change - 1e-12:
            verb = "increased" if moved is not None and moved > 0 else "decreased"
            out.append(
                Alert(
                    "TREND",
                    "WARNING",
                    rule.metric,
                    f"{rule.label} {verb} by {abs(moved or 0) * 100:.0f}% "
                    f"({rule.show(current)} vs {rule.show(previous or 0.0)})",
                    p.thresholds.max_change,
                    current,
                    previous,
                    moved,
                )
            )
    return out
