"""Imports every table module so `SQLModel.metadata` is complete (migrations, tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from models import (  # noqa: F401
    agents,
    audit,
    billing,
    configs,
    dashboards,
    interactions,
    jobs,
    leads,
    ml_models,
    workflows,
    workspaces,
)

metadata = SQLModel.metadata
