"""`realtimeStatus` (seed 000 "Get Real-Time Update Status"): this process's live machinery."""

from __future__ import annotations

import strawberry

from models import jobs
from resolvers.context import Info


@strawberry.type
class PubSubStatus:
    backend: str = strawberry.field(description="memory or redis")
    healthy: bool
    events_published: int


@strawberry.type(description="The analytics results cache (app/cache.py) of this process")
class CacheStatus:
    healthy: bool = strawberry.field(description="Caching: needs a healthy pub/sub")
    hit_rate: float = strawberry.field(description="hits / (hits + misses), 0..1")
    hits: int
    misses: int
    size: int = strawberry.field(description="Results held now")
    evictions: int = strawberry.field(description="Dropped for room (least recently used)")
    invalidations: int = strawberry.field(description="Workspace data versions bumped")


@strawberry.type(description="Counters of the answering process (each replica has its own)")
class RealtimeStatus:
    open_connections: int
    active_subscriptions: int
    live_groups: int = strawberry.field(description="(workspace, topic) groups recomputed per tick")
    tick_seconds: float
    messages_per_second: float
    snapshots_sent: int
    snapshots_dropped: int = strawberry.field(description="Skipped for clients reading slowly")
    recomputes: int
    events_received: int
    pubsub: PubSubStatus
    cache: CacheStatus
    job_queue_depth: int = strawberry.field(description="Queued jobs, all processes")


@strawberry.type
class RealtimeQueries:
    @strawberry.field
    async def realtime_status(self, info: Info) -> RealtimeStatus:
        await info.context.viewer()  # signed-in users only
        services = info.context.services
        hub, pubsub, cache = services.hub, services.pubsub, services.cache
        async with info.context.db.session() as session:
            depth = await jobs.queue_depth(session)
        return RealtimeStatus(
            open_connections=len(hub.connections),
            active_subscriptions=hub.subscriber_count,
            live_groups=len(hub.groups),
            tick_seconds=hub.tick_seconds,
            messages_per_second=round(hub.messages_per_second(), 3),
            snapshots_sent=hub.stats.snapshots_sent,
            snapshots_dropped=hub.stats.snapshots_dropped,
            recomputes=hub.stats.recomputes,
            events_received=hub.stats.events_received,
            pubsub=PubSubStatus(
                backend=pubsub.backend, healthy=pubsub.healthy, events_published=pubsub.published
            ),
            cache=CacheStatus(
                healthy=pubsub.healthy,
                hit_rate=round(cache.stats.hit_rate, 4),
                hits=cache.stats.hits,
                misses=cache.stats.misses,
                size=cache.size,
                evictions=cache.stats.evictions,
                invalidations=cache.stats.invalidations,
            ),
            job_queue_depth=depth,
        )
