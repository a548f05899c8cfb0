"""Composition root: the app factory and its lifespan (database, pub/sub, job workers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.unset import UNSET, UnsetType

from app.auth import bearer_token, token_expires_at
from app.cache import AnalyticsCache
from app.handlers import HANDLERS
from app.jobs import Handler, Worker
from app.live import LiveHub
from app.pubsub import PubSub
from app.ratelimit import RateLimits
from app.settings import Settings
from app.simulate import run_simulator
from ml import serving
from models.db import Database
from models.errors import DomainError
from resolvers.context import Context, Services
from resolvers.schema import build_schema

log = logging.getLogger("dashgraph")


class GraphQLApp(GraphQL[Context, None]):
    """`/graphql` over HTTP (GraphiQL on GET from a browser) and WebSocket."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
            ),
            graphql_ide="graphiql",
            # WebSocket (both protocols) and, for clients without WebSockets, subscriptions
            # over HTTP as server-sent events or multipart responses
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
            # graphql-transport-ws's own timeout for connection_init (4408 after it)
            connection_init_wait_timeout=timedelta(seconds=3),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.services: Services | None = None  # set by the lifespan

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate `connection_init` before the ack; end the socket when the token does."""
        params = context.connection_params or {}
        authorization = params.get("Authorization", params.get("authorization"))
        workspace = params.get("X-Workspace-Id", params.get("workspaceId"))
        context.authorization = authorization if isinstance(authorization, str) else None
        if workspace is not None:
            context.workspace_header = str(workspace)
        try:
            await context.viewer()
            token = bearer_token(context.authorization)
            assert token is not None
            expires_at = token_expires_at(context.settings, token)
        except DomainError as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from exc
        websocket = context.request
        context.services.hub.connections.add(websocket)
        delay = max(0.0, (expires_at - datetime.now(UTC)).total_seconds())
        # a weak reference: the timer must not keep a closed socket alive until the token ends
        socket = weakref.ref(websocket)
        asyncio.get_running_loop().call_later(delay, _close_expired, socket)
        return UNSET

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        assert self.services is not None, "lifespan has not run"
        return Context(
            services=self.services,
            authorization=request.headers.get("authorization"),
            workspace_header=request.headers.get("x-workspace-id"),
            client_host=request.client.host if request.client else None,
            request=request,
        )


def _close_expired(socket: weakref.ref[WebSocket]) -> None:
    websocket = socket()
    if websocket is not None:
        asyncio.ensure_future(_close(websocket, 4403, "Token expired"))


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing to close
        await websocket.close(code=code, reason=reason)


def create_app(
    settings: Settings | None = None, *, handlers: dict[str, Handler] | None = None
) -> Starlette:
    """The ASGI app. `handlers` overrides the job kinds this process runs (default: all)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        db = Database(settings.url, pool_size=settings.db_pool_size)
        pubsub = PubSub(settings.broadcast_url)
        await pubsub.connect()
        worker = jobs_db = None
        if settings.run_workers:
            # a pool of its own, so long jobs never starve requests of connections
            jobs_db = Database(settings.url, pool_size=settings.worker_concurrency + 1)
            worker = Worker(
                jobs_db,
                pubsub,
                HANDLERS if handlers is None else handlers,
                concurrency=settings.worker_concurrency,
                lease=timedelta(seconds=settings.job_lease_seconds),
                poll_seconds=settings.job_poll_seconds,
            )
            await worker.start()
        limits = RateLimits(
            settings.broadcast_url,
            {
                "query": settings.rate_limit_query,
                "mutation": settings.rate_limit_mutation,
                "login": settings.rate_limit_login,
                "subscription": settings.rate_limit_subscription,
                "batchScoring": settings.rate_limit_batch_scoring,
            },
        )
        hub = LiveHub(pubsub, tick_seconds=settings.live_tick_seconds)
        await hub.start()
        pubsub.on_lost.append(hub.close_connections)
        simulator = None
        if settings.simulate_rate > 0:
            simulator = asyncio.create_task(
                run_simulator(db, pubsub, settings.simulate_rate), name="simulator"
            )
        # online scores and prediction counters reach Postgres from here, not from reads
        flusher = asyncio.create_task(serving.flush_periodically(db), name="ml-flusher")
        cache = AnalyticsCache(pubsub, max_age=settings.analytics_cache_seconds)
        services = Services(
            settings=settings,
            db=db,
            pubsub=pubsub,
            hub=hub,
            limits=limits,
            cache=cache,
            worker=worker,
        )
        graphql.services = app.state.services = services
        try:
            with hub.going_away_on_exit_signals():
                yield {"services": services}
        finally:
            if simulator is not None:
                # it ends its open calls on cancel, so it goes before the database does
                simulator.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await simulator
            await hub.stop()
            await cache.stop()
            if worker is not None and jobs_db is not None:
                await worker.stop()
                await jobs_db.dispose()
            await pubsub.disconnect()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            try:
                await serving.flush(db)
            except Exception:
                log.exception("last flush of online scores and prediction stats failed")
            await db.dispose()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    graphql = GraphQLApp(settings)
    return Starlette(
        routes=[
            Route("/", home),
            Route("/healthz", health),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
