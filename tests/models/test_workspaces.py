"""models.workspaces: the cross-tenant read system processes use."""

from __future__ import annotations

import asyncio
from typing import Any

from models.db import Database
from models.workspaces import workspace_admins


def test_each_workspace_is_acted_for_by_its_demo_admin(database_url: str, sql: Any) -> None:
    async def go() -> dict[str, int]:
        db = Database(database_url, pool_size=1)
        try:
            async with db.session() as session:
                return {w.slug: user_id for w, user_id in await workspace_admins(session)}
        finally:
            await db.dispose()

    admins = asyncio.run(go())
    expected = {
        r["slug"]: r["id"]
        for r in sql(
            "SELECT w.slug, u.id FROM workspace w JOIN app_user u "
            "ON u.email = 'admin@' || w.slug || '.example'"
        )
    }
    assert admins == expected and set(admins) == {"acme", "globex", "initech"}
