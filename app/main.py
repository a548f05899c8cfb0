"""Composition root: the app factory and its lifespan (database, pub/sub, job workers)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import ExecutionResult
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UNSET, UnsetType
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from app.auth import bearer_token, token_expires_at
from app.cache import AnalyticsCache
from app.handlers import HANDLERS
from app.jobs import Handler, Worker
from app.live import DIRECT, LiveHub, SharedSnapshot
from app.pubsub import ChangeEvent, PubSub
from app.ratelimit import RateLimits
from app.settings import Settings
from app.simulate import run_simulator
from ml import serving, watch
from ml.deployment import Deployment
from models.db import Database
from models.errors import DomainError
from models.jobs import Job
from resolvers.context import Context, Services
from resolvers.schema import build_schema

log = logging.getLogger("dashgraph")


class SharedSnapshotExecution(StrawberryGraphQLCoreExecutionContext):
    """Executes a subscription event whose payload is a `SharedSnapshot` once per (operation,
    variables) for all the subscribers that receive that same object: with 10,000 subscribers
    of one live group, executing the selection set per subscriber was most of the server's
    time (bench/live_fanout.py). Everything else (queries, other payloads) runs as usual."""

    @functools.cached_property
    def _shared_key(self) -> tuple[int, str]:
        variables = self.variable_values.coerced
        # the operation node is shared by equal documents (the parser cache); it is held with
        # the result so that its id is not reused while the snapshot lives
        return (id(self.operation), repr(sorted(variables.items())) if variables else "")

    def _known(self, snapshot: SharedSnapshot) -> _Shared | None:
        hit: _Shared | None = snapshot.executed().get(self._shared_key)
        return hit if hit is not None and hit.operation is self.operation else None

    def build_per_event_executor(self, payload: Any) -> Any:
        if isinstance(payload, SharedSnapshot):
            # `self` is the operation's own executor: the hub may write this operation's
            # next snapshots itself (`_SocketSink`)
            sink = DIRECT.get()
            if isinstance(sink, _SocketSink) and sink.execution is None:
                sink.execution = self
            known = self._known(payload)
            if known is not None:
                return _Executed(known.result)  # no per-subscriber copy of the executor
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        payload = self.root_value
        if not isinstance(payload, SharedSnapshot):
            return super().execute_operation(serially)
        known = self._known(payload)
        if known is not None:
            return known.result
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult) and not result.errors:
            text = json.dumps({"data": result.data}, separators=(",", ":"))
            payload.executed()[self._shared_key] = _Shared(self.operation, result, text)
            _SHARED_JSON[id(result.data)] = (result.data, text)
            while len(_SHARED_JSON) > 256:
                _SHARED_JSON.popitem(last=False)
        return result

    def shared_payload(self, snapshot: SharedSnapshot) -> str | None:
        """This operation's `next` payload over `snapshot` as JSON, executed at most once
        per (operation, variables) and snapshot; None when it has errors or needs awaiting
        (then the subscriber's own stream delivers it, as any other result)."""
        known = self._known(snapshot)
        if known is None:
            result = self.build_per_event_executor(snapshot).execute_operation(False)
            if inspect.iscoroutine(result):
                result.close()
            known = self._known(snapshot)
        return None if known is None else known.payload


@dataclass(frozen=True, slots=True)
class _Shared:
    operation: Any  # held: its id is part of the key
    result: ExecutionResult
    payload: str  # {"data": ...} as JSON


class _Executed:
    """A per-event executor whose result is already known (graphql-core's subscription
    mapping only calls `execute_operation` on it)."""

    __slots__ = ("result",)

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self.result


# `next` payloads of shared snapshot results, encoded once: id(data) -> (data, JSON text)
_SHARED_JSON: OrderedDict[int, tuple[object, str]] = OrderedDict()

# where `_RawSend` keeps the server's own ASGI `send` of a WebSocket connection
_RAW_SEND = "dashgraph.raw_send"


class _RawSend:
    """ASGI middleware: keeps the server's `send` of each WebSocket in its scope (Starlette
    wraps it further in), so that `_SocketSink` can tell whether the socket takes a frame now."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[_RAW_SEND] = send
        await self.app(scope, receive, send)


class _SocketSink:
    """`live.Direct` for one subscription over WebSocket: the hub writes the operation's next
    snapshot to the socket itself, as the message the protocol handler would send (`next` of
    graphql-transport-ws, `data` of graphql-ws): one text frame, one write, framed here unless
    an extension (permessage-deflate) has to transform it.

    Only when the socket takes it at once: open and writable (uvicorn's write buffer under its
    high-water mark). Otherwise (a slow client, a closing socket) the subscriber's own stream
    sends it."""

    __slots__ = ("_prefix", "_protocol", "execution")

    def __init__(self, protocol: WebSocketsSansIOProtocol, message: str) -> None:
        self._protocol = protocol
        self._prefix = message[: -len("null}")]  # the message with its payload cut off
        self.execution: SharedSnapshotExecution | None = None  # set by its first snapshot

    @classmethod
    def of(cls, websocket: Any, operation_id: str, kind: str) -> _SocketSink | None:
        """For a socket served by uvicorn's default WebSocket protocol; else None (the usual
        path: nothing here depends on another server's internals)."""
        send = getattr(websocket, "scope", {}).get(_RAW_SEND)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        message = {"id": operation_id, "type": kind, "payload": None}
        return cls(protocol, json.dumps(message, separators=(",", ":")))

    def deliver(self, value: SharedSnapshot) -> bool:
        protocol = self._protocol
        if (
            self.execution is None
            or protocol.conn.state is not State.OPEN
            or protocol.close_sent
            or not protocol.writable.is_set()
        ):
            return False
        payload = self.execution.shared_payload(value)
        if payload is None:
            return False
        data = (self._prefix + payload + "}").encode()
        if protocol.conn.extensions:  # websockets frames it (and compresses)
            protocol.conn.send_text(data)
            protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        else:
            protocol.transport.write(_text_frame(data))
        return True


def _text_frame(data: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 5.2): what websockets writes for a server's
    `send_text` without extensions."""
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + data
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + data


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        sink = _SocketSink.of(getattr(self.websocket, "ws", None), operation.id, "next")
        DIRECT.set(sink)
        try:
            await super().run_operation(operation)
        finally:
            if sink is not None:
                sink.execution = None  # completed or stopped: nothing more for this id


class _WSHandler(BaseGraphQLWSHandler[Context, None]):
    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        sink = _SocketSink.of(getattr(self.websocket, "ws", None), operation_id, "data")
        DIRECT.set(sink)
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        finally:
            if sink is not None:
                sink.execution = None  # completed or stopped: nothing more for this id


class GraphQLApp(GraphQL[Context, None]):
    """`/graphql` over HTTP (GraphiQL on GET from a browser) and WebSocket."""

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _WSHandler

    def __init__(self, settings: Settings) -> None:
        schema = build_schema(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
        )
        schema.execution_context_class = SharedSnapshotExecution
        super().__init__(
            schema,
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

    def encode_json(self, data: object) -> str | bytes:
        """A subscription's `next` message whose result is a shared snapshot's reuses the
        payload encoded once for all subscribers (only the operation id differs)."""
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data.get("payload")
            if isinstance(payload, dict) and len(payload) == 1 and "data" in payload:
                known = _SHARED_JSON.get(id(payload["data"]))
                if known is not None and known[0] is payload["data"]:
                    operation = json.dumps(data["id"])
                    return f'{{"id":{operation},"type":"next","payload":{known[1]}}}'
        return super().encode_json(data)

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
        # Thousands of open sockets are millions of long-lived objects; the default young
        # generation (700 allocations) collects several times per snapshot fanned out and
        # promotes objects in flight, which soon forces full collections of the whole heap
        # (~3 s with 10,000 sockets on this machine). A larger young generation: garbage of
        # a fan-out dies before it is scanned (bench/README.md "Live fan-out").
        gc.set_threshold(50_000, 20, 10)
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
                "scoring": settings.rate_limit_scoring,
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
        checker = None
        if settings.ml_check_seconds > 0:

            async def changed(jobs: list[Job], deployments: list[Deployment]) -> None:
                if jobs and worker is not None:
                    worker.wake()
                for job in jobs:
                    await pubsub.publish(ChangeEvent(job.workspace_id, "job", [str(job.id)]))
                for d in deployments:
                    assert d.champion is not None
                    ids = [str(i) for i in d.changed]
                    await pubsub.publish(ChangeEvent(d.champion.workspace_id, "ml_model", ids))

            checker = asyncio.create_task(
                watch.run_periodically(db, settings.ml_check_seconds, changed), name="ml-check"
            )
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
            for task in (flusher, checker):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await pubsub.disconnect()
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
        middleware=[Middleware(_RawSend)],
        lifespan=lifespan,
    )
