"""Plans, billing subscriptions and payments: the revenue side of the dashboards."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from models.db import TZ, row_id, stamped, tenant_key, utcnow
from models.errors import BadUserInput, Validator
from models.scope import Scope


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


def _visible_subscriptions(scope: Scope) -> Any:
    """Admins see the workspace's subscriptions; everyone else only their own."""
    clause = scope.where(BillingSubscription)
    if not scope.is_admin:
        clause = sa.and_(clause, col(BillingSubscription.user_id) == scope.user_id)
    return clause


async def billable_subscriptions(
    session: AsyncSession, scope: Scope, *, limit: int = 200
) -> list[tuple[BillingSubscription, Plan]]:
    """Subscriptions that are paying (ACTIVE or PAST_DUE), with their plan."""
    query = (
        select(BillingSubscription, Plan)
        .join(Plan, col(Plan.id) == BillingSubscription.plan_id)
        .where(
            _visible_subscriptions(scope),
            col(BillingSubscription.status).in_(
                [SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]
            ),
        )
        .order_by(col(BillingSubscription.id))
        .limit(limit)
    )
    return [(sub, plan) for sub, plan in (await session.execute(query)).all()]


# ---- writes ----------------------------------------------------------------------------------

MAX_PAYMENT = 100_000_000  # cents: one million in any currency is a typo, not a payment


async def record_payment(
    session: AsyncSession,
    scope: Scope,
    *,
    subscription_id: int,
    amount: int,
    status: PaymentStatus = PaymentStatus.SUCCEEDED,
    currency: str = "USD",
) -> Payment:
    """A payment (renewal or top-up, in cents) on a subscription that has not stopped."""
    v = Validator()
    v.check(0 < amount <= MAX_PAYMENT, "amount", f"must be 1..{MAX_PAYMENT} cents")
    v.check(re.fullmatch(r"[A-Z]{3}", currency) is not None, "currency", "an ISO 4217 code")
    v.check(status in list(PaymentStatus), "status", "not a payment status")
    v.raise_if_any("Invalid payment")
    result = await session.execute(
        select(BillingSubscription).where(
            _visible_subscriptions(scope), BillingSubscription.id == subscription_id
        )
    )
    subscription = result.scalars().first()
    if subscription is None:
        raise BadUserInput(
            "Unknown subscription",
            fields={"subscriptionId": "no such subscription in this workspace"},
        )
    if subscription.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.INACTIVE):
        raise BadUserInput(
            "The subscription has stopped",
            fields={"subscriptionId": f"is {subscription.status}"},
        )
    payment = Payment(
        workspace_id=scope.workspace_id,
        subscription_id=subscription_id,
        amount=amount,
        currency=currency,
        status=status,
        created_at=utcnow(),
    )
    session.add(payment)
    await session.flush()
    return payment
