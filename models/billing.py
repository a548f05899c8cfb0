"""Plans, billing subscriptions and payments: the revenue side of the dashboards."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.db import TZ, row_id, stamped, tenant_key


class Plan(SQLModel, table=True):
    """A product plan; global, shared by every workspace."""

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    name: str = Field(max_length=80, unique=True)
    price: int = Field(description="monthly price in cents")
    features: list[str] = Field(default_factory=list, sa_type=JSONB)
    call_limit: int | None = None
    agent_limit: int | None = None
    max_minutes: int | None = None
    monthly_credits: int = 0


class SubscriptionStatus(StrEnum):
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    INACTIVE = "INACTIVE"
    CANCELLED = "CANCELLED"


class BillingSubscription(SQLModel, table=True):
    __tablename__ = "billing_subscription"

    workspace_id: int = tenant_key()
    id: int | None = row_id()
    user_id: int = Field(sa_type=sa.BigInteger)
    plan_id: int = Field(foreign_key="plan.id", sa_type=sa.BigInteger)
    status: str = Field(max_length=12)
    current_period_start: datetime = Field(sa_type=TZ)
    current_period_end: datetime = Field(sa_type=TZ)
    cancel_at_period_end: bool = False
    created_at: datetime = stamped()
    cancelled_at: datetime | None = Field(default=None, sa_type=TZ)

    __table_args__ = (
        sa.Index("ix_subscription_user", "workspace_id", "user_id"),
        sa.Index("ix_subscription_created", "workspace_id", "created_at"),
    )


class PaymentStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    PENDING = "PENDING"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class Payment(SQLModel, table=True):
    workspace_id: int = tenant_key()
    id: int | None = row_id()
    subscription_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    amount: int = Field(description="cents")
    currency: str = Field(default="USD", max_length=3)
    status: str = Field(max_length=12)
    created_at: datetime = stamped()

    __table_args__ = (sa.Index("ix_payment_created", "workspace_id", "created_at"),)
