"""A few audit log entries per workspace: invitations, agent changes, settings."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from models.seed.clock import DAY, HOUR, Clock
from models.seed.frames import Ids, ts
from models.seed.people import World


def audit_log(clock: Clock, ids: Ids, worlds: list[World]) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for w in worlds:
        m, a = w.members, w.agents
        admin = int(m.ids[0])
        newest = int(np.argmax(m.created))
        paused = np.flatnonzero(a.status == "PAUSED")
        entries: list[tuple[str, str, int, dict[str, Any], int]] = [
            (
                "member.invited",
                "user",
                int(m.ids[newest]),
                {"role": str(m.roles[newest])},
                int(m.created[newest]) - HOUR,
            ),
            ("agent.created", "agent", int(a.ids[-1]), {"kind": "AI"}, int(a.created[-1])),
            (
                "workspace.settings_updated",
                "workspace",
                w.id,
                {"timezone": "UTC"},
                clock.now - 40 * DAY,
            ),
        ]
        if paused.size:
            p = int(paused[0])
            entries.append(
                (
                    "agent.status_changed",
                    "agent",
                    int(a.ids[p]),
                    {"from": "ACTIVE", "to": "PAUSED"},
                    int(a.active_until[p]),
                )
            )
        for action, target_type, target, details, at in entries:
            rows.append(
                {
                    "workspace_id": w.id,
                    "id": int(ids.take("audit_log", 1)[0]),
                    "actor_id": admin,
                    "action": action,
                    "target_type": target_type,
                    "target_id": str(target),
                    "details": json.dumps(details),
                    "created_at": min(at, clock.now),
                }
            )
    frame = pl.DataFrame(rows)
    return frame.with_columns(created_at=ts(frame["created_at"].to_numpy()))
