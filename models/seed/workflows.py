"""Workflows (follow-up, enrichment, notification, nurture) and their runs, step by step."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from models.seed.clock import DAY, HOUR, MINUTE, SECOND, Clock
from models.seed.frames import Ids, json_int_lists, labels, stream, ts
from models.seed.leads import NEVER, LeadChunk
from models.seed.people import World
from models.seed.vocab import CONTACTED, SHOWING, WON

_STREAM = 8
Step = tuple[str, str, str, float]  # name, type, description, median seconds
# (name, type, status, steps); the waits are where runs spend their time (the bottlenecks)
WORKFLOWS: list[tuple[str, str, str, list[Step]]] = [
    (
        "Lead enrichment",
        "enrichment",
        "ACTIVE",
        [
            ("Validate contact", "validation", "Check email and phone format and reachability", 4),
            ("Property records", "api", "Look up public records for the area", 40),
            ("Score lead", "ml", "Score with the active model", 2),
            ("Assign agent", "assignment", "Route to an agent by capacity", 600),
        ],
    ),
    (
        "New lead follow-up",
        "follow_up",
        "ACTIVE",
        [
            ("Welcome email", "email", "Send the welcome email with listings", 30),
            ("Wait for reply", "wait", "Give the lead two days to answer", 2 * 86_400),
            ("Call lead", "call", "Agent calls to qualify", 4 * 3_600),
            ("Schedule showing", "task", "Book a showing if qualified", 86_400),
        ],
    ),
    (
        "Hot lead alert",
        "notification",
        "ACTIVE",
        [
            ("Detect hot lead", "trigger", "Score or engagement crosses the threshold", 5),
            ("Notify agent", "notification", "Push and SMS to the assigned agent", 10),
            ("Escalate to manager", "notification", "Escalate if untouched for an hour", 3_600),
        ],
    ),
    (
        "Long-term nurture",
        "nurture",
        "ACTIVE",
        [
            ("Add to drip campaign", "email", "Monthly market digest", 60),
            ("Market report", "email", "Personalised market report", 14 * 86_400),
            ("Re-engagement check", "wait", "Wait for opens or visits", 21 * 86_400),
            ("Hand off to agent", "assignment", "Back to an agent when engaged", 86_400),
            ("Survey", "email", "Ask about plans and timeline", 3 * 86_400),
            ("Archive", "task", "Close out if still silent", 60),
        ],
    ),
    (
        "Post-showing follow-up",
        "follow_up",
        "ACTIVE",
        [
            ("Thank-you note", "email", "Send notes and comparable listings", 3_600),
            ("Feedback call", "call", "Ask what they liked", 86_400),
            ("Prepare offer", "task", "Help draft an offer when ready", 3 * 86_400),
        ],
    ),
    (
        "Property data sync",
        "enrichment",
        "ACTIVE",
        [
            ("Fetch listings", "api", "Pull matching listings from the MLS", 120),
            ("Match preferences", "ml", "Rank listings for the lead", 20),
            ("Send matches", "email", "Email the top matches", 60),
        ],
    ),
    (
        "Overdue callback alert",
        "notification",
        "ACTIVE",
        [
            ("Find overdue callbacks", "trigger", "Callbacks past due by 15 minutes", 900),
            ("Notify agent", "notification", "Remind the agent", 10),
            ("Reassign", "assignment", "Hand to another agent after an hour", 3_600),
        ],
    ),
    (
        "Past client check-in",
        "nurture",
        "PAUSED",
        [
            ("Anniversary email", "email", "Home anniversary greeting", 60),
            ("Referral ask", "email", "Ask for referrals", 7 * 86_400),
            ("Review request", "email", "Ask for a review", 7 * 86_400),
        ],
    ),
    (
        "Referral thank-you",
        "notification",
        "DRAFT",
        [
            ("Thank referrer", "email", "Thank the client who referred", 60),
            ("Gift card", "task", "Send a gift card", 86_400),
            ("Update CRM", "task", "Tag the referrer", 60),
        ],
    ),
]
MAX_STEPS = max(len(s) for *_, s in WORKFLOWS)
MEDIANS = np.array(
    [[s[3] for s in steps] + [1.0] * (MAX_STEPS - len(steps)) for *_, steps in WORKFLOWS]
)
STEP_COUNT = np.array([len(steps) for *_, steps in WORKFLOWS])
RUN_STATUSES = ["RUNNING", "COMPLETED", "FAILED", "STALLED"]
RUNNING, COMPLETED, FAILED, STALLED = range(4)
WORKFLOW_ERRORS = np.array(
    [
        "SMTP provider rejected the message",
        "Lead has no phone number",
        "Records API timed out",
        "No agent available to assign",
    ]
)


def workflows(clock: Clock, ids: Ids, worlds: list[World]) -> pl.DataFrame:
    """All workflows of every workspace; each world keeps its workflow ids by template index."""
    frames = []
    for w in worlds:
        wf_ids = ids.take("workflow", len(WORKFLOWS))
        w.workflow_ids = wf_ids
        frames.append(
            pl.DataFrame(
                {
                    "workspace_id": w.id,
                    "id": wf_ids,
                    "name": [name for name, *_ in WORKFLOWS],
                    "type": [kind for _, kind, *_ in WORKFLOWS],
                    "status": [status for _, _, status, _ in WORKFLOWS],
                    "steps": [
                        json.dumps(
                            [{"name": s[0], "type": s[1], "description": s[2]} for s in steps]
                        )
                        for *_, steps in WORKFLOWS
                    ],
                    "owner_id": w.members.ids[0],
                    "created_at": ts(np.full(len(WORKFLOWS), clock.start - 30 * DAY)),
                }
            )
        )
    return pl.concat(frames)


def workflow_runs(
    clock: Clock, random_seed: int, chunk: LeadChunk, ids: Ids, index: int
) -> pl.DataFrame:
    rng = stream(random_seed, chunk.world.index, _STREAM, index)
    n = chunk.ids.size
    r = chunk.reached
    # (template, leads it runs for, when it starts)
    triggers = [
        (0, rng.random(n) < 0.5, chunk.created + rng.integers(5, 120, n) * SECOND),
        (1, (r[:, CONTACTED] != NEVER) & (rng.random(n) < 0.35), r[:, CONTACTED]),
        (2, (chunk.interest > 1.0) & (rng.random(n) < 0.6), chunk.created + 10 * MINUTE),
        (3, (chunk.interest < -0.5) & (rng.random(n) < 0.3), chunk.created + DAY),
        (4, (r[:, SHOWING] != NEVER) & (rng.random(n) < 0.5), r[:, SHOWING]),
        (5, rng.random(n) < 0.1, chunk.created + HOUR),
        (6, rng.random(n) < 0.03, chunk.created + 2 * DAY),
        (7, (r[:, WON] != NEVER) & (rng.random(n) < 0.7), r[:, WON]),
    ]
    delay = {4: HOUR, 7: 30 * DAY}
    template = np.concatenate([np.full(int(m.sum()), t) for t, m, _ in triggers])
    lead = np.concatenate([np.flatnonzero(m) for _, m, _ in triggers])
    start = np.concatenate([at[m] + delay.get(t, 0) for t, m, at in triggers])
    keep = start <= clock.now
    template, lead, start = template[keep], lead[keep], start[keep]
    order = np.lexsort((lead, start))
    template, lead, start = template[order], lead[order], start[order]
    m = template.size
    steps = STEP_COUNT[template]
    seconds = np.maximum(1, rng.lognormal(np.log(MEDIANS[template]), 0.9)).astype(np.int64)
    seconds[np.arange(MAX_STEPS)[None, :] >= steps[:, None]] = 0
    ends = start[:, None] + np.cumsum(seconds, axis=1) * SECOND
    done_by_now = (ends <= clock.now).sum(axis=1).clip(max=steps)
    fails_at = np.where(rng.random(m) < 0.06, (rng.random(m) * steps).astype(np.int64), MAX_STEPS)
    failed = fails_at < done_by_now
    finished = (done_by_now == steps) & ~failed
    current = np.where(failed, fails_at, done_by_now)
    status = np.where(failed, FAILED, np.where(finished, COMPLETED, RUNNING))
    row = np.arange(m)
    last_step = np.clip(np.where(finished, steps - 1, current), 0, MAX_STEPS - 1)
    finish_at = ends[row, last_step]
    next_at = ends[row, last_step].copy()
    # some long runs got stuck: their next action is overdue
    stalled = (status == RUNNING) & (start < clock.now - 2 * DAY) & (rng.random(m) < 0.25)
    status[stalled] = STALLED
    next_at[stalled] = clock.now - rng.integers(HOUR, 2 * DAY, int(stalled.sum()))
    running = (status == RUNNING) | (status == STALLED)
    return pl.DataFrame(
        {
            "workspace_id": chunk.world.id,
            "id": ids.take("workflow_run", m),
            "workflow_id": chunk.world.workflow_ids[template],
            "lead_id": chunk.ids[lead],
            "status": labels(RUN_STATUSES, status),
            "current_step": current,
            "started_at": ts(start),
            "finished_at": ts(finish_at, ~running),
            "next_action_at": ts(next_at, running),
            "step_seconds": json_int_lists(seconds, current),
            "error": labels(WORKFLOW_ERRORS, rng.integers(0, WORKFLOW_ERRORS.size, m), failed),
        }
    )
