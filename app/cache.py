"""Analytics results cached per workspace data version: every change event of a workspace
bumps its version, and a result computed at version v is served only while it is still v.

Dashboards repeat the same reads many times between writes; the analytics fields are the
expensive ones (aggregates over a workspace's leads and events). A cached result is never
staler than the change event that invalidates it (one pub/sub hop, well inside a live tick)
or `max_age` (windows ending "now" slide even without writes). Without a healthy pub/sub
(or before a workspace's listener is subscribed) nothing is cached: a missed event must not
leave a stale number behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.pubsub import PubSub, channel

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    version: int
    at: float
    value: Any


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    invalidations: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class AnalyticsCache:
    """One per process. `get(ws, key, compute)`: the cached value of `key` for the workspace's
    current data version, else `compute()` (concurrent misses of one key share one compute)."""

    def __init__(self, pubsub: PubSub, *, max_age: float = 60.0, max_entries: int = 2048) -> None:
        self.pubsub = pubsub
        self.max_age = max_age
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._versions: dict[int, int] = {}
        self._ready: set[int] = set()
        self._listeners: dict[int, asyncio.Task[None]] = {}
        self._entries: OrderedDict[tuple[int, Hashable], _Entry] = OrderedDict()
        self._inflight: dict[tuple[int, int, Hashable], asyncio.Future[Any]] = {}

    @property
    def size(self) -> int:
        return len(self._entries)

    def version(self, workspace_id: int) -> int:
        return self._versions.get(workspace_id, 0)

    def invalidate(self, workspace_id: int) -> None:
        """Forget every result of the workspace (a change event, or a write of this process)."""
        self._versions[workspace_id] = self.version(workspace_id) + 1
        self.stats.invalidations += 1

    async def get(self, workspace_id: int, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        if self.pubsub.healthy:
            self._ensure_listener(workspace_id)
        if not self._caching(workspace_id):
            self.stats.misses += 1
            return await compute()
        version = self.version(workspace_id)
        entry = self._entries.get((workspace_id, key))
        if (
            entry is not None
            and entry.version == version
            and time.monotonic() - entry.at < self.max_age
        ):
            self._entries.move_to_end((workspace_id, key))
            self.stats.hits += 1
            return entry.value
        self.stats.misses += 1
        flight = (workspace_id, version, key)
        pending = self._inflight.get(flight)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        started = time.monotonic()
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(value)
            # stored under the version seen at the start: an event during the compute means
            # it may have missed that write, so the entry is born stale and never served
            if self.version(workspace_id) == version and self._caching(workspace_id):
                self._entries[(workspace_id, key)] = _Entry(version, started, value)
                self._entries.move_to_end((workspace_id, key))
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
                    self.stats.evictions += 1
            return value
        finally:
            self._inflight.pop(flight, None)

    def _caching(self, workspace_id: int) -> bool:
        return self.pubsub.healthy and workspace_id in self._ready

    def _ensure_listener(self, workspace_id: int) -> None:
        task = self._listeners.get(workspace_id)
        if task is None or task.done():
            self._ready.discard(workspace_id)
            self._listeners[workspace_id] = asyncio.create_task(
                self._listen(workspace_id), name=f"analytics-cache-ws-{workspace_id}"
            )

    async def _listen(self, workspace_id: int) -> None:
        try:
            async with self.pubsub.broadcast.subscribe(channel(workspace_id)) as events:
                # subscribed: from here on no change event of the workspace can be missed
                self.invalidate(workspace_id)
                self._ready.add(workspace_id)
                async for message in events:  # type: ignore[union-attr]
                    if message is None:
                        break
                    self.invalidate(workspace_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("analytics cache listener of workspace %s stopped", workspace_id)
        finally:
            # no listener, no caching; the next get starts a new one
            self._ready.discard(workspace_id)
            self.invalidate(workspace_id)

    async def stop(self) -> None:
        tasks = list(self._listeners.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listeners.clear()
        self._entries.clear()
