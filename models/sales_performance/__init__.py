"""The sales performance overview (seed 000 "Get Performance Overview"): lead generation,
quality, conversion, engagement and their trends over a period, and the workspace's alert
thresholds (`performance_threshold`) the overview's alerts compare against.

Rules (README "Performance overview"), for a window W = [now - period, now) and the window
of the same length before it:
- total leads: leads created in W; active: of those, not WON or LOST now; converted: leads
  WON in W (`converted_at` in W); conversion rate = converted / total (conversions per new
  lead, the seed's arithmetic; 0 when no lead was created).
- average lead score: mean current score of W's scored leads; high value: score >= 80
  (models.periods.HIGH_VALUE_SCORE); qualified: now at QUALIFIED or beyond (QUALIFIED,
  SHOWING, OFFER, WON).
- response time: median hours from a lead's creation to its first call or email sent within
  14 days (the `lead_engagement` rollup), over W's leads that got one.
- engagement: events in W; email open rate = EMAIL_OPENED / EMAIL_SENT, response rate =
  EMAIL_REPLIED / EMAIL_SENT, meeting booked rate = MEETING / (EMAIL_SENT + CALL).
- trends: per UTC hour (H1, H24) or day (D7, D30) of W, the conversion rate and the average
  score of the bucket's new leads.
- alerts: the ALERT_RULES registry (alerts.py) against the workspace's thresholds.
"""

from __future__ import annotations

from models.periods import HIGH_VALUE_SCORE
from models.sales_performance.alerts import ALERT_RULES, AlertRule, performance_alerts
from models.sales_performance.numbers import (
    CLOSED_STAGES,
    ENGAGEMENT_TYPES,
    HOURLY,
    PERFORMANCE_PERIODS,
    QUALIFIED_STAGES,
    AgentRate,
    Alert,
    Performance,
    Rate,
    TrendPoint,
    WindowNumbers,
)
from models.sales_performance.report import sales_performance
from models.sales_performance.tables import LeadEventHour, PerformanceThreshold
from models.sales_performance.thresholds import (
    THRESHOLD_SETTINGS,
    ThresholdSetting,
    load_thresholds,
    update_thresholds,
)

__all__ = [
    "ALERT_RULES",
    "CLOSED_STAGES",
    "ENGAGEMENT_TYPES",
    "HIGH_VALUE_SCORE",
    "HOURLY",
    "PERFORMANCE_PERIODS",
    "QUALIFIED_STAGES",
    "THRESHOLD_SETTINGS",
    "AgentRate",
    "Alert",
    "AlertRule",
    "LeadEventHour",
    "Performance",
    "PerformanceThreshold",
    "Rate",
    "ThresholdSetting",
    "TrendPoint",
    "WindowNumbers",
    "load_thresholds",
    "performance_alerts",
    "sales_performance",
    "update_thresholds",
]
