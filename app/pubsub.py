"""Change events over broadcaster: `{workspace_id, kind, ids}` on channel `ws.<workspace_id>`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from broadcaster import Broadcast
from broadcaster._backends.redis import RedisBackend
from redis.asyncio import Redis

log = logging.getLogger(__name__)


def channel(workspace_id: int) -> str:
    return f"ws.{workspace_id}"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    workspace_id: int
    kind: str
    ids: list[str] = field(default_factory=list)

    def encode(self) -> str:
        return json.dumps({"workspace_id": self.workspace_id, "kind": self.kind, "ids": self.ids})

    @classmethod
    def decode(cls, message: str) -> ChangeEvent:
        data = json.loads(message)
        return cls(int(data["workspace_id"]), str(data["kind"]), [str(i) for i in data["ids"]])


class _RedisBackend(RedisBackend):
    """broadcaster's Redis backend wakes its listener *before* subscribing; redis-py's
    `listen()` then returns at once (no channel yet) and the listener sleeps for good. Wake it
    only once subscribed. Its listener task also tells whether the connection is alive."""

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)
        self._ready.set()

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.done()


def _broadcast(url: str) -> Broadcast:
    if url.startswith(("redis://", "rediss://")):
        return Broadcast(backend=_RedisBackend(url))
    return Broadcast(url)


class PubSub:
    """The process's broadcaster, watched: broadcaster itself never notices a lost Redis (its
    listener task just dies), so a health check pings Redis, reports the loss to `on_lost`
    callbacks and reconnects once Redis answers again. Also keeps per-workspace data versions
    that caches key on."""

    def __init__(self, url: str, *, health_seconds: float = 1.0) -> None:
        self.url = url
        self.broadcast = _broadcast(url)
        self.versions: dict[int, int] = defaultdict(int)
        self.published = 0
        self.healthy = False
        self.health_seconds = health_seconds
        self.on_lost: list[Callable[[], Awaitable[None]]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._redis: Redis | None = None

    @property
    def backend(self) -> str:
        return self.url.split("://", 1)[0]

    async def connect(self) -> None:
        """Never fails: with Redis down the server starts unhealthy and recovers later."""
        await self._connect()
        if self.backend.startswith("redis"):
            self._redis = Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._watcher = asyncio.create_task(self._watch(), name="pubsub-health")

    async def _connect(self) -> None:
        try:
            await self.broadcast.connect()
            self.healthy = True
        except Exception as exc:
            log.warning("pub/sub %s unavailable (%s); retrying", self.backend, exc)
            self.healthy = False

    async def disconnect(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        with contextlib.suppress(Exception):
            await self.broadcast.disconnect()
        if self._redis is not None:
            await self._redis.aclose()

    async def _alive(self) -> bool:
        backend = self.broadcast._backend
        if isinstance(backend, _RedisBackend) and not backend.listening:
            return False
        try:
            assert self._redis is not None
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.health_seconds)
            if self.healthy and await self._alive():
                continue
            if self.healthy:
                self.healthy = False
                log.error("pub/sub %s lost; live subscribers are told to reconnect", self.backend)
                for callback in self.on_lost:
                    with contextlib.suppress(Exception):
                        await callback()
            # a fresh broadcaster: the old one's listener is dead and cannot be restarted
            with contextlib.suppress(Exception):
                await self.broadcast.disconnect()
            self.broadcast = _broadcast(self.url)
            await self._connect()
            if self.healthy:
                log.info("pub/sub %s reconnected", self.backend)

    async def publish(self, event: ChangeEvent) -> None:
        """Called after the write committed, so subscribers never see uncommitted state."""
        self.versions[event.workspace_id] += 1
        self.published += 1
        try:
            await self.broadcast.publish(channel(event.workspace_id), event.encode())
        except Exception:
            # the write is committed; losing the live notification must not fail the mutation
            log.exception("could not publish %s", event.kind)
