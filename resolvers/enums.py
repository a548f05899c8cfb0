"""Enums of the fixed contract (DESIGN.md), shared by every domain."""

from __future__ import annotations

from enum import Enum

import strawberry

from models.jobs import JobStatus
from models.ml_models import ModelStatus, ModelType
from models.workspaces import Role

# strawberry.enum marks the model enums in place, so annotations use the model classes themselves
strawberry.enum(Role, description="A member's role in a workspace")
strawberry.enum(JobStatus)
strawberry.enum(ModelStatus)
strawberry.enum(ModelType, description="What a model predicts (seed 003: scoring, ...)")

__all__ = [
    "Granularity",
    "JobStatus",
    "ModelStatus",
    "ModelType",
    "Period",
    "Role",
    "SortDirection",
]


@strawberry.enum(description="Time window ending now (the seeds' 1h/24h/7d/30d/90d/1y)")
class Period(Enum):
    H1 = "H1"
    H24 = "H24"
    D7 = "D7"
    D30 = "D30"
    D90 = "D90"
    Y1 = "Y1"


@strawberry.enum
class Granularity(Enum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"
