"""Change events over broadcaster: `{workspace_id, kind, ids}` on channel `ws.<workspace_id>`."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from broadcaster import Broadcast

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


class PubSub:
    """The process's broadcaster plus per-workspace data versions that caches key on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.broadcast = Broadcast(url)
        self.versions: dict[int, int] = defaultdict(int)
        self.published = 0

    async def connect(self) -> None:
        await self.broadcast.connect()

    async def disconnect(self) -> None:
        await self.broadcast.disconnect()

    async def publish(self, event: ChangeEvent) -> None:
        """Called after the write committed, so subscribers never see uncommitted state."""
        self.versions[event.workspace_id] += 1
        self.published += 1
        try:
            await self.broadcast.publish(channel(event.workspace_id), event.encode())
        except Exception:
            # the write is committed; losing the live notification must not fail the mutation
            log.exception("could not publish %s", event.kind)
