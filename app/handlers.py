"""Job kinds and their handlers; each feature registers its own (exports, scoring, training)."""

from __future__ import annotations

from app.jobs import Handler
from app.ml_jobs import retrain, score
from ml.registry import RETRAIN_KIND, SCORE_KIND

HANDLERS: dict[str, Handler] = {RETRAIN_KIND: retrain, SCORE_KIND: score}
