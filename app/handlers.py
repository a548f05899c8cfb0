"""Job kinds and their handlers; each feature registers its own (exports, scoring, training)."""

from __future__ import annotations

from app.jobs import Handler
from app.ml_jobs import retrain
from ml.registry import RETRAIN_KIND

HANDLERS: dict[str, Handler] = {RETRAIN_KIND: retrain}
