"""Plans, one billing subscription per member (trials, churn, dunning) and their payments."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from models.seed.clock import DAY, HOUR, MINUTE, Clock
from models.seed.frames import Batch, Ids, pick, stream, ts
from models.seed.people import World

_STREAM = 2
NEVER = np.iinfo(np.int64).max
TRIAL = 14 * DAY
CYCLE = 30 * DAY  # billing periods are 30 days: simple, and every day of the month has renewals

# name, monthly price (cents), features, call limit, agent limit, max minutes, monthly credits
PLANS: list[tuple[str, int, list[str], int | None, int | None, int | None, int]] = [
    ("Starter", 2_900, ["100 calls / month", "1 AI agent", "Email support"], 100, 1, 500, 100),
    ("Pro", 9_900, ["Unlimited Calls", "AI Agent", "Analytics"], 1_000, 1, 5_000, 500),
    (
        "Business",
        29_900,
        ["Unlimited Calls", "5 AI Agents", "Analytics", "Custom dashboards", "Priority support"],
        5_000,
        5,
        20_000,
        2_500,
    ),
    (
        "Enterprise",
        99_900,
        ["Unlimited everything", "Dedicated success manager", "SSO", "Audit log", "SLA 99.95%"],
        None,
        None,
        None,
        10_000,
    ),
]


def plan_rows() -> list[tuple[str, int, str, int | None, int | None, int | None, int]]:
    return [(n, p, json.dumps(f), c, a, m, cr) for n, p, f, c, a, m, cr in PLANS]


def subscriptions(
    clock: Clock, ids: Ids, random_seed: int, worlds: list[World], plan_ids: dict[str, int]
) -> list[Batch]:
    """Subscriptions and payments; records each member's churn time on the world (eagerly:
    sessions and leads depend on it)."""
    out: list[Batch] = []
    for w in worlds:
        rng = stream(random_seed, w.index, _STREAM)
        m = w.members
        n = m.ids.size
        plan = pick(rng, n, [0.35, 0.40, 0.18, 0.07])
        plan[m.roles == "AGENT"] = np.where(rng.random(n) < 0.8, 1, 2)[m.roles == "AGENT"]
        plan[m.roles == "ADMIN"] = np.where(rng.random(n) < 0.6, 2, 3)[m.roles == "ADMIN"]
        plan[: len(w.demo)] = [3, 1, 1][: len(w.demo)]
        trial_end = m.created + TRIAL
        r = rng.random(n)
        churn_p = np.where(m.roles == "USER", 0.30 * (1 - m.activity), 0.04)
        churn_p[: len(w.demo)] = 0
        status = np.full(n, "ACTIVE", dtype=object)
        status[r < churn_p + 0.05] = "PAST_DUE"
        status[r < churn_p + 0.02] = "INACTIVE"
        status[r < churn_p] = "CANCELLED"
        status[: len(w.demo)] = "ACTIVE"
        status[trial_end > clock.now] = "TRIALING"
        stopped = np.isin(status, ["CANCELLED", "INACTIVE"])
        stop_at = clock.within(rng, np.minimum(trial_end, clock.now - DAY), np.full(n, clock.now))
        end = np.where(stopped, stop_at, clock.now)
        m.churned = np.where(stopped, end, NEVER)
        m.credits = np.where(stopped, 0, np.array([p[6] for p in PLANS])[plan])
        cycles = np.where(end >= trial_end, (end - trial_end) // CYCLE + 1, 0)
        period_start = np.where(cycles > 0, trial_end + (cycles - 1) * CYCLE, m.created)
        period_end = np.where(cycles > 0, period_start + CYCLE, trial_end)
        sub_ids = ids.take("billing_subscription", n)
        price = np.array([p[1] for p in PLANS])[plan]
        out.append(
            (
                "billing_subscription",
                pl.DataFrame(
                    {
                        "workspace_id": w.id,
                        "id": sub_ids,
                        "user_id": m.ids,
                        "plan_id": np.array([plan_ids[p[0]] for p in PLANS])[plan],
                        "status": status.astype(str),
                        "current_period_start": ts(period_start),
                        "current_period_end": ts(period_end),
                        "cancel_at_period_end": (status == "ACTIVE") & (rng.random(n) < 0.04),
                        "created_at": ts(m.created),
                        "cancelled_at": ts(end, status == "CANCELLED"),
                    }
                ),
            )
        )
        out.append(
            ("payment", _payments(rng, clock, ids, w, sub_ids, status, price, trial_end, cycles))
        )
    return out


def _payments(
    rng: np.random.Generator,
    clock: Clock,
    ids: Ids,
    w: World,
    sub_ids: np.ndarray,
    status: np.ndarray,
    price: np.ndarray,
    trial_end: np.ndarray,
    cycles: np.ndarray,
) -> pl.DataFrame:
    # renewals: one per cycle started before the subscription stopped
    sub = np.repeat(np.arange(sub_ids.size), cycles)
    k = np.arange(sub.size) - np.repeat(np.cumsum(cycles) - cycles, cycles)
    at = np.minimum(trial_end[sub] + k * CYCLE + rng.integers(0, 3 * HOUR, sub.size), clock.now)
    amount = price[sub]
    state = np.array(["SUCCEEDED", "FAILED", "REFUNDED"])[pick(rng, sub.size, [0.965, 0.025, 0.01])]
    state[(at > clock.now - 2 * DAY) & (rng.random(sub.size) < 0.3)] = "PENDING"
    last = np.cumsum(cycles)[cycles > 0] - 1
    past_due = status[sub[last]] == "PAST_DUE"
    state[last[past_due]] = "FAILED"
    # credit top-ups between renewals, and a few in the last hours so "today" always has revenue
    paying = np.flatnonzero(cycles > 0)
    extra = rng.poisson(0.15 * cycles[paying])
    top_sub = np.repeat(paying, extra)
    stop = np.minimum(trial_end[top_sub] + cycles[top_sub] * CYCLE, clock.now)
    top_at = clock.within(rng, trial_end[top_sub], stop)
    active = np.flatnonzero(status == "ACTIVE")
    fresh = active[rng.integers(0, active.size, 3)] if active.size else np.zeros(0, np.int64)
    top_sub = np.r_[top_sub, fresh]
    top_at = np.r_[top_at, clock.recent(rng, fresh.size, 3 * HOUR, MINUTE)]
    top_amount = np.array([1_000, 2_500, 5_000])[rng.integers(0, 3, top_sub.size)]
    top_state = np.where(rng.random(top_sub.size) < 0.97, "SUCCEEDED", "FAILED")
    all_sub = np.r_[sub, top_sub]
    all_at = np.r_[at, top_at]
    order = np.lexsort((all_sub, all_at))
    n = order.size
    return pl.DataFrame(
        {
            "workspace_id": w.id,
            "id": ids.take("payment", n),
            "subscription_id": sub_ids[all_sub[order]],
            "amount": np.r_[amount, top_amount][order],
            "currency": "USD",
            "status": np.r_[state, top_state][order],
            "created_at": ts(all_at[order]),
        }
    )
