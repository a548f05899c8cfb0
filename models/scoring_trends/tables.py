"""The scoring-trend rollups' tables: the workspace's (migration 0012) and each owner's and
agent's (0016), all kept by one statement trigger on `lead_score`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.db import TZ


class _Cell(SQLModel):
    """A bucket's numbers: its leads (each by its latest scoring there), their score sum and
    bands, and its rescorings with the sum of their changes."""

    leads: int
    score_sum: int = Field(sa_type=sa.BigInteger)
    excellent: int
    good: int
    moderate: int
    low: int
    rescorings: int
    change_sum: int = Field(sa_type=sa.BigInteger)


class _Rise(SQLModel):
    """One rise: the lead's new score, its change and the scoring before it."""

    change: int = Field(sa_type=sa.SmallInteger)
    value: int = Field(sa_type=sa.SmallInteger)
    before: int = Field(sa_type=sa.SmallInteger)
    scored_at: datetime = Field(sa_type=TZ)
    before_at: datetime = Field(sa_type=TZ)


class ScoreTrend(_Cell, table=True):
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


class ScoreTrendTop(_Rise, table=True):
    """Each UTC day's TOP_IMPROVERS biggest rises (of at least MIN_IMPROVEMENT points), each
    lead once with its biggest; a week's or month's are the best of its days'. Kept with
    `score_trend` (migration 0012)."""

    __tablename__ = "score_trend_top"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    day: datetime = Field(primary_key=True, sa_type=TZ)
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)


class ScoreTrendHolder(_Cell, table=True):
    """`score_trend` without the segment, per holder of the leads: `holder` 'owner' (a USER,
    `lead.owner_id`) or 'agent' (`lead.agent_id`). A lead's whole history counts for its
    current owner and agent: a reassignment moves it (a trigger on `lead`, migration 0016)."""

    __tablename__ = "score_trend_holder"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    holder: str = Field(primary_key=True, max_length=8)
    holder_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    unit: str = Field(primary_key=True, max_length=8)
    bucket: datetime = Field(primary_key=True, sa_type=TZ)


class ScoreTrendHolderSegment(SQLModel, table=True):
    """Per holder, UTC day and segment (`dimension` SOURCE or PROPERTY_TYPE, and its value):
    the day's rescorings and the sum of their changes (a period's segments sum its days)."""

    __tablename__ = "score_trend_holder_segment"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    holder: str = Field(primary_key=True, max_length=8)
    holder_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: datetime = Field(primary_key=True, sa_type=TZ)
    dimension: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=24)
    rescorings: int
    change_sum: int = Field(sa_type=sa.BigInteger)


class ScoreTrendHolderTop(_Rise, table=True):
    """`score_trend_top` per holder: each UTC day's TOP_IMPROVERS biggest rises among the
    holder's leads."""

    __tablename__ = "score_trend_holder_top"

    workspace_id: int = Field(primary_key=True, foreign_key="workspace.id", ondelete="CASCADE")
    holder: str = Field(primary_key=True, max_length=8)
    holder_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    day: datetime = Field(primary_key=True, sa_type=TZ)
    lead_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
