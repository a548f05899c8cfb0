"""Deterministic synthetic data for every dashboard: `seed(db, size)` and the demo logins.

Sizes: tiny (tests), small (the demo), medium, large (~1M leads, ~10M lead events).
"""

from __future__ import annotations

from models.seed.people import DEMO_LOGINS, DEMO_PASSWORD
from models.seed.pipeline import is_empty, seed
from models.seed.sizes import SIZES, SeedSize, WorkspaceSize

__all__ = ["DEMO_LOGINS", "DEMO_PASSWORD", "SIZES", "SeedSize", "WorkspaceSize", "is_empty", "seed"]
