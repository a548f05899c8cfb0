"""models.billing on real Postgres: payments on subscriptions, scoped by role, bad input refused
before anything is written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from models import billing
from models.billing import PaymentStatus
from models.db import Database
from models.errors import BadUserInput
from models.scope import Scope

T = TypeVar("T")

FINGERPRINT = "SELECT md5(string_agg(p::text, ',' ORDER BY workspace_id, id)) FROM payment p"


def write(database_url: str, action: Callable[[Any], Awaitable[T]]) -> T:
    """One statement group in its own transaction, on a Database of its own."""

    async def go() -> T:
        db = Database(database_url, pool_size=1)
        try:
            async with db.transaction() as session:
                return await action(session)
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def subscriptions(sql_session: Any, scopes: dict[str, Scope]) -> dict[str, int]:
    acme, user = scopes["admin@acme.example"], scopes["user@acme.example"]
    globex = scopes["admin@globex.example"]

    def one(where: str, *args: Any) -> int:
        rows = sql_session(f"SELECT id FROM billing_subscription WHERE {where} ORDER BY id", *args)
        assert rows, where
        return int(rows[0]["id"])

    return {
        "own": one(
            "workspace_id = $1 AND user_id = $2 AND status = 'ACTIVE'",
            user.workspace_id,
            user.user_id,
        ),
        "other": one(
            "workspace_id = $1 AND user_id <> $2 AND status = 'ACTIVE'",
            acme.workspace_id,
            user.user_id,
        ),
        "cancelled": one("workspace_id = $1 AND status = 'CANCELLED'", acme.workspace_id),
        "globex": one("workspace_id = $1 AND status = 'ACTIVE'", globex.workspace_id),
    }


def test_a_payment_is_recorded_on_the_subscription(
    database_url: str, sql: Any, scopes: dict[str, Scope], subscriptions: dict[str, int]
) -> None:
    admin = scopes["admin@acme.example"]
    payment = write(
        database_url,
        lambda s: billing.record_payment(
            s, admin, subscription_id=subscriptions["other"], amount=2_500
        ),
    )
    (row,) = sql("SELECT * FROM payment WHERE id = $1", payment.id)
    assert (row["workspace_id"], row["subscription_id"]) == (
        admin.workspace_id,
        subscriptions["other"],
    )
    assert (row["amount"], row["currency"], row["status"]) == (2_500, "USD", "SUCCEEDED")


def test_a_member_pays_their_own_subscription_only(
    database_url: str, sql: Any, scopes: dict[str, Scope], subscriptions: dict[str, int]
) -> None:
    user = scopes["user@acme.example"]
    payment = write(
        database_url,
        lambda s: billing.record_payment(
            s,
            user,
            subscription_id=subscriptions["own"],
            amount=9_900,
            status=PaymentStatus.PENDING,
        ),
    )
    assert payment.status == "PENDING"
    before = sql(FINGERPRINT)
    with pytest.raises(BadUserInput) as refused:
        write(
            database_url,
            lambda s: billing.record_payment(
                s, user, subscription_id=subscriptions["other"], amount=9_900
            ),
        )
    assert "subscriptionId" in refused.value.details["fields"]
    assert sql(FINGERPRINT) == before


@pytest.mark.parametrize(
    ("subscription", "extra", "field"),
    [
        ("other", {"amount": 0}, "amount"),
        ("other", {"amount": billing.MAX_PAYMENT + 1}, "amount"),
        ("other", {"currency": "usd"}, "currency"),
        ("other", {"status": "PAID"}, "status"),
        ("cancelled", {}, "subscriptionId"),  # a stopped subscription takes no payments
        ("globex", {}, "subscriptionId"),  # another tenant's is not found
    ],
)
def test_record_payment_refuses_bad_input_and_writes_nothing(
    database_url: str,
    sql: Any,
    scopes: dict[str, Scope],
    subscriptions: dict[str, int],
    subscription: str,
    extra: dict[str, Any],
    field: str,
) -> None:
    admin = scopes["admin@acme.example"]
    values: dict[str, Any] = {"amount": 1_000} | extra
    before = sql(FINGERPRINT)
    with pytest.raises(BadUserInput) as refused:
        write(
            database_url,
            lambda s: billing.record_payment(
                s, admin, subscription_id=subscriptions[subscription], **values
            ),
        )
    assert field in refused.value.details["fields"]
    assert sql(FINGERPRINT) == before


def test_billable_subscriptions_are_the_paying_ones_in_scope(
    database_url: str, sql: Any, scopes: dict[str, Scope]
) -> None:
    async def go(scope: Scope) -> list[tuple[int, str, int]]:
        db = Database(database_url, pool_size=1)
        try:
            async with db.session() as session:
                rows = await billing.billable_subscriptions(session, scope, limit=1_000)
            return [(sub.id or 0, sub.status, plan.price) for sub, plan in rows]
        finally:
            await db.dispose()

    admin, user = scopes["admin@acme.example"], scopes["user@acme.example"]
    expected = sql(
        "SELECT s.id, s.status, p.price FROM billing_subscription s "
        "JOIN plan p ON p.id = s.plan_id "
        "WHERE s.workspace_id = $1 AND s.status IN ('ACTIVE', 'PAST_DUE') ORDER BY s.id",
        admin.workspace_id,
    )
    assert asyncio.run(go(admin)) == [tuple(r) for r in expected]
    assert [row[0] for row in asyncio.run(go(user))] == [
        r["id"]
        for r in sql(
            "SELECT id FROM billing_subscription WHERE workspace_id = $1 AND user_id = $2 "
            "AND status IN ('ACTIVE', 'PAST_DUE') ORDER BY id",
            user.workspace_id,
            user.user_id,
        )
    ]
