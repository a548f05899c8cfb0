"""The README's analytics dashboard: every issue-5 field in one request, for every role.

The fields' numbers are checked one by one in their own modules; this checks they work
together (one request, computed concurrently, cached as a whole per field) and that the
README's example stays true."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from tests.client import Persona

README = Path(__file__).resolve().parents[2] / "README.md"
DASHBOARD = next(
    block
    for block in re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)
    if "leadInsights" in block and "workflowPerformance" in block
)
STATUS = "{ realtimeStatus { cache { hits misses hitRate } } }"
CREATE = """
mutation { createLead(input: {name: "Only One", source: REFERRAL, budget: 400000,
  timeline: IMMEDIATE, propertyType: CONDO, location: "Austin, TX"}) { id } }
"""
EVENT = """
mutation Event($lead: ID!) {
  recordLeadEvent(input: {leadId: $lead, type: STAGE_CHANGE, toStage: CONTACTED}) { id }
}
"""


def numbers(value: Any) -> list[float]:
    """Every number in an answer."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


@pytest.mark.parametrize(
    "persona", ["analytics_admin", "analytics_user", "analytics_agent", "analytics_empty"]
)
def test_the_readme_dashboard_answers_for_every_role(
    persona: str, request: pytest.FixtureRequest
) -> None:
    client: Persona = request.getfixturevalue(persona)
    data = client.execute(DASHBOARD)["workspace"]
    assert set(data) == {
        "leadInsights",
        "scoringTrends",
        "conversionFunnel",
        "performance",
        "agentLeaderboard",
        "agents",
        "workflows",
        "workflowPerformance",
    }
    assert all(value is not None for value in data.values())


def test_a_repeated_dashboard_is_served_from_the_cache(analytics_admin: Persona) -> None:
    analytics_admin.execute(DASHBOARD)  # starts the cache's listener on the workspace
    first = analytics_admin.execute(DASHBOARD)  # computed and kept
    before: dict[str, Any] = analytics_admin.execute(STATUS)["realtimeStatus"]["cache"]
    again = analytics_admin.execute(DASHBOARD)
    after: dict[str, Any] = analytics_admin.execute(STATUS)["realtimeStatus"]["cache"]
    assert again == first
    # eight fields (and the agents' performance and usage) answered without computing
    assert after["hits"] - before["hits"] >= 8
    assert after["misses"] == before["misses"]


def test_a_workspace_with_a_single_lead_gives_finite_numbers(analytics_solo: Persona) -> None:
    """Given a workspace whose only lead was just created and contacted, every field answers
    (no division by zero), and every number is finite (no NaN or infinity)."""
    lead = analytics_solo.execute(CREATE)["createLead"]["id"]
    analytics_solo.execute(EVENT, lead=lead)
    data = analytics_solo.execute(DASHBOARD)["workspace"]
    assert data["leadInsights"]["summary"]["totalLeads"] == 1
    assert data["conversionFunnel"]["funnel"]["stages"][1]["count"] == 1  # CONTACTED
    assert all(math.isfinite(n) for n in numbers(data))
