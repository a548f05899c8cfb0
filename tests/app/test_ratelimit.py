"""Rate limits: per viewer and operation type, login per address and email, shared via Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator

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
