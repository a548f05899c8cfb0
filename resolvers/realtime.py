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
    job_queue_depth: int = strawberry.field(description="Queued jobs, all processes")


@strawberry.type
class RealtimeQueries:
    @strawberry.field
    async def realtime_status(self, info: Info) -> RealtimeStatus:
        await info.context.viewer()  # signed-in users only
        services = info.context.services
        hub, pubsub = services.hub, services.pubsub
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
            job_queue_depth=depth,
        )
