"""The analytics cache on its own: a result lives until its workspace's next change event."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.cache import AnalyticsCache
from app.pubsub import ChangeEvent, PubSub

Scenario = Callable[[AnalyticsCache, PubSub], Awaitable[Any]]


async def with_cache(scenario: Scenario, url: str = "memory://", **options: Any) -> Any:
    pubsub = PubSub(url)
    await pubsub.connect()
    cache = AnalyticsCache(pubsub, **options)
    try:
        return await asyncio.wait_for(scenario(cache, pubsub), 10)
    finally:
        await cache.stop()
        await pubsub.disconnect()


class Counter:
    """A compute that counts its calls and returns the count."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> int:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.calls


async def until_caching(cache: AnalyticsCache, workspace_id: int) -> None:
    """The first read starts the workspace's listener; caching begins once it is subscribed."""
    await cache.get(workspace_id, "warm-up", Counter())
    for _ in range(200):
        if cache._caching(workspace_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the cache never started listening")


def test_a_result_is_reused_until_a_change_event_of_its_workspace() -> None:
    compute = Counter()

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> list[int]:
        await until_caching(cache, 1)
        seen = [await cache.get(1, "k", compute), await cache.get(1, "k", compute)]
        await pubsub.publish(ChangeEvent(2, "lead", ["9"]))  # another workspace
        await asyncio.sleep(0.05)
        seen.append(await cache.get(1, "k", compute))
        await pubsub.publish(ChangeEvent(1, "lead", ["9"]))
        await asyncio.sleep(0.05)
        seen.append(await cache.get(1, "k", compute))
        return seen

    assert asyncio.run(with_cache(scenario)) == [1, 1, 1, 2]


def test_concurrent_misses_of_one_key_share_one_compute() -> None:
    compute = Counter(delay=0.05)

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> list[int]:
        await until_caching(cache, 1)
        return list(await asyncio.gather(*(cache.get(1, "k", compute) for _ in range(5))))

    assert asyncio.run(with_cache(scenario)) == [1] * 5
    assert compute.calls == 1


def test_a_result_computed_across_a_change_event_is_not_kept() -> None:
    compute = Counter(delay=0.1)

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> list[int]:
        await until_caching(cache, 1)
        first = asyncio.create_task(cache.get(1, "k", compute))
        await asyncio.sleep(0.02)
        # a write lands while the first compute runs: its result may miss that write
        await pubsub.publish(ChangeEvent(1, "lead", ["1"]))
        return [await first, await cache.get(1, "k", compute)]

    assert asyncio.run(with_cache(scenario)) == [1, 2]


def test_results_expire_after_max_age() -> None:
    compute = Counter()

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> list[int]:
        await until_caching(cache, 1)
        seen = [await cache.get(1, "k", compute), await cache.get(1, "k", compute)]
        await asyncio.sleep(0.25)
        seen.append(await cache.get(1, "k", compute))
        return seen

    assert asyncio.run(with_cache(scenario, max_age=0.2)) == [1, 1, 2]


def test_nothing_is_cached_while_pub_sub_is_unhealthy() -> None:
    compute = Counter()

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> list[int]:
        await until_caching(cache, 1)
        pubsub.healthy = False  # as the health check marks a lost Redis
        return [await cache.get(1, "k", compute) for _ in range(3)]

    assert asyncio.run(with_cache(scenario)) == [1, 2, 3]


def test_a_failed_compute_is_raised_and_not_cached() -> None:
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> None:
        await until_caching(cache, 1)
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await cache.get(1, "k", failing)

    asyncio.run(with_cache(scenario))
    assert calls == 2


def test_a_write_on_another_process_invalidates_over_redis() -> None:
    url = os.environ.get("DASHGRAPH_TEST_REDIS_URL")
    if not url:
        pytest.skip("needs Redis: set DASHGRAPH_TEST_REDIS_URL")
    compute = Counter()

    async def scenario(cache: AnalyticsCache, pubsub: PubSub) -> list[int]:
        other = PubSub(url)  # the other process's pub/sub
        await other.connect()
        try:
            await until_caching(cache, 77)
            seen = [await cache.get(77, "k", compute), await cache.get(77, "k", compute)]
            await other.publish(ChangeEvent(77, "lead", ["1"]))
            for _ in range(100):
                if cache.version(77) > 1:
                    break
                await asyncio.sleep(0.02)
            seen.append(await cache.get(77, "k", compute))
            return seen
        finally:
            await other.disconnect()

    assert asyncio.run(with_cache(scenario, url)) == [1, 1, 2]
