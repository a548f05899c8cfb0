"""Enums of the fixed contract (DESIGN.md), shared by every domain."""

from __future__ import annotations

from enum import Enum

import strawberry

from models.jobs import JobStatus as _JobStatus
from models.ml_models import ModelStatus as _ModelStatus
from models.workspaces import Role as _Role

Role = strawberry.enum(_Role, description="A member's role in a workspace")
JobStatus = strawberry.enum(_JobStatus)
ModelStatus = strawberry.enum(_ModelStatus)


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
