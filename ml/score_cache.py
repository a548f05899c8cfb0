"""Online scores kept for reuse: the in-process LRU (per database) and the write-behind queue
that appends online misses to `lead_score` (see ml/serving.py for when each is used)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from models.db import Database
from models.leads import Lead

log = logging.getLogger("dashgraph.ml")

# queued online scores beyond this many are dropped (oldest first): they are recomputable
MAX_PENDING = 100_000


@dataclass(frozen=True, slots=True)
class OnlineScore:
    lead_id: int
    model_id: int
    model_version: str
    value: int
    probability: float
    confidence: float
    scored_at: datetime
    prediction_time_ms: float
    cached: bool
    fallback: bool = False


def last_change(lead: Lead) -> datetime:
    """When the lead's data last changed: edits bump updated_at, events last_activity_at
    (and updated_at too, but an event may be back-dated into the future of neither)."""
    if lead.last_activity_at is not None and lead.last_activity_at > lead.updated_at:
        return lead.last_activity_at
    return lead.updated_at


CacheKey = tuple[int, int, int, int, datetime]  # (workspace, lead, model id, version, change)


class ScoreCache:
    """LRU of online scores with a time to live; one per database (ids repeat across them)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[CacheKey, tuple[float, OnlineScore]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> OnlineScore | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            expires, score = found
            if expires < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return score

    def put(self, key: CacheKey, score: OnlineScore, *, ttl_seconds: float, max_size: int) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_seconds, score)
            self._entries.move_to_end(key)
            while len(self._entries) > max(max_size, 0):
                self._entries.popitem(last=False)

    def forget(self, workspace_id: int, lead_ids: Sequence[int]) -> None:
        """Drop the leads' entries: a batch job stored newer scores (same values, later time)."""
        gone = set(lead_ids)
        with self._lock:
            for key in [k for k in self._entries if k[0] == workspace_id and k[1] in gone]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_caches: dict[str, ScoreCache] = {}
_pending: dict[str, PendingScores] = {}
_registry_lock = threading.Lock()


def cache_for(db: Database) -> ScoreCache:
    with _registry_lock:
        found = _caches.get(db.url)
        if found is None:
            found = _caches[db.url] = ScoreCache()
        return found


def clear_caches() -> None:
    with _registry_lock:
        for cache in _caches.values():
            cache.clear()


# rows of lead_score, only for leads that still exist
_INSERT_SCORES = sa.text(
    """
INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                        confidence, scored_at)
SELECT s.ws, s.lead_id, s.model_id, s.version, s.value, s.probability, s.confidence, s.at
FROM unnest(CAST(:ws AS int[]), CAST(:lead_ids AS bigint[]), CAST(:model_ids AS bigint[]),
            CAST(:versions AS text[]), CAST(:values AS smallint[]),
            CAST(:probabilities AS float8[]), CAST(:confidences AS float8[]),
            CAST(:ats AS timestamptz[]))
     AS s(ws, lead_id, model_id, version, value, probability, confidence, at)
JOIN lead l ON l.workspace_id = s.ws AND l.id = s.lead_id
"""
)
# the current score follows, unless the lead has a newer one (a batch job ran meanwhile)
_SET_CURRENT = sa.text(
    """
UPDATE lead_current_score c SET value = s.value
FROM unnest(CAST(:ws AS int[]), CAST(:lead_ids AS bigint[]), CAST(:values AS smallint[]),
            CAST(:ats AS timestamptz[])) AS s(ws, lead_id, value, at)
WHERE c.workspace_id = s.ws AND c.lead_id = s.lead_id
  AND NOT EXISTS (SELECT 1 FROM lead_score n WHERE n.workspace_id = s.ws
                  AND n.lead_id = s.lead_id AND n.scored_at > s.at)
"""
)

_PendingRow = tuple[int, OnlineScore]  # (workspace, score)


class PendingScores:
    """Online scores waiting to be appended to `lead_score` by `flush`."""

    def __init__(self) -> None:
        self._rows: list[_PendingRow] = []
        self._lock = threading.Lock()

    def add(self, workspace_id: int, scores: Sequence[OnlineScore]) -> None:
        with self._lock:
            self._rows.extend((workspace_id, s) for s in scores)
            if len(self._rows) > MAX_PENDING:
                dropped = len(self._rows) - MAX_PENDING
                del self._rows[:dropped]
                log.warning("dropped %d queued online scores (flusher behind)", dropped)

    def drain(self) -> list[_PendingRow]:
        with self._lock:
            taken, self._rows = self._rows, []
        return taken

    def __len__(self) -> int:
        return len(self._rows)

    async def flush(self, db: Database) -> int:
        """Append the queued scores and move the leads' CurrentScore (one transaction); rows
        written."""
        rows = self.drain()
        if not rows:
            return 0
        params = {
            "ws": [ws for ws, _ in rows],
            "lead_ids": [s.lead_id for _, s in rows],
            "model_ids": [s.model_id for _, s in rows],
            "versions": [s.model_version for _, s in rows],
            "values": [s.value for _, s in rows],
            "probabilities": [s.probability for _, s in rows],
            "confidences": [s.confidence for _, s in rows],
            "ats": [s.scored_at for _, s in rows],
        }
        try:
            async with db.transaction() as session:
                inserted = await session.execute(_INSERT_SCORES, params)
                await session.execute(
                    _SET_CURRENT,
                    {k: params[k] for k in ("ws", "lead_ids", "values", "ats")},
                )
        except BaseException:
            with self._lock:
                self._rows[:0] = rows  # written by the next flush
            raise
        return int(getattr(inserted, "rowcount", 0) or 0)


def pending_for(db: Database) -> PendingScores:
    with _registry_lock:
        found = _pending.get(db.url)
        if found is None:
            found = _pending[db.url] = PendingScores()
        return found
