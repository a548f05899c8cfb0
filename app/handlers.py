"""Job kinds and their handlers; each feature registers its own (exports, scoring, training)."""

from __future__ import annotations

from app.jobs import Handler

HANDLERS: dict[str, Handler] = {}
