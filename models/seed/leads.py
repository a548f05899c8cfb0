"""Leads and their funnel: who they are, whether they convert, and when each stage happened.

Conversion follows a latent logit built from what a model can see (source, timeline, budget,
property type, market, agent, speed of first contact, engagement driven by a hidden interest)
plus noise it cannot, so a trained model lands well above chance and well below certainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.seed.clock import DAY, HOUR, MINUTE, Clock, rhythm
from models.seed.frames import labels, nullable, pick, stream, ts
from models.seed.people import World
from models.seed.vocab import (
    CITY_AREA,
    CITY_HEAT,
    CITY_NAMES,
    CITY_PRICE,
    CITY_SHARE,
    CONTACTED,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    LOST,
    LOST_REASONS,
    NATIONAL_MEDIAN_BUDGET,
    PROPERTY_TYPES,
    QUALIFIED,
    SOURCES,
    STAGES,
    TIMELINES,
    WON,
)

_STREAM = 4
NEVER = np.iinfo(np.int64).max

# intercept of the conversion logit: ~8% of assigned leads eventually win
WIN_BASE = -2.55
# how far a lead that does not win gets: ordinal thresholds on its own latent (logistic noise)
REACH_THRESHOLDS = np.array([-2.5, -0.1, 1.25, 2.65])
# median days from one stage to the next: qualified, showing, offer, won; and to giving up
STAGE_DAYS = np.array([4.0, 10.0, 14.0, 30.0])
STAGE_SIGMA = np.array([0.8, 0.7, 0.6, 0.5])
LOST_DAYS = 25.0
DO_NOT_CALL = int(np.flatnonzero(LOST_REASONS == "Asked not to be contacted")[0])


@dataclass(slots=True)
class LeadChunk:
    """A batch of leads with the hidden state the activity generators stay consistent with."""

    world: World
    ids: np.ndarray
    created: np.ndarray
    agent: np.ndarray  # index into world.agents, -1 = unassigned
    owner: np.ndarray  # index into world.members
    interest: np.ndarray  # hidden engagement propensity
    won: np.ndarray  # will win (maybe not yet)
    stage: np.ndarray  # current stage code
    reached: np.ndarray  # (n, 6) time each stage NEW..WON was reached, NEVER if not (yet)
    ended: np.ndarray  # end of activity: win/loss time, or now while open
    lost_reason: np.ndarray  # index into LOST_REASONS (meaningful for LOST leads)
    phone: pl.Series


def lead_times(clock: Clock, random_seed: int, w: World) -> np.ndarray:
    """Creation times of all the workspace's leads, ascending (ids follow time)."""
    rng = stream(random_seed, w.index, _STREAM)
    n = w.size.leads
    created = clock.history(rng, n, growth=1.1)
    # a few leads arrived in the last hour whatever the hour: every period has new leads
    fresh = max(3, n // 2_000)
    created[:fresh] = clock.recent(rng, fresh, 55 * MINUTE, MINUTE)
    return np.sort(created)


def make_leads(
    clock: Clock, random_seed: int, w: World, ids: np.ndarray, created: np.ndarray, chunk: int
) -> tuple[LeadChunk, pl.DataFrame]:
    rng = stream(random_seed, w.index, _STREAM, chunk + 1)
    n = ids.size
    source = pick(rng, n, [s[1] for s in SOURCES])
    timeline = pick(rng, n, [t[1] for t in TIMELINES])
    ptype = pick(rng, n, [p[1] for p in PROPERTY_TYPES])
    city = pick(rng, n, CITY_SHARE)
    median = (
        NATIONAL_MEDIAN_BUDGET * CITY_PRICE[city] * np.array([p[3] for p in PROPERTY_TYPES])[ptype]
    )
    budget_z = rng.normal(0.0, 1.0, n)
    budget = np.clip(np.round(median * np.exp(0.55 * budget_z), -4), 60_000, 8_000_000)
    has_budget = rng.random(n) > 0.07

    agent = _assign_agents(rng, clock, w, created)
    a = w.agents
    assigned = agent >= 0
    skill = np.where(assigned, a.skill[agent], 0.0)
    is_ai = assigned & a.is_ai[agent]
    # hours to first contact: AI agents answer in minutes, humans slower off-hours
    hours = np.where(
        is_ai,
        rng.lognormal(np.log(0.08), 0.6, n),
        rng.lognormal(np.log(3.0) - 0.8 * skill, 1.0, n) * (1 + 3 * (1 - rhythm(created))),
    )
    interest = rng.normal(0.0, 1.0, n)
    logit = (
        WIN_BASE
        + np.array([s[2] for s in SOURCES])[source]
        + np.array([t[2] for t in TIMELINES])[timeline]
        + np.array([p[2] for p in PROPERTY_TYPES])[ptype]
        + CITY_HEAT[city]
        + np.where(has_budget, 0.25 * budget_z - 0.2 * budget_z**2, -0.35)
        + 1.15 * interest
        + 0.6 * skill
        - 0.25 * np.log1p(hours)
        + rng.normal(0.0, 0.55, n)
    )
    won = assigned & (rng.random(n) < 1 / (1 + np.exp(-logit)))
    u = 0.9 * (logit - WIN_BASE) + rng.logistic(0.0, 1.0, n)
    reach = np.where(won, WON, (u[:, None] > REACH_THRESHOLDS[None, :]).sum(axis=1))
    reach = np.where(assigned, reach, 0)

    # when each stage is (or would be) reached, and when a lead that stalls is given up
    reached = np.full((n, 6), NEVER, dtype=np.int64)
    reached[:, 0] = created
    reached[:, CONTACTED] = np.where(
        reach >= CONTACTED, created + (hours * HOUR).astype(np.int64), NEVER
    )
    for k in range(QUALIFIED, WON + 1):
        step = rng.lognormal(np.log(STAGE_DAYS[k - 2]), STAGE_SIGMA[k - 2], n) * DAY
        reached[:, k] = np.where(reach >= k, reached[:, k - 1] + step.astype(np.int64), NEVER)
    last = reached[np.arange(n), reach]
    give_up = np.where(assigned, LOST_DAYS, 60.0)
    lost_at = np.where(
        won, NEVER, last + (rng.lognormal(np.log(give_up), 0.6) * DAY).astype(np.int64)
    )
    reached[reached > clock.now] = NEVER
    stage = (reached != NEVER).sum(axis=1) - 1
    lost = lost_at <= clock.now
    stage[lost] = LOST
    ended = np.minimum(
        np.where(stage == WON, reached[:, WON], np.where(lost, lost_at, clock.now)), clock.now
    )

    owner = _assign_owners(rng, w, created)
    first = labels(FIRST_NAMES, rng.integers(0, FIRST_NAMES.size, n))
    last_name = labels(LAST_NAMES, rng.integers(0, LAST_NAMES.size, n))
    phone = pl.select(
        pl.concat_str(
            pl.lit("+1-"),
            pl.Series(CITY_AREA[city]).cast(pl.String),
            pl.lit("-555-"),
            pl.Series(rng.integers(0, 10_000, n)).cast(pl.String).str.zfill(4),
        )
    ).to_series()
    value_base = np.where(has_budget, budget, np.round(median, -4))
    value = np.where(
        stage == WON,
        np.round(value_base * rng.uniform(0.88, 1.03, n), -3),
        np.round(value_base * 0.97, -3),
    )
    reason = rng.integers(0, LOST_REASONS.size, n)
    do_not_call = (rng.random(n) < 0.01) | ((stage == LOST) & (reason == DO_NOT_CALL))
    chunk_state = LeadChunk(
        w, ids, created, agent, owner, interest, won, stage, reached, ended, reason, phone
    )
    frame = pl.DataFrame(
        {
            "workspace_id": w.id,
            "id": ids,
            "name": pl.select(pl.concat_str(first, pl.lit(" "), last_name)).to_series(),
            "email": nullable(
                pl.select(
                    pl.concat_str(
                        first.str.to_lowercase(),
                        pl.lit("."),
                        last_name.str.to_lowercase(),
                        pl.Series(ids % 997).cast(pl.String),
                        pl.lit("@"),
                        labels(EMAIL_DOMAINS, rng.integers(0, EMAIL_DOMAINS.size, n)),
                    )
                ).to_series(),
                rng.random(n) > 0.08,
            ),
            "phone": nullable(phone, rng.random(n) > 0.1),
            "source": labels([s[0] for s in SOURCES], source),
            "budget": nullable(budget.astype(np.int64), has_budget),
            "timeline": labels([t[0] for t in TIMELINES], timeline),
            "property_type": labels([p[0] for p in PROPERTY_TYPES], ptype),
            "location": labels(CITY_NAMES, city),
            "stage": labels(STAGES, stage),
            "value": value.astype(np.int64),
            "agent_id": nullable(np.where(assigned, a.ids[np.maximum(agent, 0)], 0), assigned),
            "owner_id": w.members.ids[owner],
            "do_not_call": do_not_call,
            "created_at": ts(created),
            "converted_at": ts(reached[:, WON], stage == WON),
        }
    )
    return chunk_state, frame


def _assign_agents(
    rng: np.random.Generator, clock: Clock, w: World, created: np.ndarray
) -> np.ndarray:
    """An agent on duty when the lead arrived, by capacity; some leads wait unassigned."""
    a = w.agents
    n = created.size
    agent = pick(rng, n, a.lead_weight)
    for _ in range(8):
        bad = np.flatnonzero((a.created[agent] > created) | (a.active_until[agent] < created))
        if bad.size == 0:
            break
        agent[bad] = pick(rng, bad.size, a.lead_weight)
    agent[(a.created[agent] > created) | (a.active_until[agent] < created)] = 0
    waiting = rng.random(n) < np.where(created > clock.now - 2 * DAY, 0.3, 0.04)
    agent[waiting] = -1
    return agent


def _assign_owners(rng: np.random.Generator, w: World, created: np.ndarray) -> np.ndarray:
    """The member who brought the lead in, among those who were members then."""
    m = w.members
    weight = m.lead_weight
    owner = pick(rng, created.size, weight)
    for _ in range(8):
        bad = np.flatnonzero((m.created[owner] > created) | (m.churned[owner] < created))
        if bad.size == 0:
            break
        owner[bad] = pick(rng, bad.size, weight)
    owner[(m.created[owner] > created) | (m.churned[owner] < created)] = 0
    return owner
