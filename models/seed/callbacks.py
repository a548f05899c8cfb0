"""Callbacks: asked for on calls, scheduled a day or so later, then kept, missed or overdue."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.seed.clock import DAY, HOUR, MINUTE, Clock
from models.seed.frames import Ids, labels, pick, stream, ts
from models.seed.interactions import CallbackRequests
from models.seed.people import World

_STREAM = 9
STATUSES = ["SCHEDULED", "COMPLETED", "MISSED", "CANCELLED"]
SCHEDULED, COMPLETED, MISSED, CANCELLED = range(4)


def requested_callbacks(
    clock: Clock, random_seed: int, w: World, asks: CallbackRequests, ids: Ids, index: int
) -> pl.DataFrame:
    rng = stream(random_seed, w.index, _STREAM, index)
    n = asks.lead_id.size
    due = clock.within(rng, asks.asked + 12 * HOUR, asks.asked + 4 * DAY)
    past = due <= clock.now
    status = np.where(past, pick(rng, n, [0.0, 0.82, 0.13, 0.05]), SCHEDULED)
    # some of the last few days' callbacks are still waiting: overdue
    overdue = past & (due > clock.now - 3 * DAY) & (rng.random(n) < 0.25)
    status[overdue] = SCHEDULED
    completed = np.minimum(due + (rng.exponential(30, n) * MINUTE).astype(np.int64), clock.now)
    return callback_frame(w, ids, asks.lead_id, asks.agent_id, due, status, completed, asks.asked)


def callback_frame(
    w: World,
    ids: Ids,
    lead_id: np.ndarray,
    agent_id: np.ndarray,
    due: np.ndarray,
    status: np.ndarray,
    completed: np.ndarray,
    created: np.ndarray,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "workspace_id": w.id,
            "id": ids.take("callback", lead_id.size),
            "lead_id": lead_id,
            "agent_id": agent_id,
            "scheduled_for": ts(due),
            "status": labels(STATUSES, status),
            "completed_at": ts(completed, status == COMPLETED),
            "created_at": ts(created),
        }
    )
