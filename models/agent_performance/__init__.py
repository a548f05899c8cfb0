"""Agent analytics (human and AI): each agent's numbers over a window and the one before it,
ranks, trend labels and insights (seed 000 "Agent Performance", seed 001 agents/performance,
agents/usage, leaderboards), and each agent's usage pattern.

Rules (also in the field descriptions and the README):

- A window's leads of an agent: leads created in the window whose `agent_id` is the agent
  now (assignments carry no time of their own, so a lead counts at its creation).
- Every number of a window counts only what had happened by the window's end (for the current
  window that is now), so a window and the one before it compare like for like.
- Converted: `converted_at` before the window's end; revenue: the sum of those leads' `value`.
- Response time: hours from a lead's creation to the agent's first CALL, EMAIL_SENT or MEETING
  event on it (`lead_event.agent_id`), averaged over the window's leads the agent contacted
  by the window's end (rollup `lead_first_contact`, migration 0014).
- AI numbers: the agent's AI_EXECUTION interactions started in the window.
- Ranks: over all the workspace's agents (whatever the viewer may see) with leads in the
  window, best first, ties by more converted then lower id.
"""

from __future__ import annotations

from models.agent_performance.numbers import (
    LEADERBOARD_MAX,
    MAX_USAGE_BUCKETS,
    TREND_BAND,
    AgentRanking,
    AgentStats,
    AgentStatsReport,
    AiNumbers,
    Benchmarks,
    LeadNumbers,
    TrendLabel,
    Trends,
)
from models.agent_performance.ranking import (
    Leaderboard,
    LeaderboardEntry,
    check_limit,
    leaderboard,
    ranking,
)
from models.agent_performance.stats import agent_stats, may_read, visible_agent
from models.agent_performance.tables import (
    AgentUsageDay,
    AgentUsageDayMember,
    AgentUsageHour,
    LeadFirstContact,
)
from models.agent_performance.usage import (
    AgentUsage,
    UsagePoint,
    agent_usage,
    bucket_starts,
    empty_usage,
    next_bucket,
    usage_window,
)

__all__ = [
    "LEADERBOARD_MAX",
    "MAX_USAGE_BUCKETS",
    "TREND_BAND",
    "AgentRanking",
    "AgentStats",
    "AgentStatsReport",
    "AgentUsage",
    "AgentUsageDay",
    "AgentUsageDayMember",
    "AgentUsageHour",
    "AiNumbers",
    "Benchmarks",
    "LeadFirstContact",
    "LeadNumbers",
    "Leaderboard",
    "LeaderboardEntry",
    "TrendLabel",
    "Trends",
    "UsagePoint",
    "agent_stats",
    "agent_usage",
    "bucket_starts",
    "check_limit",
    "empty_usage",
    "leaderboard",
    "may_read",
    "next_bucket",
    "ranking",
    "usage_window",
    "visible_agent",
]
