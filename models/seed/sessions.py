"""Sign-in sessions of members: the raw material of DAU/WAU/MAU, session length and cohorts."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.seed.clock import DAY, DOW_WEIGHT, HISTORY_DAYS, MINUTE, Clock
from models.seed.frames import Ids, stream, ts
from models.seed.people import World

_STREAM = 3


def user_sessions(
    clock: Clock, ids: Ids, random_seed: int, worlds: list[World]
) -> tuple[list[pl.DataFrame], dict[int, int]]:
    """One frame per workspace, and each member's latest sign-in (for `last_login_at`)."""
    frames: list[pl.DataFrame] = []
    last_login: dict[int, int] = {}
    for w in worlds:
        rng = stream(random_seed, w.index, _STREAM)
        m = w.members
        # member x day grid; day k covers [now - (k+1) days, now - k days)
        hi = clock.now - np.arange(HISTORY_DAYS, dtype=np.int64) * DAY
        lo = hi - DAY
        mid_dow = ((lo + DAY // 2) // DAY + 3) % 7
        lo2 = np.maximum(lo[None, :], m.created[:, None])
        hi2 = np.minimum(hi[None, :], m.churned[:, None])
        age_days = (hi[None, :] - m.created[:, None]) / DAY
        # engagement fades after sign-up, and many plain users drift away for good a few
        # months in (without cancelling): the retention curve of the cohorts
        drift = np.where(m.roles == "USER", rng.exponential(150.0, m.ids.size), np.inf)
        drift[: len(w.demo)] = np.inf
        p = (
            m.activity[:, None]
            * (0.45 + 0.55 * np.exp(-np.maximum(age_days, 0) / 30))
            * np.where(age_days > drift[:, None], 0.08, 1.0)
            * DOW_WEIGHT[mid_dow][None, :]
        )
        active = (hi2 > lo2) & (rng.random(p.shape) < p)
        member, day = np.nonzero(active)
        count = 1 + rng.poisson(0.5 * m.activity[member])
        member, day = np.repeat(member, count), np.repeat(day, count)
        start = clock.within(rng, lo2[member, day], hi2[member, day])
        # the demo logins (and a few others) are signed in right now
        staying = np.flatnonzero(m.churned > clock.now)
        online = np.r_[np.arange(len(w.demo)), staying[rng.integers(0, staying.size, 3)]]
        member = np.r_[member, online]
        start = np.r_[start, clock.recent(rng, online.size, 40 * MINUTE, 2 * MINUTE)]
        n = start.size
        end = start + (rng.lognormal(np.log(9 * 60), 0.8, n) * 1e6).astype(np.int64)
        end[-online.size :] = clock.now + 1
        order = np.lexsort((member, start))
        member, start, end = member[order], start[order], end[order]
        act = m.activity[member]
        frames.append(
            pl.DataFrame(
                {
                    "workspace_id": w.id,
                    "id": ids.take("user_session", n),
                    "user_id": m.ids[member],
                    "started_at": ts(start),
                    "ended_at": ts(end, end <= clock.now),
                    "executions": rng.poisson(1 + 4 * act),
                    "api_calls": rng.poisson(10 + 30 * act),
                }
            )
        )
        latest = np.full(m.ids.size, 0, dtype=np.int64)
        np.maximum.at(latest, member, start)
        last_login.update({int(u): int(t) for u, t in zip(m.ids, latest, strict=True) if t > 0})
    return frames, last_login
