"""The live hub: change events mark (workspace, topic) groups dirty; each dirty group is
recomputed at most once per tick for all its subscribers, who get the value only when it
changed: written to their sockets by the hub itself where it can (`Direct`, shared snapshots),
else through bounded latest-wins queues (a slow client skips stale snapshots)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.pubsub import ChangeEvent, PubSub, channel

log = logging.getLogger(__name__)

Compute = Callable[[], Awaitable[Any]]
Wants = Callable[[ChangeEvent], bool]


_NOTHING = object()
# subscribers written to (or queued for) between two yields to the event loop
FAN_OUT_SLICE = 1000
# how long an exit signal waits for the live sockets to be told 1001 before the server's own
# shutdown starts
GOING_AWAY_SECONDS = 2.0


class SharedSnapshot:
    """Base of a live value handed as-is to every subscriber of its group whose GraphQL result
    depends on nothing but the value and the operation (plain fields: no resolver reads the
    context, the viewer or loaders). The server executes an operation's selection set on it
    once, not once per subscriber (app/main.py `SharedSnapshotExecution`); the results are
    kept on the value itself, so they go with it. The subscription's resolver yields the
    hub's values unchanged: the hub may send them to the socket itself (`Direct`)."""

    def executed(self) -> dict[Any, Any]:
        """(operation, variables) -> the execution result, filled by the server."""
        results: dict[Any, Any] | None = self.__dict__.get("_executed")
        if results is None:
            results = self.__dict__["_executed"] = {}
        return results


class Direct(Protocol):
    """A subscriber's own connection, which the hub writes a `SharedSnapshot` to itself
    (app/main.py: the WebSocket operation's socket): one loop over 10,000 subscribers instead
    of waking 10,000 tasks, each through the whole per-subscriber stream chain."""

    def deliver(self, value: SharedSnapshot) -> bool:
        """Send the value now, without waiting; False when it cannot (a slow client, a
        result with errors...), and the subscriber's queue takes it instead."""
        ...


# set by the server around a subscription operation that a hub may write to directly
DIRECT: ContextVar[Direct | None] = ContextVar("live_direct", default=None)


@dataclass(eq=False)
class _Subscriber:
    # one slot: a new snapshot replaces an unread one instead of queueing behind it
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(maxsize=1))
    last: Any = _NOTHING
    direct: Direct | None = None
    # its stream waits for the next value: every earlier one has been sent, so a direct
    # write cannot overtake one in flight
    idle: bool = False

    def deliver(self, value: Any, fingerprint: Any) -> bool:
        """Written straight to the connection if that is possible now."""
        if (
            self.direct is None
            or not self.idle
            or not self.queue.empty()
            or fingerprint == self.last
            or not isinstance(value, SharedSnapshot)
            or not self.direct.deliver(value)
        ):
            return False
        self.last = fingerprint
        return True

    def offer(self, value: Any, fingerprint: Any) -> bool:
        """Put the newest value unless this subscriber already has an equal one; True if an
        unread older one was dropped for it."""
        if fingerprint == self.last:
            return False
        self.last = fingerprint
        dropped = False
        if self.queue.full():
            self.queue.get_nowait()
            dropped = True
        self.queue.put_nowait(value)
        return dropped


@dataclass(eq=False)
class _Group:
    workspace_id: int
    key: Hashable
    compute: Compute
    wants: Wants
    fingerprint: Callable[[Any], Any]
    subscribers: set[_Subscriber] = field(default_factory=set)
    value: Any = None
    computed: bool = False
    dirty: bool = False


@dataclass
class HubStats:
    snapshots_sent: int = 0
    snapshots_direct: int = 0  # of those, written by the hub itself (`Direct`)
    snapshots_dropped: int = 0
    recomputes: int = 0
    events_received: int = 0


class LiveHub:
    """One per process. Database load depends on the number of groups, not of subscribers."""

    def __init__(self, pubsub: PubSub, tick_seconds: float = 1.0) -> None:
        self.pubsub = pubsub
        self.tick_seconds = tick_seconds
        self.groups: dict[tuple[int, Hashable], _Group] = {}
        self.stats = HubStats()
        self._listeners: dict[int, asyncio.Task[None]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._was_healthy = True
        # open WebSockets, to tell them (close 1012) when pub/sub is lost
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._rates: deque[tuple[float, int]] = deque(maxlen=30)
        self._background: set[asyncio.Future[Any]] = set()
        # set when an event dirties a group: the ticker recomputes at once if the last round
        # is a tick old (a lone write is not kept waiting for the next tick boundary)
        self._wake = asyncio.Event()
        self._last_round = float("-inf")

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="live-hub-ticker")

    async def stop(self) -> None:
        tasks = [*self._listeners.values(), *([self._ticker] if self._ticker else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listeners.clear()
        self._ticker = None

    async def close_connections(self, code: int = 1012, reason: str = "Service restart") -> None:
        """Close every live socket with a retryable code: clients reconnect and resubscribe."""
        sockets, self.connections = list(self.connections), weakref.WeakSet()

        async def close(websocket: Any) -> None:
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason)

        await asyncio.gather(*(close(ws) for ws in sockets))

    @contextlib.contextmanager
    def going_away_on_exit_signals(self) -> Iterator[None]:
        """While open, SIGTERM / SIGINT first close the live sockets with 1001 (going away),
        then reach the server's own handler. uvicorn's shutdown would close them with 1012 and
        runs the lifespan's shutdown only after that, too late to say it first."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only (a server run in a thread: tests)
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handle(signum: int, frame: Any) -> None:
            handler = previous[signal.Signals(signum)]
            # the server's handler (uvicorn's) is deferred; Python's own stop at once, as ever
            deferred = (
                handler if callable(handler) and handler is not signal.default_int_handler else None
            )

            async def going_away() -> None:
                # the shutdown the server's handler starts would close the sockets with 1012
                # first: tell them 1001 before it (waiting at most GOING_AWAY_SECONDS)
                try:
                    await asyncio.wait_for(
                        self.close_connections(1001, "Server shutting down"), GOING_AWAY_SECONDS
                    )
                except Exception:  # a timeout too
                    log.warning("live sockets not all told 1001 before shutdown", exc_info=True)
                finally:
                    if deferred is not None:
                        deferred(signum, frame)

            loop.call_soon_threadsafe(
                lambda: self._background.add(asyncio.ensure_future(going_away()))
            )
            if handler in (signal.SIG_DFL, signal.default_int_handler):
                raise KeyboardInterrupt

        for sig in previous:
            signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def messages_per_second(self) -> float:
        """Snapshots sent per second over the last ticks (up to 30)."""
        if len(self._rates) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rates[0], self._rates[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def subscriber_count(self) -> int:
        return sum(len(g.subscribers) for g in self.groups.values())

    async def subscribe(
        self,
        workspace_id: int,
        key: Hashable,
        compute: Compute,
        wants: Wants,
        fingerprint: Callable[[Any], Any] = lambda value: value,
    ) -> AsyncIterator[Any]:
        """The group's current value at once, then each changed value. `compute` and `wants`
        (and `fingerprint`: what makes two values equal) of the first subscriber serve the whole
        group, so equal keys must mean equal work."""
        group = self.groups.get((workspace_id, key))
        if group is None:
            group = _Group(workspace_id, key, compute, wants, fingerprint)
            self.groups[(workspace_id, key)] = group
            self._ensure_listener(workspace_id)
        subscriber = _Subscriber(direct=DIRECT.get())
        group.subscribers.add(subscriber)
        try:
            if not group.computed:
                # the first snapshot comes at once; its failure is this subscriber's error
                group.value = await group.compute()
                group.computed = True
                self.stats.recomputes += 1
            subscriber.offer(group.value, group.fingerprint(group.value))
            while True:
                subscriber.idle = True
                value = await subscriber.queue.get()
                subscriber.idle = False
                self.stats.snapshots_sent += 1
                yield value
        finally:
            group.subscribers.discard(subscriber)
            if not group.subscribers:
                self.groups.pop((workspace_id, key), None)
                self._unlisten_if_idle(workspace_id)

    def _ensure_listener(self, workspace_id: int) -> None:
        if workspace_id not in self._listeners:
            self._listeners[workspace_id] = asyncio.create_task(
                self._listen_forever(workspace_id), name=f"live-hub-ws-{workspace_id}"
            )

    def _unlisten_if_idle(self, workspace_id: int) -> None:
        if any(ws == workspace_id for ws, _ in self.groups):
            return
        task = self._listeners.pop(workspace_id, None)
        if task is not None:
            task.cancel()

    async def _listen_forever(self, workspace_id: int) -> None:
        try:
            await self._consume(workspace_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # pub/sub is down: the ticker polls meanwhile, and the watcher closes these
            # subscribers' sockets (1012) so that they come back to a working listener
            log.warning("live listener of workspace %s stopped", workspace_id, exc_info=True)
            self._listeners.pop(workspace_id, None)

    async def _consume(self, workspace_id: int) -> None:
        async with self.pubsub.broadcast.subscribe(channel(workspace_id)) as events:
            # broadcaster 0.3.1 types `Subscriber.__aiter__` as possibly None; it never is
            async for message in events:  # type: ignore[union-attr]
                if message is None:  # the subscription was closed
                    return
                event = ChangeEvent.decode(message.message)
                self.stats.events_received += 1
                for (ws, _), group in list(self.groups.items()):
                    if ws == workspace_id and group.wants(event):
                        group.dirty = True
                        self._wake.set()

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # a round when an event dirtied a group, or every tick anyway (polling while
            # pub/sub is down, the rate counters); rounds are at least a tick apart, so each
            # group is still recomputed at most once per tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
            wait = self._last_round + self.tick_seconds - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            self._last_round = loop.time()
            self._rates.append((time.monotonic(), self.stats.snapshots_sent))
            healthy = self.pubsub.healthy
            if not healthy or not self._was_healthy:
                # pub/sub down: poll instead, so changes still show; just back: events of the
                # gap were lost, so everything is recomputed once
                for group in self.groups.values():
                    group.dirty = True
            self._was_healthy = healthy
            if healthy:
                for workspace_id in {ws for ws, _ in self.groups}:
                    self._ensure_listener(workspace_id)
            dirty = [g for g in self.groups.values() if g.dirty]
            if dirty:
                await asyncio.gather(*(self._recompute(g) for g in dirty))

    async def _recompute(self, group: _Group) -> None:
        group.dirty = False
        try:
            value = await group.compute()
        except Exception:
            log.exception("live group %s of workspace %s failed", group.key, group.workspace_id)
            return
        self.stats.recomputes += 1
        fingerprint = group.fingerprint(value)
        if group.computed and fingerprint == group.fingerprint(group.value):
            return
        group.computed = True
        group.value = value
        for n, subscriber in enumerate(list(group.subscribers), 1):
            if subscriber.deliver(value, fingerprint):
                self.stats.snapshots_sent += 1
                self.stats.snapshots_direct += 1
            elif subscriber.offer(value, fingerprint):
                self.stats.snapshots_dropped += 1
            if n % FAN_OUT_SLICE == 0:
                await asyncio.sleep(0)  # direct writes: let requests in between slices
