"""Custom dashboards (widgets as in seed 000's "Create Custom Dashboard") and preferences."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from models.seed.clock import DAY, MINUTE, Clock
from models.seed.frames import Ids, stream, ts
from models.seed.people import World

_STREAM = 11


def _widget(i: int, kind: str, x: int, y: int, w: int, h: int, **config: Any) -> dict[str, Any]:
    return {
        "id": f"w{i}",
        "type": kind,
        "position": {"x": x, "y": y, "width": w, "height": h},
        "config": config,
    }


# name, description, owner persona, shared, refresh seconds, widgets
DASHBOARDS: list[tuple[str, str, str, bool, int, list[dict[str, Any]]]] = [
    (
        "Executive Overview",
        "Revenue, users and agents at a glance",
        "ADMIN",
        True,
        60,
        [
            _widget(1, "revenue_trend", 0, 0, 8, 4, period="90d", granularity="week"),
            _widget(2, "user_activity", 8, 0, 4, 4, metrics=["dau", "wau", "mau"]),
            _widget(3, "agent_leaderboard", 0, 4, 6, 4, limit=10, metric="conversion_rate"),
            _widget(4, "live_metrics", 6, 4, 6, 4, metrics=["active_calls", "queued_calls"]),
        ],
    ),
    (
        "Sales Pipeline",
        "Funnel health and where leads get stuck",
        "ADMIN",
        True,
        300,
        [
            _widget(1, "conversion_funnel", 0, 0, 6, 4, period="30d", includeStages=True),
            _widget(2, "lead_insights", 6, 0, 6, 4, filter="urgent", limit=20, sort="score"),
            _widget(
                3, "performance_metrics", 0, 4, 12, 3, metrics=["lead_quality", "response_time"]
            ),
        ],
    ),
    (
        "My Lead Dashboard",
        "Personalized dashboard for lead management",
        "USER",
        False,
        300,
        [
            _widget(1, "lead_insights", 0, 0, 6, 4, filter="high_value", limit=20, sort="score"),
            _widget(2, "conversion_funnel", 6, 0, 6, 4, period="30d", includeStages=True),
            _widget(
                3,
                "performance_metrics",
                0,
                4,
                12,
                3,
                metrics=["conversion_rate", "response_time", "lead_quality"],
            ),
        ],
    ),
    (
        "My Calls",
        "Queue, callbacks and my numbers",
        "AGENT",
        False,
        30,
        [
            _widget(1, "call_queue", 0, 0, 6, 4, limit=10),
            _widget(2, "callbacks", 6, 0, 6, 4, status="scheduled"),
            _widget(3, "agent_performance", 0, 4, 12, 3, period="7d"),
        ],
    ),
    (
        "ML Watch",
        "Model health and drift",
        "USER",
        False,
        180,
        [
            _widget(1, "ml_insights", 0, 7, 12, 3, category="leads", limit=10),
            _widget(2, "scoring_trends", 0, 0, 12, 4, period="30d", groupBy="day"),
        ],
    ),
]


def dashboards(clock: Clock, ids: Ids, random_seed: int, worlds: list[World]) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for w in worlds:
        rng = stream(random_seed, w.index, _STREAM)
        m = w.members
        for name, description, persona, shared, refresh, widgets in DASHBOARDS:
            owner = int(m.ids[m.of_role(persona)[0]])
            created = clock.now - int(rng.integers(20, 300)) * DAY
            rows.append(
                {
                    "workspace_id": w.id,
                    "id": int(ids.take("dashboard", 1)[0]),
                    "owner_id": owner,
                    "name": name,
                    "description": description,
                    "widgets": json.dumps(widgets),
                    "refresh_interval_seconds": refresh,
                    "is_shared": shared,
                    "view_count": int(rng.integers(5, 400)),
                    "last_viewed_at": clock.now - int(rng.integers(1, 72 * 60)) * MINUTE,
                    "created_at": created,
                    "updated_at": created + int(rng.integers(0, 15)) * DAY,
                }
            )
    frame = pl.DataFrame(rows)
    return frame.with_columns(
        pl.col("last_viewed_at", "created_at", "updated_at").cast(pl.Datetime("us", "UTC"))
    )


def preferences(clock: Clock, random_seed: int, worlds: list[World]) -> pl.DataFrame:
    frames = []
    for w in worlds:
        rng = stream(random_seed, w.index, _STREAM, 1)
        m = w.members
        chosen = np.flatnonzero(
            (np.arange(m.ids.size) < len(w.demo)) | (rng.random(m.ids.size) < 0.2)
        )
        k = chosen.size
        settings = [
            json.dumps(
                {
                    "notifications": {"email": bool(e), "push": bool(p)},
                    "compactMode": bool(c),
                    "defaultView": str(v),
                }
            )
            for e, p, c, v in zip(
                rng.random(k) < 0.8,
                rng.random(k) < 0.5,
                rng.random(k) < 0.3,
                np.array(["leads", "agents", "executive", "calls"])[rng.integers(0, 4, k)],
                strict=True,
            )
        ]
        frames.append(
            pl.DataFrame(
                {
                    "workspace_id": w.id,
                    "user_id": m.ids[chosen],
                    "theme": np.where(rng.random(k) < 0.35, "dark", "light"),
                    "default_period": np.array(["H24", "D7", "D30", "D90"])[rng.integers(0, 4, k)],
                    "timezone": np.array(
                        ["UTC", "America/New_York", "America/Chicago", "America/Los_Angeles"]
                    )[rng.integers(0, 4, k)],
                    "settings": settings,
                    "updated_at": ts(clock.now - rng.integers(1, 200, k) * DAY),
                }
            )
        )
    return pl.concat(frames)
