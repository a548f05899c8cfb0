"""The model registry's table: immutable trained versions (cbm bytes) with their metrics."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.db import TZ, row_id, stamped, tenant_key


class ModelStatus(StrEnum):
    TRAINING = "TRAINING"
    CANDIDATE = "CANDIDATE"
    ACTIVE = "ACTIVE"
    RETIRED = "RETIRED"


class MlModel(SQLModel, table=True):
    __tablename__ = "ml_model"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    name: str = Field(max_length=120)
    version: int
    status: str = Field(default=ModelStatus.TRAINING, max_length=12)
    algorithm: str = Field(default="catboost", max_length=40)
    alias: str | None = Field(default=None, max_length=20)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    hyperparameters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    feature_importance: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
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
