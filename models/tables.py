"""Imports every table module so `SQLModel.metadata` is complete (migrations, tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from models import (  # noqa: F401
    agent_performance,
    agents,
    audit,
    billing,
    configs,
    dashboards,
    funnel,
    interactions,
    jobs,
    leads,
    ml_models,
    sales_performance,
    scoring_trends,
    workflows,
    workspaces,
)

metadata = SQLModel.metadata
