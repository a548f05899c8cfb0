"""What is happening right now: calls on air, a call queue, running AI work, and callbacks
due soon or overdue (agent@acme always has some of each)."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.seed.callbacks import SCHEDULED, callback_frame
from models.seed.clock import DAY, HOUR, MINUTE, SECOND, Clock
from models.seed.frames import Ids, labels, stream, ts
from models.seed.interactions import Rows
from models.seed.people import World

_STREAM = 10


def live(clock: Clock, random_seed: int, w: World, ids: Ids) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Interactions and callbacks around `now`, for the workspace's newest leads."""
    rng = stream(random_seed, w.index, _STREAM)
    a = w.agents
    on_duty = np.flatnonzero(~a.is_ai & (a.status == "ACTIVE"))
    bots = np.flatnonzero(a.is_ai & (a.status == "ACTIVE"))
    n_active = min(on_duty.size, 3 + w.size.leads // 50_000)
    speaking = np.r_[on_duty[:1], rng.choice(on_duty[1:], n_active - 1, replace=False)]
    rows = Rows()

    def leads_of(agent: np.ndarray) -> np.ndarray:
        return np.array([_recent_lead(rng, w, int(x)) for x in agent], dtype=np.int64)

    rows.add(
        speaking.size,
        agent_id=a.ids[speaking],
        lead_id=leads_of(speaking),
        user_id=a.user_id[speaking],
        channel="CALL",
        direction=labels(["INBOUND", "OUTBOUND"], rng.random(speaking.size) < 0.7),
        status="ACTIVE",
        started_at=ts(clock.recent(rng, speaking.size, 15 * MINUTE, 30 * SECOND)),
    )
    queued = 5 + w.size.leads // 30_000
    rows.add(
        queued,
        lead_id=w.lead_ids[rng.integers(0, w.lead_ids.size, queued)],
        channel="CALL",
        direction="INBOUND",
        status="QUEUED",
        started_at=ts(clock.recent(rng, queued, 8 * MINUTE, 10 * SECOND)),
    )
    for channel in ("CHAT", "AI_EXECUTION") if bots.size else ():
        rows.add(
            2,
            agent_id=a.ids[bots[rng.integers(0, bots.size, 2)]],
            channel=channel,
            direction="INBOUND" if channel == "CHAT" else "OUTBOUND",
            status="ACTIVE",
            started_at=ts(clock.recent(rng, 2, 5 * MINUTE, 5 * SECOND)),
        )
    # callbacks: six coming up (some later today), two overdue
    agent = np.r_[on_duty[:1], on_duty[:1], on_duty[rng.integers(0, on_duty.size, 6)]]
    due = np.r_[
        clock.now + rng.integers(20 * MINUTE, 6 * HOUR, 4),
        clock.now + rng.integers(1 * DAY, 3 * DAY, 2),
        clock.now - rng.integers(1 * HOUR, 20 * HOUR, 2),
    ]
    status = np.full(agent.size, SCHEDULED)
    created = np.minimum(due, clock.now) - 2 * DAY
    callbacks = callback_frame(w, ids, leads_of(agent), a.ids[agent], due, status, due, created)
    return rows.frame(w, ids, clock.now), callbacks


def _recent_lead(rng: np.random.Generator, w: World, agent: int) -> int:
    """One of the agent's newer leads (any lead if it has none)."""
    mine = np.flatnonzero(w.lead_agent == agent)
    pool = mine[-200:] if mine.size else np.arange(max(0, w.lead_ids.size - 200), w.lead_ids.size)
    return int(w.lead_ids[pool[rng.integers(0, pool.size)]])
