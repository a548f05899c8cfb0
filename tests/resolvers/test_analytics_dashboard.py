"""The README's analytics dashboard: every issue-5 field in one request, for every role.

The fields' numbers are checked one by one in their own modules; this checks they work
together (one request, computed concurrently, cached as a whole per field) and that the
README's example stays true."""

from __future__ import annotations

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
