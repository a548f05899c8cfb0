"""The typed per-request Context: services, the viewer, workspace scopes and their loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry

from app.auth import bearer_token, user_id_from_token
from app.cache import AnalyticsCache
from app.jobs import Worker
from app.live import LiveHub
from app.pubsub import ChangeEvent, PubSub
from app.ratelimit import RateLimits
from app.settings import Settings
from models.db import Database
from models.errors import BadUserInput, NotFound, Unauthenticated
from models.scope import Scope
from models.workspaces import Role, User, Workspace, viewer_with_memberships
from resolvers.loaders import Loaders

T = TypeVar("T")


@dataclass(slots=True)
class Services:
    """Long-lived, one per process, built by the app's lifespan."""

    settings: Settings
    db: Database
    pubsub: PubSub
    hub: LiveHub
    limits: RateLimits
    cache: AnalyticsCache
    worker: Worker | None = None


@dataclass(slots=True)
class Viewer:
    user: User
    roles: dict[int, Role]
    workspaces: dict[int, Workspace]

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id


@dataclass
class Context:
    services: Services
    authorization: str | None = None
    workspace_header: str | None = None
    client_host: str | None = None
    request: Any = None
    # the WebSocket `connection_init` payload (strawberry sets it)
    connection_params: dict[str, Any] | None = None
    _viewer: Viewer | None = None
    _viewer_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaders: dict[int, Loaders] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def viewer(self) -> Viewer:
        """The user, their memberships and workspaces: one statement, once per request."""
        async with self._viewer_lock:
            if self._viewer is None:
                token = bearer_token(self.authorization)
                if token is None:
                    raise Unauthenticated("Sign in first: send `Authorization: Bearer <token>`")
                user_id = user_id_from_token(self.settings, token)
                async with self.db.session() as session:
                    found = await viewer_with_memberships(session, user_id)
                if found is None:
                    raise Unauthenticated("Token names an unknown or disabled user")
                self._viewer = Viewer(*found)
            return self._viewer

    def client_key(self) -> str:
        """Who a rate limit counts: the signed-in user (from the token alone), else the address."""
        try:
            token = bearer_token(self.authorization)
            if token is not None:
                return f"user:{user_id_from_token(self.settings, token)}"
        except Unauthenticated:
            pass  # the request fails on authentication anyway; count it against the address
        return f"addr:{self.client_host}"

    async def scope(self, workspace_id: strawberry.ID | str | None = None) -> Scope:
        """The workspace of this field: the argument, else `X-Workspace-Id`, else the first one."""
        viewer = await self.viewer()
        raw = workspace_id if workspace_id is not None else self.workspace_header
        if raw is None:
            if not viewer.roles:
                raise NotFound("You are not a member of any workspace")
            ws = min(viewer.roles)
        else:
            try:
                ws = int(raw)
            except ValueError:
                field_name = "workspaceId" if workspace_id is not None else "X-Workspace-Id"
                raise BadUserInput(
                    "Malformed workspace id", fields={field_name: "not an id"}
                ) from None
        role = viewer.roles.get(ws)
        if role is None:
            # the same answer whether it exists or not: no probing for other tenants
            raise NotFound("Workspace not found", workspaceId=str(raw))
        return Scope(workspace_id=ws, user_id=viewer.id, role=role)

    def reset_loaders(self) -> None:
        """Forget loaded rows: a WebSocket context lives for the whole connection, so every
        operation and every subscription event starts with fresh loaders."""
        self._loaders = {}

    def loaders(self, scope: Scope) -> Loaders:
        """Loaders for one workspace scope, memoized for this request (or this event)."""
        found = self._loaders.get(scope.workspace_id)
        if found is None or found.scope != scope:
            found = self._loaders[scope.workspace_id] = Loaders(self.db, scope)
        return found

    async def cached(self, scope: Scope, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """An analytics result for this scope, reused until the workspace's next change event
        (app/cache.py). The scope is part of the key: a USER's numbers cover their own leads."""
        return await self.services.cache.get(scope.workspace_id, (scope, key), compute)

    async def publish(self, workspace_id: int, kind: str, ids: list[Any]) -> None:
        # this process forgets at once: the writer's next read must not see the old numbers
        self.services.cache.invalidate(workspace_id)
        await self.services.pubsub.publish(ChangeEvent(workspace_id, kind, [str(i) for i in ids]))

    def wake_workers(self) -> None:
        if self.services.worker is not None:
            self.services.worker.wake()


Info = strawberry.Info[Context, None]
