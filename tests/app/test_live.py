"""The live hub on its own: one recompute per group per tick, latest-wins, changes only."""

from __future__ import annotations

import asyncio
from typing import Any

from app.live import LiveHub
from app.pubsub import ChangeEvent, PubSub


def everything(event: ChangeEvent) -> bool:
    return True


async def with_hub(scenario: Any) -> Any:
    pubsub = PubSub("memory://")
    await pubsub.connect()
    hub = LiveHub(pubsub, tick_seconds=0.05)
    await hub.start()
    try:
        return await asyncio.wait_for(scenario(hub, pubsub), 10)
    finally:
        await hub.stop()
        await pubsub.disconnect()


async def settle(hub: LiveHub) -> None:
    """Let the listener see published events and a few ticks pass."""
    await asyncio.sleep(hub.tick_seconds * 4)


def test_many_subscribers_one_recompute_per_change() -> None:
    calls = 0
    value = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return value

    async def scenario(hub: LiveHub, pubsub: PubSub) -> tuple[list[int], int]:
        nonlocal value
        streams = [hub.subscribe(1, "k", compute, everything) for _ in range(20)]
        firsts = [await anext(s) for s in streams]
        before = calls
        value = 1
        await pubsub.publish(ChangeEvent(1, "lead", ["9"]))
        seconds = await asyncio.gather(*(anext(s) for s in streams))
        recomputes = calls - before
        for stream in streams:
            await stream.aclose()
        return [*firsts, *seconds], recomputes

    values, recomputes = asyncio.run(with_hub(scenario))
    assert values == [0] * 20 + [1] * 20
    assert recomputes == 1


def test_a_slow_subscriber_gets_only_the_latest_and_no_backlog() -> None:
    value = 0

    async def compute() -> int:
        return value

    async def scenario(hub: LiveHub, pubsub: PubSub) -> tuple[int, int, int]:
        nonlocal value
        stream = hub.subscribe(1, "k", compute, everything)
        assert await anext(stream) == 0
        for n in range(1, 15):  # the subscriber reads nothing meanwhile
            value = n
            await pubsub.publish(ChangeEvent(1, "lead", [str(n)]))
            await settle(hub)
        (group,) = hub.groups.values()
        (subscriber,) = group.subscribers
        backlog = subscriber.queue.qsize()
        latest = await anext(stream)
        await stream.aclose()
        return backlog, latest, hub.stats.snapshots_dropped

    backlog, latest, dropped = asyncio.run(with_hub(scenario))
    assert backlog == 1
    assert latest == 14
    assert dropped >= 10


def test_unchanged_values_are_not_sent_and_other_workspaces_are_not_touched() -> None:
    calls = {1: 0, 2: 0}

    def counting(ws: int) -> Any:
        async def compute() -> str:
            calls[ws] += 1
            return "same"

        return compute

    async def scenario(hub: LiveHub, pubsub: PubSub) -> list[str]:
        one = hub.subscribe(1, "k", counting(1), everything)
        two = hub.subscribe(2, "k", counting(2), everything)
        got = [await anext(one), await anext(two)]
        await pubsub.publish(ChangeEvent(1, "lead", ["1"]))
        await settle(hub)
        try:
            got.append(await asyncio.wait_for(anext(one), 0.3))
        except TimeoutError:
            pass
        await one.aclose()
        await two.aclose()
        return got

    got = asyncio.run(with_hub(scenario))
    assert got == ["same", "same"]
    assert calls == {1: 2, 2: 1}
