"""Rate limits: per viewer and operation type, login per address and email, shared via Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from app.main import create_app
from tests.client import LOGIN, Persona, login
from tests.conftest import ServerThread, settings_for

VIEWER = "{ viewer { email } }"


@pytest.fixture
def strict_server(database_url: str) -> Iterator[ServerThread]:
    settings = settings_for(
        database_url,
        rate_limit_query="3/minute",
        rate_limit_mutation="50/minute",
        rate_limit_login="3/minute",
        rate_limit_scoring="5/minute",
        run_workers=False,
    )
    with ServerThread(create_app(settings)) as server:
        yield server


def test_queries_are_limited_per_viewer(strict_server: ServerThread) -> None:
    admin = login(strict_server.url, "admin@acme.example")
    user = login(strict_server.url, "user@acme.example")
    for _ in range(3):
        assert admin.execute(VIEWER)["viewer"]["email"] == "admin@acme.example"
    error = admin.error(VIEWER)
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < error["extensions"]["details"]["retryAfter"] <= 60
    # another viewer has a window of their own
    assert user.execute(VIEWER)["viewer"]["email"] == "user@acme.example"


LEAD = "query Lead($id: ID!) { lead(id: $id) { id } }"
LEAD_AND_VIEWER = "query Both($id: ID!) { lead(id: $id) { id } viewer { email } }"


def test_individual_scoring_has_a_limit_of_its_own(strict_server: ServerThread, sql: Any) -> None:
    """Seed 003: individual scoring 500 a minute, analytics 200. A query selecting only `lead`
    (or `predictConversion`) counts against the scoring limit, not the query limit."""
    lead_id = str(
        sql(
            "SELECT l.id FROM lead l JOIN workspace w ON w.id = l.workspace_id"
            " WHERE w.slug = 'acme' ORDER BY l.id LIMIT 1"
        )[0]["id"]
    )
    admin = login(strict_server.url, "admin@acme.example")
    for _ in range(3):
        admin.execute(VIEWER)
    assert admin.error(VIEWER)["extensions"]["code"] == "RATE_LIMITED"
    # the query window is full; a query that selects more than scoring fields is refused too
    assert admin.error(LEAD_AND_VIEWER, id=lead_id)["extensions"]["code"] == "RATE_LIMITED"
    for _ in range(5):
        assert admin.execute(LEAD, id=lead_id)["lead"]["id"] == lead_id
    error = admin.error(LEAD, id=lead_id)
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert "5 per 1 minute" in error["message"]


def test_login_is_limited_per_email_even_with_the_right_password(
    strict_server: ServerThread,
) -> None:
    anonymous = Persona(strict_server.url, None)
    for _ in range(3):
        error = anonymous.error(LOGIN, email="agent@acme.example", password="guess")
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    error = anonymous.error(LOGIN, email="agent@acme.example", password="demo")
    assert error["extensions"]["code"] == "RATE_LIMITED"


def test_redis_shares_the_window_between_processes(database_url: str) -> None:
    redis_url = os.environ.get("DASHGRAPH_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("needs Redis: set DASHGRAPH_TEST_REDIS_URL")
    settings = settings_for(
        database_url,
        broadcast_url=redis_url,
        rate_limit_query="4/minute",
        run_workers=False,
    )
    with ServerThread(create_app(settings)) as one, ServerThread(create_app(settings)) as two:
        token = login(one.url, "admin@globex.example").token
        # the window lives in Redis: forget what earlier runs left of this viewer's
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter("LIMITS*"):
            client.delete(key)
        first, second = Persona(one.url, token), Persona(two.url, token)
        first.execute(VIEWER)
        second.execute(VIEWER)
        first.execute(VIEWER)
        second.execute(VIEWER)
        assert first.error(VIEWER)["extensions"]["code"] == "RATE_LIMITED"
        assert second.error(VIEWER)["extensions"]["code"] == "RATE_LIMITED"
