"""Composition root: the app factory and its lifespan (database, pub/sub, job workers)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.handlers import HANDLERS
from app.jobs import Handler, Worker
from app.pubsub import PubSub
from app.ratelimit import RateLimits
from app.settings import Settings
from models.db import Database
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
        )
        self.services: Services | None = None  # set by the lifespan

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        assert self.services is not None, "lifespan has not run"
        return Context(
            services=self.services,
            authorization=request.headers.get("authorization"),
            workspace_header=request.headers.get("x-workspace-id"),
            client_host=request.client.host if request.client else None,
            request=request,
        )


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
            },
        )
        services = Services(settings=settings, db=db, pubsub=pubsub, limits=limits, worker=worker)
        graphql.services = app.state.services = services
        try:
            yield {"services": services}
        finally:
            if worker is not None and jobs_db is not None:
                await worker.stop()
                await jobs_db.dispose()
            await pubsub.disconnect()
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
