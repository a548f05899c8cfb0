"""Workspaces, members (demo logins plus synthetic ones) and agents, human and AI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

import numpy as np
import polars as pl

from models.seed.clock import DAY, Clock
from models.seed.frames import Ids, nullable, pick, stream, ts
from models.seed.sizes import SeedSize, WorkspaceSize
from models.seed.vocab import AI_AGENT_NAMES, FIRST_NAMES, LAST_NAMES, PERSONALITIES

DEMO_PASSWORD = "demo"
# (name, slug, demo logins as (local part, role, full name)); the first three are the contract
WORKSPACES: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    (
        "Acme Realty",
        "acme",
        [
            ("admin", "ADMIN", "Avery Stone"),
            ("user", "USER", "Jordan Blake"),
            ("agent", "AGENT", "Sam Rivera"),
        ],
    ),
    ("Globex", "globex", [("admin", "ADMIN", "Hank Scorpio")]),
    ("Initech", "initech", [("admin", "ADMIN", "Bill Lumbergh")]),
]
DEMO_LOGINS: list[tuple[str, str, str]] = [
    (f"{local}@{slug}.example", role, name)
    for name, slug, logins in WORKSPACES
    for local, role, _ in logins
]

_STREAM = 1  # RNG stream id of this module


@dataclass(slots=True)
class Members:
    ids: np.ndarray
    roles: np.ndarray  # ADMIN / USER / AGENT
    created: np.ndarray  # us
    activity: np.ndarray  # 0..1, how often the member shows up
    emails: list[str]
    names: list[str]
    lead_weight: np.ndarray  # share of new leads a member brings in (owns)
    # set by billing: when the member's subscription stopped (int64 max if never), and the
    # monthly credits of the plan they are on now (0 once stopped)
    churned: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    credits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def of_role(self, *roles: str) -> np.ndarray:
        return np.flatnonzero(np.isin(self.roles, roles))


@dataclass(slots=True)
class Agents:
    ids: np.ndarray
    is_ai: np.ndarray
    status: np.ndarray
    skill: np.ndarray  # latent: better agents answer faster and convert more
    created: np.ndarray
    active_until: np.ndarray  # deactivated or paused agents get no new leads after this
    user_id: np.ndarray  # 0 = none (AI agents)
    owner_id: np.ndarray
    lead_weight: np.ndarray  # share of new leads when eligible


@dataclass(slots=True)
class World:
    """One workspace with everything later generators need to stay consistent with it."""

    index: int
    id: int
    name: str
    slug: str
    size: WorkspaceSize
    members: Members
    agents: Agents
    demo: dict[str, int]  # local part of a demo login -> user id
    # every lead once generated (ascending creation time): id, creation, agent index (-1 none)
    lead_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lead_created: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lead_agent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    workflow_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def build_worlds(
    size: SeedSize, clock: Clock, ids: Ids, random_seed: int
) -> tuple[list[World], pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Worlds plus the workspace, membership and agent frames (users come later: they need
    the sessions for `last_login_at`)."""
    worlds: list[World] = []
    for index, ((name, slug, logins), spec) in enumerate(
        zip(WORKSPACES, size.workspaces, strict=True)
    ):
        rng = stream(random_seed, index, _STREAM)
        (ws_id,) = ids.take("workspace", 1)
        members = _members(rng, clock, ids, slug, logins, spec)
        agents = _agents(rng, clock, ids, members, spec, index)
        demo = {local: int(members.ids[i]) for i, (local, _, _) in enumerate(logins)}
        worlds.append(World(index, int(ws_id), name, slug, spec, members, agents, demo))
    workspaces = pl.DataFrame(
        {
            "id": [w.id for w in worlds],
            "name": [w.name for w in worlds],
            "slug": [w.slug for w in worlds],
            "timezone": ["UTC"] * len(worlds),
            "created_at": ts(np.array([clock.start - 90 * DAY] * len(worlds))),
        }
    )
    memberships = pl.concat(
        [
            pl.DataFrame(
                {
                    "workspace_id": w.id,
                    "user_id": w.members.ids,
                    "role": w.members.roles,
                    "created_at": ts(w.members.created),
                }
            )
            for w in worlds
        ]
    )
    agent_rows = pl.concat([_agent_frame(random_seed, w) for w in worlds])
    return worlds, workspaces, memberships, agent_rows


def _members(
    rng: np.random.Generator,
    clock: Clock,
    ids: Ids,
    slug: str,
    logins: list[tuple[str, str, str]],
    spec: WorkspaceSize,
) -> Members:
    demo_agents = sum(role == "AGENT" for _, role, _ in logins)
    extra_agents = spec.human_agents - demo_agents
    roles = np.array(
        [role for _, role, _ in logins]
        + ["ADMIN"] * spec.extra_admins
        + ["USER"] * spec.users
        + ["AGENT"] * extra_agents
    )
    emails = [f"{local}@{slug}.example" for local, _, _ in logins]
    emails += [f"admin{i + 2:04d}@{slug}.example" for i in range(spec.extra_admins)]
    emails += [f"user{i + 1:04d}@{slug}.example" for i in range(spec.users)]
    emails += [f"agent{i + 1:04d}@{slug}.example" for i in range(extra_agents)]
    n = roles.size
    founders = clock.start - rng.integers(30, 120, n) * DAY
    # most plain members sign up during the history (cohorts); a few were there before it
    joined = np.where(rng.random(n) < 0.15, founders, clock.history(rng, n, growth=1.0))
    created = np.where(roles == "USER", joined, founders)
    created[: len(logins)] = clock.start - 120 * DAY
    activity = np.clip(rng.beta(2.0, 2.5, n), 0.03, 0.97)
    activity[roles != "USER"] = rng.uniform(0.75, 0.95, int((roles != "USER").sum()))
    activity[: len(logins)] = 0.95
    first = FIRST_NAMES[rng.integers(0, FIRST_NAMES.size, n)]
    last = LAST_NAMES[rng.integers(0, LAST_NAMES.size, n)]
    names = [f"{a} {b}" for a, b in zip(first, last, strict=True)]
    names[: len(logins)] = [full for _, _, full in logins]
    # plain users bring in leads (user@acme a lot of them), admins now and then
    weight = np.where(roles == "USER", rng.lognormal(0.0, 0.8, n), 0.0)
    weight[roles == "ADMIN"] = 0.12 * weight.sum() / max(int((roles == "ADMIN").sum()), 1)
    if "USER" in roles[: len(logins)]:
        weight[1] = 0.04 * weight.sum()
    return Members(ids.take("app_user", n), roles, created, activity, emails, names, weight)


def _agents(
    rng: np.random.Generator,
    clock: Clock,
    ids: Ids,
    members: Members,
    spec: WorkspaceSize,
    index: int,
) -> Agents:
    humans = members.of_role("AGENT")
    n_h, n_ai = humans.size, spec.ai_agents
    n = n_h + n_ai
    is_ai = np.r_[np.zeros(n_h, bool), np.ones(n_ai, bool)]
    status = np.where(
        is_ai,
        np.array(["ACTIVE", "TRAINING", "LEARNING", "PAUSED"])[
            pick(rng, n, [0.5, 0.17, 0.18, 0.15])
        ],
        np.array(["ACTIVE", "TRAINING", "PAUSED", "INACTIVE"])[
            pick(rng, n, [0.86, 0.05, 0.05, 0.04])
        ],
    )
    # the first human (agent@acme in Acme) and the first two AI agents are always on duty
    status[0] = "ACTIVE"
    status[n_h : n_h + 2] = "ACTIVE"
    new = np.isin(status, ["TRAINING", "LEARNING"])
    created = np.where(
        new, clock.now - rng.integers(5, 60, n) * DAY, clock.start - rng.integers(1, 200, n) * DAY
    )
    active_until = np.full(n, clock.now + DAY)
    active_until[status == "INACTIVE"] = (
        clock.now - rng.integers(30, 200, n)[status == "INACTIVE"] * DAY
    )
    active_until[status == "PAUSED"] = clock.now - rng.integers(1, 20, n)[status == "PAUSED"] * DAY
    skill = np.where(is_ai, rng.normal(-0.1, 0.25, n), rng.normal(0.0, 0.45, n))
    weight = rng.lognormal(0.0, 0.5, n)
    if index == 0:
        skill[0], weight[0] = 0.35, weight[0] * 2.0  # agent@acme: a strong, busy demo persona
    # AI agents take about a fifth of new leads between them
    weight[is_ai] *= 0.25 * weight[~is_ai].sum() / max(weight[is_ai].sum(), 1e-9)
    # human agent members joined the day before their agent profile went live
    members.created[humans] = np.minimum(members.created[humans], created[:n_h] - DAY)
    users = members.of_role("USER")
    leads = users[: min(8, users.size)]  # team leads own the agents
    owner = members.ids[leads[pick(rng, n, np.ones(leads.size))]]
    if index == 0:
        owner[[0, 1, 2, n_h, n_h + 1]] = members.ids[1]  # user@acme owns agents, two of them AI
    user_id = np.r_[members.ids[humans], np.zeros(n_ai, dtype=np.int64)]
    return Agents(
        ids.take("agent", n), is_ai, status, skill, created, active_until, user_id, owner, weight
    )


def _agent_frame(random_seed: int, w: World) -> pl.DataFrame:
    rng = stream(random_seed, w.index, _STREAM, 1)
    a, m = w.agents, w.members
    n = a.ids.size
    names = np.empty(n, dtype=object)
    full = dict(zip(m.ids.tolist(), m.names, strict=True))
    for i in range(n):
        if a.is_ai[i]:
            k = (i - int((~a.is_ai).sum())) + w.index * 3
            suffix = "" if k < AI_AGENT_NAMES.size else f" {k // AI_AGENT_NAMES.size + 1}"
            names[i] = str(AI_AGENT_NAMES[k % AI_AGENT_NAMES.size]) + suffix
        else:
            names[i] = full[int(a.user_id[i])]
    level = np.full(n, 100)
    for status, lo, hi in (("TRAINING", 20, 60), ("LEARNING", 60, 86), ("PAUSED", 50, 101)):
        mask = a.is_ai & (a.status == status)
        level[mask] = rng.integers(lo, hi, int(mask.sum()))
    active_ai = a.is_ai & (a.status == "ACTIVE")
    level[active_ai] = rng.integers(80, 101, int(active_ai.sum()))
    trainee = ~a.is_ai & (a.status == "TRAINING")
    level[trainee] = rng.integers(40, 81, int(trainee.sum()))
    always_on = a.is_ai & (rng.random(n) < 0.6)
    start_h = np.where(a.is_ai, 7, rng.choice([8, 9], n))
    start = [
        time(0, 0) if on else time(int(h), 0) for on, h in zip(always_on, start_h, strict=True)
    ]
    end = [
        time(23, 59) if on else time(22 if ai else int(h) + 9, 0)
        for on, ai, h in zip(always_on, a.is_ai, start_h, strict=True)
    ]
    return pl.DataFrame(
        {
            "workspace_id": w.id,
            "id": a.ids,
            "kind": np.where(a.is_ai, "AI", "HUMAN"),
            "name": names.astype(str),
            "status": a.status,
            "training_level": level,
            "personality": nullable(PERSONALITIES[rng.integers(0, 5, n)], a.is_ai),
            "working_hours_start": pl.Series([t.strftime("%H:%M") for t in start]),
            "working_hours_end": pl.Series([t.strftime("%H:%M") for t in end]),
            "user_id": nullable(a.user_id, a.user_id > 0),
            "owner_id": a.owner_id,
            "created_at": ts(a.created),
        }
    )


def user_frame(
    random_seed: int, worlds: list[World], password_hash: str, last_login: dict[int, int]
) -> pl.DataFrame:
    frames = []
    for w in worlds:
        rng = stream(random_seed, w.index, _STREAM, 2)
        m = w.members
        n = m.ids.size
        login = np.array([last_login.get(int(u), 0) for u in m.ids], dtype=np.int64)
        area = rng.integers(200, 999, n)
        line = rng.integers(0, 10_000, n)
        phones = [f"+1-{a}-555-{b:04d}" for a, b in zip(area, line, strict=True)]
        active = rng.random(n) > 0.01
        active[: len(w.demo)] = True
        frames.append(
            pl.DataFrame(
                {
                    "id": m.ids,
                    "email": m.emails,
                    "full_name": m.names,
                    "password_hash": password_hash,
                    "phone": nullable(phones, rng.random(n) < 0.6, pl.String),
                    "is_verified": rng.random(n) < 0.95,
                    "is_active": active,
                    "created_at": ts(m.created),
                    "last_login_at": ts(login, login > 0),
                }
            )
        )
    return pl.concat(frames)
