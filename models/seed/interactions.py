"""Interactions: the calls, email replies and chats behind the leads' events, and the AI
agent executions members run; anything not finished by `now` is still ACTIVE."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from models.seed.clock import HISTORY_DAYS, MINUTE, SECOND, Clock
from models.seed.events import CALL, REPLIED, VISIT, Engagement
from models.seed.frames import TIMESTAMP, Ids, labels, nullable, pick, stream, ts
from models.seed.leads import LeadChunk
from models.seed.people import World
from models.seed.vocab import AI_ERRORS, AI_TOPICS, CALL_TOPICS, CHAT_TOPICS, OFFER

_STREAM = 6
_AI_STREAM = 7
OUTCOMES = np.array(
    ["CONVERTED", "INTERESTED", "NOT_INTERESTED", "NO_ANSWER", "CALLBACK_REQUESTED", "RESOLVED"]
)
CONVERTED, INTERESTED, NOT_INTERESTED, NO_ANSWER, CALLBACK, RESOLVED = range(6)
AI_EXECUTIONS_PER_LEAD = 0.8
AI_GROWTH = 1.3
CHAT_SHARE = 0.2  # website visits that open a chat
CHUNK = 500_000


@dataclass(slots=True)
class CallbackRequests:
    """Calls that ended with "call me back": the callbacks table follows from them."""

    lead_id: np.ndarray
    agent_id: np.ndarray
    asked: np.ndarray


_SCHEMA: dict[str, pl.DataType] = {
    "agent_id": pl.Int64(),
    "lead_id": pl.Int64(),
    "user_id": pl.Int64(),
    "channel": pl.String(),
    "direction": pl.String(),
    "status": pl.String(),
    "outcome": pl.String(),
    "started_at": TIMESTAMP,
    "ended_at": TIMESTAMP,
    "duration_seconds": pl.Int64(),
    "credits": pl.Int64(),
    "satisfaction": pl.Float64(),
    "topic": pl.String(),
    "success": pl.Boolean(),
    "error": pl.String(),
    "phone_number": pl.String(),
}


class Rows:
    """Interaction columns gathered from several sources, then one frame ordered by time;
    a source passes only the columns it has (the rest are NULL, credits 0)."""

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []

    def add(self, n: int, **cols: np.ndarray | pl.Series | str | bool | None) -> None:
        if n == 0:
            return
        data = {}
        for name, dtype in _SCHEMA.items():
            value = cols.get(name)
            if isinstance(value, np.ndarray | pl.Series):
                data[name] = pl.Series(name, value).cast(dtype)
            else:
                constant = 0 if value is None and name == "credits" else value
                data[name] = pl.repeat(constant, n, dtype=dtype, eager=True).alias(name)
        self.frames.append(pl.DataFrame(data))

    def frame(self, w: World, ids: Ids, now: int) -> pl.DataFrame:
        rows = pl.concat(self.frames) if self.frames else pl.DataFrame(schema=_SCHEMA)
        # whatever has not ended by now is still going on: no end, duration or result yet
        ongoing = pl.col("ended_at") > pl.lit(now, pl.Int64).cast(TIMESTAMP)
        unfinished = ["ended_at", "duration_seconds", "outcome", "satisfaction", "success", "error"]
        rows = rows.with_columns(
            pl.when(ongoing).then(pl.lit("ACTIVE")).otherwise(pl.col("status")).alias("status"),
            *(pl.when(ongoing).then(None).otherwise(pl.col(c)).alias(c) for c in unfinished),
        ).sort("started_at", maintain_order=True)
        return rows.select(
            pl.lit(w.id, pl.Int64).alias("workspace_id"),
            pl.Series("id", ids.take("interaction", rows.height)),
            pl.all(),
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _stars(rng: np.random.Generator, mean: np.ndarray, rated: np.ndarray) -> pl.Series:
    return nullable(np.clip(np.round(rng.normal(mean, 0.8)), 1, 5), rated, pl.Float64)


def _seconds(us: np.ndarray) -> np.ndarray:
    return (us * SECOND).astype(np.int64)


def lead_interactions(
    clock: Clock, random_seed: int, chunk: LeadChunk, touch: Engagement, ids: Ids, index: int
) -> tuple[pl.DataFrame, CallbackRequests]:
    """Interactions behind the chunk's calls, replies and chats, and the callbacks asked for."""
    rng = stream(random_seed, chunk.world.index, _STREAM, index)
    w, a = chunk.world, chunk.world.agents
    rows = Rows()

    calls = touch.kind == CALL
    lead, at = touch.lead[calls], touch.at[calls]
    n = lead.size
    agent = chunk.agent[lead]
    ai = a.is_ai[agent]
    interest = chunk.interest[lead]
    closing = chunk.won[lead] & (at >= chunk.reached[lead, OFFER])
    outcome = np.where(
        closing,
        np.array([CONVERTED, INTERESTED, CALLBACK])[pick(rng, n, [0.55, 0.3, 0.15])],
        np.array([NO_ANSWER, CALLBACK, RESOLVED, INTERESTED])[
            pick(rng, n, [0.3, 0.12, 0.05, 0.53])
        ],
    )
    cold = (outcome == INTERESTED) & ~closing & (rng.random(n) > _sigmoid(0.3 + interest))
    outcome[cold] = NOT_INTERESTED
    failed = ai & (rng.random(n) < 0.03)
    answered = (outcome != NO_ANSWER) & ~failed
    duration = np.where(
        answered,
        np.clip(rng.lognormal(np.log(240), 0.7, n), 20, 3600),
        rng.uniform(5, 40, n),
    ).astype(np.int64)
    owner = w.members.ids[chunk.owner[lead]]
    rows.add(
        n,
        agent_id=a.ids[agent],
        lead_id=chunk.ids[lead],
        user_id=np.where(ai, owner, a.user_id[agent]),
        channel="CALL",
        direction=labels(
            ["INBOUND", "OUTBOUND"], touch.first_touch[calls] | (rng.random(n) < 0.75)
        ),
        status=labels(["COMPLETED", "FAILED"], failed),
        outcome=labels(OUTCOMES, outcome, ~failed),
        started_at=ts(at),
        ended_at=ts(at + _seconds(duration)),
        duration_seconds=duration,
        credits=np.where(ai, (duration + 59) // 60 * 5, 0),
        satisfaction=_stars(
            rng, 3.6 + 0.5 * interest + 0.6 * a.skill[agent], answered & (rng.random(n) < 0.35)
        ),
        topic=labels(CALL_TOPICS, rng.integers(0, CALL_TOPICS.size, n)),
        success=answered & np.isin(outcome, [CONVERTED, INTERESTED, CALLBACK, RESOLVED]),
        error=labels(["Call dropped by carrier"], np.zeros(n), failed),
        phone_number=chunk.phone.gather(lead),
    )
    asks = outcome == CALLBACK
    callbacks = CallbackRequests(chunk.ids[lead[asks]], a.ids[agent[asks]], at[asks])

    replies = touch.kind == REPLIED
    lead, at = touch.lead[replies], touch.at[replies]
    n = lead.size
    agent = chunk.agent[lead]
    rows.add(
        n,
        agent_id=a.ids[agent],
        lead_id=chunk.ids[lead],
        user_id=np.where(a.is_ai[agent], w.members.ids[chunk.owner[lead]], a.user_id[agent]),
        channel="EMAIL",
        direction="INBOUND",
        status="COMPLETED",
        outcome=labels(["INTERESTED", "RESOLVED"], rng.random(n) < 0.6),
        started_at=ts(at),
        ended_at=ts(at),
        credits=np.where(a.is_ai[agent], 1, 0),
        topic="email_reply",
        success=True,
    )

    visits = np.flatnonzero(touch.kind == VISIT)
    chats = visits[rng.random(visits.size) < CHAT_SHARE]
    lead, at = touch.lead[chats], touch.at[chats]
    n = lead.size
    bot = _chat_agents(rng, w, at)
    duration = np.clip(rng.lognormal(np.log(180), 0.6, n), 15, 3600).astype(np.int64)
    rows.add(
        n,
        agent_id=nullable(a.ids[np.maximum(bot, 0)], bot >= 0),
        lead_id=chunk.ids[lead],
        channel="CHAT",
        direction="INBOUND",
        status="COMPLETED",
        outcome=labels(
            OUTCOMES,
            np.array([RESOLVED, INTERESTED, NOT_INTERESTED])[pick(rng, n, [0.7, 0.2, 0.1])],
        ),
        started_at=ts(at),
        ended_at=ts(at + _seconds(duration)),
        duration_seconds=duration,
        credits=np.where(bot >= 0, rng.integers(2, 9, n), 0),
        satisfaction=_stars(rng, 4.2 + 0.3 * chunk.interest[lead], rng.random(n) < 0.6),
        topic=labels(CHAT_TOPICS, pick(rng, n, [0.3, 0.15, 0.15, 0.15, 0.1, 0.08, 0.07])),
        success=rng.random(n) < 0.92,
    )
    return rows.frame(w, ids, clock.now), callbacks


def _chat_agents(rng: np.random.Generator, w: World, at: np.ndarray) -> np.ndarray:
    """The AI agent on the website chat at that time (-1: none was live yet)."""
    a = w.agents
    weight = np.where(a.is_ai & np.isin(a.status, ["ACTIVE", "LEARNING"]), 1.0, 0.0)
    if weight.sum() == 0:
        return np.full(at.size, -1)
    bot = pick(rng, at.size, weight)
    bot[(a.created[bot] > at) | (a.active_until[bot] < at)] = -1
    return bot


def ai_executions(clock: Clock, random_seed: int, w: World, ids: Ids) -> Iterator[pl.DataFrame]:
    """AI agent runs started by members, in chunks; credits sized to the workspace's plans."""
    a, m = w.agents, w.members
    weight = (
        np.select(
            [
                a.status == "ACTIVE",
                a.status == "LEARNING",
                a.status == "TRAINING",
                a.status == "PAUSED",
            ],
            [1.0, 0.6, 0.4, 0.5],
            0.0,
        )
        * a.is_ai
    )
    total = int(w.size.leads * AI_EXECUTIONS_PER_LEAD)
    if weight.sum() == 0 or total == 0:
        return
    # a month of executions should use about half of the credits the plans grant
    last_month = np.expm1(AI_GROWTH) - np.expm1(AI_GROWTH * (1 - 30 / HISTORY_DAYS))
    per_month = total * last_month / np.expm1(AI_GROWTH)
    median_credits = float(np.clip(0.5 * m.credits.sum() / max(per_month, 1), 2, 60))
    quality = np.clip(a.skill + 0.2, -0.5, 0.8)  # per-agent success rate varies
    members = m.of_role("USER", "ADMIN")
    for part, start in enumerate(range(0, total, CHUNK)):
        rng = stream(random_seed, w.index, _AI_STREAM, part)
        n = min(CHUNK, total - start)
        at = clock.history(rng, n, growth=AI_GROWTH)
        if start == 0:
            at[:5] = clock.recent(rng, 5, 55 * MINUTE, MINUTE)
        agent = pick(rng, n, weight)
        for _ in range(8):
            bad = np.flatnonzero((a.created[agent] > at) | (a.active_until[agent] < at))
            if bad.size == 0:
                break
            agent[bad] = pick(rng, bad.size, weight)
        # runs the sampler could not place on a live agent move to its live period
        late = (a.created[agent] > at) | (a.active_until[agent] < at)
        at[late] = clock.within(
            rng, a.created[agent[late]], np.minimum(a.active_until[agent[late]], clock.now)
        )
        # the member who ran it: often the agent's owner, else anyone with an active plan
        user = members[pick(rng, n, m.activity[members])]
        for _ in range(8):
            bad = np.flatnonzero((m.created[user] > at) | (m.churned[user] < at))
            if bad.size == 0:
                break
            user[bad] = members[pick(rng, bad.size, m.activity[members])]
        own = (rng.random(n) < 0.4) | (m.created[user] > at) | (m.churned[user] < at)
        user_id = np.where(own, a.owner_id[agent], m.ids[user])
        success = rng.random(n) < _sigmoid(2.8 + 2.0 * quality[agent])
        seen = np.searchsorted(w.lead_created, at)
        has_lead = (rng.random(n) < 0.4) & (seen > 0)
        lead = w.lead_ids[(rng.random(n) * np.maximum(seen, 1)).astype(np.int64)]
        duration = np.maximum(1, np.round(rng.lognormal(np.log(2.0), 0.6, n))).astype(np.int64)
        rows = Rows()
        rows.add(
            n,
            agent_id=a.ids[agent],
            lead_id=nullable(lead, has_lead),
            user_id=user_id,
            channel="AI_EXECUTION",
            direction="OUTBOUND",
            status=labels(["FAILED", "COMPLETED"], success),
            outcome=labels(["RESOLVED"], np.zeros(n), success),
            started_at=ts(at),
            ended_at=ts(at + _seconds(duration)),
            duration_seconds=duration,
            credits=np.maximum(1, np.round(rng.lognormal(np.log(median_credits), 0.5, n))).astype(
                np.int64
            ),
            satisfaction=_stars(rng, 3.9 + 0.8 * quality[agent], success & (rng.random(n) < 0.55)),
            topic=labels(AI_TOPICS, rng.integers(0, AI_TOPICS.size, n)),
            success=success,
            error=labels(AI_ERRORS, rng.integers(0, AI_ERRORS.size, n), ~success),
        )
        yield rows.frame(w, ids, clock.now)
