"""The scoring-trend rollups' tables (kept by the statement trigger of migration 0012)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.db import TZ


class ScoreTrend(SQLModel, table=True):
    """Per workspace, bucket unit (day / week / month), UTC bucket and lead segment: the leads
    scored in the bucket (each by its latest scoring there), their score sum and bands, and
    the bucket's rescorings with the sum of their changes. Kept by a statement trigger on
    `lead_score` (migration 0012); whole-workspace reads sum it."""

    __tablename__ = "score_trend"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    unit: str = Field(primary_key=True, max_length=8)
    bucket: datetime = Field(primary_key=True, sa_type=TZ)
    source: str = Field(primary_key=True, max_length=24)
    property_type: str = Field(primary_key=True, max_length=24)
    leads: int
    score_sum: int = Field(sa_type=sa.BigInteger)
    excellent: int
    good: int
    moderate: int
    low: int
    rescorings: int
    change_sum: int = Field(sa_type=sa.BigInteger)


class ScoreTrendTop(SQLModel, table=True):
    """Each UTC day's TOP_IMPROVERS biggest rises (of at least MIN_IMPROVEMENT points), each
    lead once with its biggest; a week's or month's are the best of its days'. Kept with
    `score_trend` (migration 0012)."""

    __tablename__ = "score_trend_top"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    day: datetime = Field(primary_key=True, sa_type=TZ)
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    change: int = Field(sa_type=sa.SmallInteger)
    value: int = Field(sa_type=sa.SmallInteger)
    before: int = Field(sa_type=sa.SmallInteger)
    scored_at: datetime = Field(sa_type=TZ)
    before_at: datetime = Field(sa_type=TZ)
