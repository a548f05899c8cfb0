"""Several processes over Redis: live events cross servers; losing Redis is noticed (1012),
reported by `realtimeStatus`, and recovered from. Uses a private redis-server of its own."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import websockets

from app.main import create_app
from tests.client import Persona, login
from tests.conftest import ServerThread, free_port, settings_for

LIVE = "subscription { liveMetrics { totalLeads } }"
STATUS = "{ realtimeStatus { pubsub { backend healthy } activeSubscriptions openConnections } }"
CREATE = 'mutation { createLead(input: {name: "Across", source: REFERRAL}) { id } }'


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH (Debian package redis-server)")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_app(database_url: str, url: str) -> Any:
    settings = settings_for(database_url, broadcast_url=url, run_workers=False)
    return create_app(settings)


async def next_data(ws: Any, timeout: float = 10) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "next":
            return message["payload"]["data"]


def wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def healthy(persona: Persona) -> bool:
    return bool(persona.execute(STATUS)["realtimeStatus"]["pubsub"]["healthy"])


def test_a_write_on_one_server_reaches_subscribers_of_another(
    database_url: str, private_redis: PrivateRedis
) -> None:
    with (
        ServerThread(redis_app(database_url, private_redis.url)) as one,
        ServerThread(redis_app(database_url, private_redis.url)) as two,
    ):
        writer = login(one.url, "admin@acme.example")
        reader = login(two.url, "admin@acme.example")

        async def scenario() -> tuple[int, int]:
            url = two.url.replace("http://", "ws://")
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "connection_init",
                            "payload": {"Authorization": f"Bearer {reader.token}"},
                        }
                    )
                )
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}})
                )
                first = (await next_data(ws))["liveMetrics"]["totalLeads"]
                await asyncio.to_thread(writer.execute, CREATE)
                second = (await next_data(ws))["liveMetrics"]["totalLeads"]
                return first, second

        first, second = asyncio.run(scenario())
        assert second == first + 1
        assert reader.execute(STATUS)["realtimeStatus"]["pubsub"] == {
            "backend": "redis",
            "healthy": True,
        }


ANALYTICS = "{ workspace { performance(period: H24) { summary { totalLeads } } } }"


def test_cached_analytics_of_another_server_are_fresh_after_a_write(
    database_url: str, private_redis: PrivateRedis
) -> None:
    """Given two servers sharing Redis, when server one writes, then server two's cached
    analytics answer the new number within a tick (its cache hears the change event)."""
    with (
        ServerThread(redis_app(database_url, private_redis.url)) as one,
        ServerThread(redis_app(database_url, private_redis.url)) as two,
    ):
        writer = login(one.url, "admin@acme.example")
        reader = login(two.url, "admin@acme.example")

        def total() -> int:
            return int(
                reader.execute(ANALYTICS)["workspace"]["performance"]["summary"]["totalLeads"]
            )

        def served_from_cache() -> bool:
            hits = two.services.cache.stats.hits
            total()
            return bool(two.services.cache.stats.hits > hits)

        before = total()
        # the first read started server two's listener; once it is subscribed, reads hit
        wait_for(served_from_cache)
        assert total() == before
        writer.execute(CREATE)
        deadline = time.monotonic() + 1.0  # one live tick
        while total() != before + 1:
            assert time.monotonic() < deadline, "server two kept a stale number"
            time.sleep(0.02)


def test_losing_redis_closes_live_sockets_1012_and_recovers(
    database_url: str, private_redis: PrivateRedis
) -> None:
    with ServerThread(redis_app(database_url, private_redis.url)) as server:
        admin = login(server.url, "admin@acme.example")

        async def subscribe_then_lose_redis() -> int | None:
            url = server.url.replace("http://", "ws://")
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "connection_init",
                            "payload": {"Authorization": f"Bearer {admin.token}"},
                        }
                    )
                )
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}})
                )
                await next_data(ws)
                private_redis.stop()
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 15)
                except websockets.ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None

        assert asyncio.run(subscribe_then_lose_redis()) == 1012
        assert not healthy(admin)
        private_redis.start()
        wait_for(lambda: healthy(admin))


def test_redis_down_at_start_up_then_up(database_url: str) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH (Debian package redis-server)")
    later = PrivateRedis()
    with ServerThread(redis_app(database_url, later.url)) as server:
        admin = login(server.url, "admin@acme.example")
        assert not healthy(admin)
        later.start()
        try:
            wait_for(lambda: healthy(admin))
        finally:
            later.stop()
