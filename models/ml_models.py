"""ML tables: registry versions (immutable, cbm bytes), the ML config, prediction stats."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import TZ, row_id, stamped, tenant_key


class ModelStatus(StrEnum):
    TRAINING = "TRAINING"
    CANDIDATE = "CANDIDATE"
    ACTIVE = "ACTIVE"
    RETIRED = "RETIRED"


class ModelType(StrEnum):
    SCORING = "SCORING"
    CLASSIFICATION = "CLASSIFICATION"
    REGRESSION = "REGRESSION"


CHAMPION = "champion"
CHALLENGER = "challenger"


class MlModel(SQLModel, table=True):
    __tablename__ = "ml_model"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    name: str = Field(max_length=120)
    version: int
    status: str = Field(default=ModelStatus.TRAINING, max_length=12)
    type: str = Field(default=ModelType.SCORING, max_length=20)
    description: str | None = Field(default=None, max_length=500)
    algorithm: str = Field(default="catboost", max_length=40)
    # `champion` (ACTIVE, serves every lead not routed to the challenger) or `challenger`
    alias: str | None = Field(default=None, max_length=20)
    # A/B deployment of the challenger: the share of leads (by `ab_bucket(lead_id)`) it serves
    traffic_percent: int | None = Field(default=None, sa_type=sa.SmallInteger)
    deployed_at: datetime | None = Field(default=None, sa_type=TZ)
    ab_ends_at: datetime | None = Field(default=None, sa_type=TZ)
    # a champion's rollback plan: while `monitor_until` has not passed, an alert of its
    # performance since deployment rolls it back to `rollback_to_id` (ml/deployment.py)
    rollback_to_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    monitor_until: datetime | None = Field(default=None, sa_type=TZ)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    hyperparameters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    feature_importance: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    # the training data's feature distribution (drift reference), see ml/drift.py
    reference: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    training_samples: int | None = None
    # rows and conversions per split (train, validation, test)
    training_sizes: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    # the retrain job that produced this version: a job run again after its worker died
    # finds its version already registered instead of adding a second one
    job_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    artifact: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = stamped()
    trained_at: datetime | None = Field(default=None, sa_type=TZ)

    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", "version"),)


def ab_bucket(lead_id: int) -> int:
    """0..99, fixed per lead: a lead goes to the challenger when its bucket is below the
    challenger's `traffic_percent`. A multiplicative hash (not Python's `hash`, which is the
    identity on small ints, nor salted `str` hashing) spreads consecutive ids evenly."""
    return ((lead_id * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) % 100


class MlConfig(SQLModel, table=True):
    """A workspace's ML settings (seed 003 "ML Configuration"); no row means the defaults."""

    __tablename__ = "ml_config"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    fallback_model_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    max_batch_size: int = 1000
    timeout_ms: int = 30_000
    cache_enabled: bool = True
    cache_ttl_seconds: int = 3600
    cache_max_size: int = 10_000
    auto_retrain: bool = True
    retrain_threshold: float = 0.05
    auto_promote: bool = True
    max_training_time_ms: int = 7_200_000
    validation_split: float = 0.2
    drift_detection: bool = True
    alert_accuracy_drop: float = 0.05
    alert_latency_increase_ms: float = 100.0
    alert_drift_psi: float = 0.25
    updated_at: datetime = stamped()
    updated_by: int | None = None


async def load_config(session: AsyncSession, workspace_id: int) -> MlConfig:
    """The workspace's ML config, or the defaults (not added to the session) if it has none."""
    row = await session.get(MlConfig, workspace_id)
    return row if row is not None else MlConfig(workspace_id=workspace_id)


class MlPredictionStat(SQLModel, table=True):
    """Online predictions per model and minute: counts and a latency histogram, so that
    performance reads sum a few rows instead of one row per prediction."""

    __tablename__ = "ml_prediction_stat"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    model_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    minute: datetime = Field(primary_key=True, sa_type=TZ)
    count: int = Field(default=0, sa_type=sa.BigInteger)
    errors: int = Field(default=0, sa_type=sa.BigInteger)
    timeouts: int = Field(default=0, sa_type=sa.BigInteger)
    latency_sum_ms: float = 0.0
    # counts per latency bucket; bucket bounds live with the code that writes them
    latency_buckets: list[int] = Field(default_factory=list, sa_type=ARRAY(sa.BigInteger))


class MlDriftCheck(SQLModel, table=True):
    """A serving version's drift as the server's ML check measured it (ml/watch.py): its
    highest feature PSI over the last month's leads and which feature, read by performance
    alerts and the automatic retrain instead of measuring again."""

    __tablename__ = "ml_drift_check"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    model_id: int = Field(sa_type=sa.BigInteger)
    checked_at: datetime = Field(sa_type=TZ)
    max_psi: float | None = None
    feature: str | None = Field(default=None, max_length=60)
    current_rows: int
    # test AUC - AUC on the outcomes known since training (ml.drift.ConceptDrift.decay)
    concept_decay: float | None = None

    __table_args__ = (
        sa.Index("ix_ml_drift_check_model", "workspace_id", "model_id", "checked_at"),
    )


async def latest_check(
    session: AsyncSession, workspace_id: int, model_id: int, since: datetime | None = None
) -> MlDriftCheck | None:
    """The version's newest drift measurement (at or after `since`)."""
    query = (
        select(MlDriftCheck)
        .where(
            col(MlDriftCheck.workspace_id) == workspace_id,
            col(MlDriftCheck.model_id) == model_id,
        )
        .order_by(col(MlDriftCheck.checked_at).desc())
        .limit(1)
    )
    if since is not None:
        query = query.where(col(MlDriftCheck.checked_at) >= since)
    return (await session.execute(query)).scalars().first()
