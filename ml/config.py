"""The workspace's ML config (seed 003 "ML Configuration"): read, and validated partial update.

Settings are a registry: each has the path clients use (`scoring.timeoutMs`), its column in
`ml_config` and its allowed range, so validation names the exact path that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ml.registry import MAX_SCORE_IDS, champion, get_model, require_admin
from models.audit import update_workspace_settings
from models.errors import ModelNotFound, Validator
from models.ml_models import MlConfig, MlModel, load_config
from models.scope import Scope

FALLBACK = "fallbackModel"


@dataclass(frozen=True, slots=True)
class Setting:
    path: str
    column: str
    kind: type  # int, float or bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low bound itself is not allowed

    def problem(self, value: Any) -> str | None:
        if value is None:
            return "must not be null"
        if self.kind is bool:
            return None if isinstance(value, bool) else "a boolean"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "a number"
        if self.kind is int and not float(value).is_integer():
            return "a whole number"
        assert self.low is not None and self.high is not None
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            opening = "above" if self.low_open else "at least"
            return f"{opening} {self.low:g} and at most {self.high:g}"
        return None


SETTINGS: dict[str, Setting] = {
    s.path: s
    for s in (
        Setting("scoring.maxBatchSize", "max_batch_size", int, 1, MAX_SCORE_IDS),
        Setting("scoring.timeoutMs", "timeout_ms", int, 100, 300_000),
        Setting("scoring.cache.enabled", "cache_enabled", bool),
        Setting("scoring.cache.ttlSeconds", "cache_ttl_seconds", int, 0, 7 * 86_400),
        Setting("scoring.cache.maxSize", "cache_max_size", int, 0, 10_000_000),
        Setting("training.autoRetrain", "auto_retrain", bool),
        Setting("training.retrainThreshold", "retrain_threshold", float, 0, 1, low_open=True),
        Setting("training.autoPromote", "auto_promote", bool),
        Setting("training.maxTrainingTimeMs", "max_training_time_ms", int, 1_000, 86_400_000),
        # the same bounds as a retrain's validationSplit (ml/train.py TrainParams)
        Setting("training.validationSplit", "validation_split", float, 0.05, 0.4),
        Setting("monitoring.driftDetection", "drift_detection", bool),
        Setting(
            "monitoring.alertThresholds.accuracyDrop",
            "alert_accuracy_drop",
            float,
            0,
            1,
            low_open=True,
        ),
        Setting(
            "monitoring.alertThresholds.latencyIncreaseMs",
            "alert_latency_increase_ms",
            float,
            0,
            60_000,
            low_open=True,
        ),
        Setting(
            "monitoring.alertThresholds.driftPsi", "alert_drift_psi", float, 0, 10, low_open=True
        ),
    )
}


@dataclass(slots=True)
class MlSettings:
    config: MlConfig
    active_model: MlModel | None  # the champion
    fallback_model: MlModel | None  # None also when the configured one was deleted since


async def ml_settings(session: AsyncSession, scope: Scope) -> MlSettings:
    """The config (defaults when the workspace has no row) with its models; any member."""
    config = await load_config(session, scope.workspace_id)
    fallback = None
    if config.fallback_model_id is not None:
        try:
            fallback = await get_model(session, scope, config.fallback_model_id)
        except ModelNotFound:
            fallback = None
    return MlSettings(config, await champion(session, scope.workspace_id), fallback)


async def update_ml_settings(
    session: AsyncSession, scope: Scope, changes: Mapping[str, Any]
) -> MlSettings:
    """Apply `changes` ({setting path: value}, and `fallbackModel`: a model id or None to
    clear it); all validated first, then upserted in the caller's transaction; audited."""
    require_admin(scope)
    v = Validator()
    v.check(bool(changes), "input", "no setting given")
    for path, value in changes.items():
        setting = SETTINGS.get(path)
        if path == FALLBACK:
            continue
        if setting is None:
            v.check(False, path, "unknown setting")
            continue
        problem = setting.problem(value)
        v.check(problem is None, path, problem or "")
    v.raise_if_any("Invalid ML config")
    if changes.get(FALLBACK) is not None:
        await get_model(session, scope, int(changes[FALLBACK]))  # MODEL_NOT_FOUND
    # upsert: create the row with the defaults if missing, then lock it
    columns: dict[str, tuple[str, Any]] = {}
    for path, value in changes.items():
        if path == FALLBACK:
            columns[path] = ("fallback_model_id", None if value is None else int(value))
        else:
            columns[path] = (SETTINGS[path].column, SETTINGS[path].kind(value))
    await update_workspace_settings(session, MlConfig, scope, columns, "ml_config.updated")
    return await ml_settings(session, scope)
