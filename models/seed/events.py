"""Lead events: creation, stage changes in funnel order, and the engagement between them.

Every event falls between the lead's creation and `now`; outbound touches stay inside the
window the lead was being worked (first contact to win/loss), and engagement volume follows
the lead's hidden interest, which is what makes it predictive of conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.seed.clock import DAY, HOUR, MINUTE, Clock
from models.seed.frames import Ids, labels, nullable, stream, ts
from models.seed.leads import NEVER, LeadChunk
from models.seed.vocab import (
    CONTACTED,
    LEAD_NOTES,
    LOST,
    LOST_REASONS,
    OFFER,
    QUALIFIED,
    SHOWING,
    STAGES,
    WON,
)

_STREAM = 5
TYPES = np.array(
    [
        "CREATED",
        "STAGE_CHANGE",
        "EMAIL_SENT",
        "EMAIL_OPENED",
        "EMAIL_REPLIED",
        "CALL",
        "MEETING",
        "SHOWING",
        "WEBSITE_VISIT",
        "NOTE",
    ]
)
CREATED, STAGE_CHANGE, SENT, OPENED, REPLIED, CALL, MEETING, SHOWN, VISIT, NOTE = range(10)
# events the lead does on its own carry no agent
_AGENTLESS = np.isin(np.arange(10), [OPENED, REPLIED, VISIT])
_NOTE_LOST, _NOTE_TEXT = 1, 2


@dataclass(slots=True)
class Engagement:
    """The events other tables are made from: calls, email replies and website visits."""

    lead: np.ndarray  # index into the chunk
    kind: np.ndarray  # CALL / REPLIED / VISIT
    at: np.ndarray
    first_touch: np.ndarray  # the call that made first contact


class _Events:
    """Columns collected per event kind, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: list[
            tuple[np.ndarray, int | np.ndarray, np.ndarray, np.ndarray, np.ndarray]
        ] = []

    def add(
        self,
        lead: np.ndarray,
        kind: int | np.ndarray,
        at: np.ndarray,
        from_stage: np.ndarray | None = None,
        to_stage: np.ndarray | None = None,
    ) -> None:
        none = np.full(lead.size, -1, dtype=np.int64)
        self.parts.append(
            (
                lead,
                np.broadcast_to(np.asarray(kind), lead.shape),
                at,
                none if from_stage is None else from_stage,
                none if to_stage is None else to_stage,
            )
        )

    def columns(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(5))


def make_events(
    clock: Clock, random_seed: int, chunk: LeadChunk, ids: Ids, index: int
) -> tuple[pl.DataFrame, np.ndarray, Engagement]:
    """Event rows, each lead's latest activity, and the engagement other tables follow."""
    rng = stream(random_seed, chunk.world.index, _STREAM, index)
    n = chunk.ids.size
    everyone = np.arange(n)
    ev = _Events()
    created = chunk.created
    ev.add(everyone, CREATED, created, to_stage=np.zeros(n, dtype=np.int64))

    reached = chunk.reached
    for k in range(CONTACTED, WON + 1):
        got = np.flatnonzero(reached[:, k] != NEVER)
        ev.add(got, STAGE_CHANGE, reached[got, k], np.full(got.size, k - 1), np.full(got.size, k))
    lost = np.flatnonzero(chunk.stage == LOST)
    lost_from = (reached[lost] != NEVER).sum(axis=1) - 1
    ev.add(lost, STAGE_CHANGE, chunk.ended[lost], lost_from, np.full(lost.size, LOST))

    # how far the lead got by now (LOST counts as where it was when given up)
    depth = (reached != NEVER).sum(axis=1) - 1
    contacted = np.flatnonzero(depth >= CONTACTED)
    t1 = reached[contacted, CONTACTED]
    is_ai = np.zeros(n, dtype=bool)
    assigned = chunk.agent >= 0
    is_ai[assigned] = chunk.world.agents.is_ai[chunk.agent[assigned]]
    first_call = rng.random(contacted.size) < np.where(is_ai[contacted], 0.3, 0.6)
    ev.add(contacted[first_call], CALL, t1[first_call])
    ev.add(contacted[~first_call], SENT, t1[~first_call])

    # the worked window: first contact until won, lost or now
    end = chunk.ended[contacted]
    days = (end - t1) / DAY
    span = (end - t1) > MINUTE
    stage_depth = np.minimum(depth[contacted], OFFER)
    interest = chunk.interest

    def spread(
        rate: np.ndarray, lo: np.ndarray, hi: np.ndarray, kind: int, who: np.ndarray
    ) -> None:
        count = np.where(hi - lo > MINUTE, rng.poisson(np.maximum(rate, 0.0)), 0)
        rows = np.repeat(np.arange(who.size), count)
        ev.add(who[rows], kind, clock.within(rng, lo[rows], hi[rows]))

    sent_rate = 0.3 + 0.3 * stage_depth + 0.15 * np.sqrt(np.maximum(days, 0))
    spread(np.where(span, sent_rate, 0), t1, end, SENT, contacted)
    spread(
        np.where(span, 0.2 + 0.25 * stage_depth + 0.06 * np.sqrt(np.maximum(days, 0)), 0),
        t1,
        end,
        CALL,
        contacted,
    )
    spread(np.where(span, 0.1 + 0.1 * stage_depth, 0), t1, end, NOTE, contacted)
    qualified = np.flatnonzero(depth >= QUALIFIED)
    spread(
        np.exp(-0.7 + 0.35 * interest[qualified]),
        reached[qualified, QUALIFIED],
        chunk.ended[qualified],
        MEETING,
        qualified,
    )
    showing = np.flatnonzero(depth >= SHOWING)
    t3 = reached[showing, SHOWING]
    ev.add(showing, SHOWN, t3)
    spread(
        np.exp(0.1 + 0.3 * interest[showing]),
        t3,
        np.minimum(reached[showing, OFFER], chunk.ended[showing]),
        SHOWN,
        showing,
    )
    visit_end = np.where(depth >= CONTACTED, chunk.ended, np.minimum(created + 45 * DAY, clock.now))
    # interested leads keep coming back to the website, most of all in their first week
    first_week = np.minimum(created + 7 * DAY, clock.now)
    spread(np.exp(-0.2 + 0.8 * interest), created, first_week, VISIT, everyone)
    spread(np.exp(-0.9 + 0.6 * interest), created, visit_end, VISIT, everyone)

    lead, kind, at, from_stage, to_stage = ev.columns()
    # opens and replies follow sent emails, more often for interested leads; none after the end
    sent = np.flatnonzero(kind == SENT)
    opened = sent[rng.random(sent.size) < 1 / (1 + np.exp(-(0.2 + 1.1 * interest[lead[sent]])))]
    open_at = at[opened] + (rng.exponential(5.0, opened.size) * HOUR).astype(np.int64)
    keep = open_at <= chunk.ended[lead[opened]]
    opened, open_at = opened[keep], open_at[keep]
    replied = rng.random(opened.size) < 1 / (1 + np.exp(-(-1.1 + 1.2 * interest[lead[opened]])))
    reply_at = open_at[replied] + (rng.exponential(8.0, int(replied.sum())) * HOUR).astype(np.int64)
    keep = reply_at <= chunk.ended[lead[opened[replied]]]
    ev2 = _Events()
    ev2.add(lead, kind, at, from_stage, to_stage)
    ev2.add(lead[opened], OPENED, open_at)
    ev2.add(lead[opened[replied][keep]], REPLIED, reply_at[keep])
    lead, kind, at, from_stage, to_stage = ev2.columns()

    order = np.lexsort((kind, at, lead))
    lead, kind, at, from_stage, to_stage = (
        c[order] for c in (lead, kind, at, from_stage, to_stage)
    )
    m = lead.size
    last = at[np.cumsum(np.bincount(lead, minlength=n)) - 1]

    # one vocabulary for the note column: lead notes, then loss reasons, then NULL
    note = np.full(m, LEAD_NOTES.size + LOST_REASONS.size)
    is_note = kind == NOTE
    note[is_note] = rng.integers(0, LEAD_NOTES.size, int(is_note.sum()))
    is_lost = (kind == STAGE_CHANGE) & (to_stage == LOST)
    note[is_lost] = LEAD_NOTES.size + chunk.lost_reason[lead[is_lost]]
    agent_ids = chunk.world.agents.ids
    agent = np.where(assigned, agent_ids[np.maximum(chunk.agent, 0)], 0)[lead]
    has_agent = (agent > 0) & ~_AGENTLESS[kind]
    stage_names = [*STAGES, None]  # -1 picks the trailing None
    frame = pl.DataFrame(
        {
            "workspace_id": chunk.world.id,
            "id": ids.take("lead_event", m),
            "lead_id": chunk.ids[lead],
            "type": labels(TYPES, kind),
            "occurred_at": ts(at),
            "from_stage": labels(stage_names, from_stage % len(stage_names)),
            "to_stage": labels(stage_names, to_stage % len(stage_names)),
            "agent_id": nullable(agent, has_agent),
            "note": labels([*LEAD_NOTES, *LOST_REASONS, None], note),
        }
    )
    touch = np.isin(kind, [CALL, REPLIED, VISIT])
    first_touch = (kind == CALL) & (at == reached[lead, CONTACTED])
    engagement = Engagement(lead[touch], kind[touch], at[touch], first_touch[touch])
    return frame, last, engagement
