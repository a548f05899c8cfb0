"""models.interactions writes on real Postgres: calls start and end, AI runs are recorded, and
bad input is refused before anything is written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from models import interactions
from models.db import Database
from models.errors import BadUserInput, NotFound
from models.interactions import Direction, Interaction, Outcome
from models.scope import Scope
from tests.conftest import on_database

T = TypeVar("T")

FINGERPRINT = """
SELECT (SELECT md5(string_agg(i::text, ',' ORDER BY workspace_id, id)) FROM interaction i),
       (SELECT md5(string_agg(e::text, ',' ORDER BY workspace_id, id)) FROM lead_event e),
       (SELECT md5(string_agg(l::text, ',' ORDER BY workspace_id, id)) FROM lead l)
"""


def write(database_url: str, action: Callable[[Any], Awaitable[T]]) -> T:
    """One write in its own transaction, as a mutation does it."""

    async def scenario(db: Database) -> T:
        async with db.transaction() as session:
            return await action(session)

    return on_database(database_url, scenario)


@pytest.fixture(scope="module")
def acme(scopes: dict[str, Scope]) -> Scope:
    return scopes["admin@acme.example"]


@pytest.fixture(scope="module")
def world(sql_session: Any, acme: Scope, scopes: dict[str, Scope]) -> dict[str, Any]:
    """Rows of the seeded demo data each test needs, found by what they are."""

    def one(query: str, *args: Any) -> Any:
        rows = sql_session(query + " ORDER BY 1 LIMIT 1", *args)
        assert rows, query
        return rows[0][0]

    ws, globex = acme.workspace_id, scopes["admin@globex.example"].workspace_id
    # how many agents the seed pauses depends on the day it runs: make sure there is one
    sql_session(
        "INSERT INTO agent (workspace_id, kind, name, status, training_level, created_at)"
        " SELECT $1, 'HUMAN', 'Off Duty', 'PAUSED', 80, now() WHERE NOT EXISTS"
        " (SELECT 1 FROM agent WHERE workspace_id = $1 AND status IN ('PAUSED', 'INACTIVE'))",
        ws,
    )
    lead = one("SELECT id FROM lead WHERE workspace_id = $1 AND NOT do_not_call", ws)
    return {
        "lead": lead,
        "owner": one("SELECT owner_id FROM lead WHERE id = $1", lead),
        "do_not_call": one("SELECT id FROM lead WHERE workspace_id = $1 AND do_not_call", ws),
        "human": one(
            "SELECT id FROM agent WHERE workspace_id = $1 AND kind = 'HUMAN' AND status = 'ACTIVE'",
            ws,
        ),
        "ai": one(
            "SELECT id FROM agent WHERE workspace_id = $1 AND kind = 'AI' AND status = 'ACTIVE'", ws
        ),
        "off_duty": one(
            "SELECT id FROM agent WHERE workspace_id = $1 AND status IN ('PAUSED', 'INACTIVE')", ws
        ),
        "ended_call": one(
            "SELECT id FROM interaction WHERE workspace_id = $1 AND channel = 'CALL' "
            "AND status = 'COMPLETED'",
            ws,
        ),
        "globex_lead": one("SELECT id FROM lead WHERE workspace_id = $1", globex),
        "globex_agent": one("SELECT id FROM agent WHERE workspace_id = $1", globex),
        "globex_call": one(
            "SELECT id FROM interaction WHERE workspace_id = $1 AND channel = 'CALL'", globex
        ),
    }


def test_a_call_is_active_until_it_ends_with_its_duration_and_credits(
    database_url: str, sql: Any, acme: Scope, world: dict[str, Any]
) -> None:
    # given an AI agent calling a lead
    call = write(
        database_url,
        lambda s: interactions.start_call(
            s, acme, lead_id=world["lead"], agent_id=world["ai"], topic="follow_up"
        ),
    )
    (row,) = sql("SELECT * FROM interaction WHERE id = $1", call.id)
    assert (row["status"], row["channel"], row["direction"]) == ("ACTIVE", "CALL", "OUTBOUND")
    assert row["ended_at"] is None and row["workspace_id"] == acme.workspace_id
    assert row["user_id"] == world["owner"]  # an AI agent calls on behalf of the lead's owner
    (event,) = sql(
        "SELECT type, occurred_at FROM lead_event WHERE lead_id = $1 "
        "ORDER BY occurred_at DESC, id DESC LIMIT 1",
        world["lead"],
    )
    assert event["type"] == "CALL"

    # when it ends a little later
    asyncio.run(asyncio.sleep(1.1))
    assert call.id is not None
    ended = write(
        database_url,
        lambda s: interactions.end_call(
            s, acme, call.id, outcome=Outcome.INTERESTED, satisfaction=4
        ),
    )

    # then it is COMPLETED with what it took and what it cost
    (row,) = sql("SELECT * FROM interaction WHERE id = $1", ended.id)
    assert (row["status"], row["outcome"], row["success"]) == ("COMPLETED", "INTERESTED", True)
    assert row["duration_seconds"] >= 1 and row["ended_at"] > row["started_at"]
    assert row["credits"] == interactions.CALL_CREDITS_PER_MINUTE  # one started minute
    assert row["satisfaction"] == 4


def test_a_human_agents_failed_call_costs_nothing(
    database_url: str, sql: Any, acme: Scope, world: dict[str, Any]
) -> None:
    # an inbound call may come from a lead that asked not to be called
    call = write(
        database_url,
        lambda s: interactions.start_call(
            s,
            acme,
            lead_id=world["do_not_call"],
            agent_id=world["human"],
            direction=Direction.INBOUND,
        ),
    )
    assert call.id is not None
    write(
        database_url,
        lambda s: interactions.end_call(s, acme, call.id, outcome=None, error="Line dropped"),
    )
    (row,) = sql("SELECT * FROM interaction WHERE id = $1", call.id)
    assert (row["status"], row["outcome"], row["success"]) == ("FAILED", None, False)
    assert row["credits"] == 0 and row["error"] == "Line dropped"
    (agent,) = sql("SELECT user_id FROM agent WHERE id = $1", world["human"])
    assert row["user_id"] == agent["user_id"]  # a human agent is a member


@pytest.mark.parametrize(
    ("lead", "agent", "extra", "field"),
    [
        ("globex_lead", "human", {}, "leadId"),  # another tenant's lead is not found
        ("lead", "globex_agent", {}, "agentId"),  # nor its agent
        ("lead", "off_duty", {}, "agentId"),
        ("do_not_call", "human", {}, "leadId"),  # outbound to a lead that asked not to be
        ("lead", "human", {"topic": ""}, "topic"),
        ("lead", "human", {"topic": "x" * 81}, "topic"),
    ],
)
def test_start_call_refuses_bad_input_and_writes_nothing(
    database_url: str,
    sql: Any,
    acme: Scope,
    world: dict[str, Any],
    lead: str,
    agent: str,
    extra: dict[str, Any],
    field: str,
) -> None:
    before = sql(FINGERPRINT)
    with pytest.raises(BadUserInput) as refused:
        write(
            database_url,
            lambda s: interactions.start_call(
                s, acme, lead_id=world[lead], agent_id=world[agent], **extra
            ),
        )
    assert field in refused.value.details["fields"]
    assert sql(FINGERPRINT) == before


@pytest.mark.parametrize(
    ("call", "extra", "error", "field"),
    [
        ("ended_call", {"outcome": None}, BadUserInput, "outcome"),
        ("ended_call", {"outcome": Outcome.RESOLVED, "error": "x"}, BadUserInput, "error"),
        (
            "ended_call",
            {"outcome": Outcome.RESOLVED, "satisfaction": 6},
            BadUserInput,
            "satisfaction",
        ),
        ("ended_call", {"outcome": Outcome.RESOLVED}, BadUserInput, "id"),  # already ended
        ("globex_call", {"outcome": Outcome.RESOLVED}, NotFound, None),  # another tenant's
    ],
)
def test_end_call_refuses_bad_input_and_writes_nothing(
    database_url: str,
    sql: Any,
    acme: Scope,
    world: dict[str, Any],
    call: str,
    extra: dict[str, Any],
    error: type[Exception],
    field: str | None,
) -> None:
    before = sql(FINGERPRINT)
    with pytest.raises(error) as refused:
        write(database_url, lambda s: interactions.end_call(s, acme, world[call], **extra))
    if field is not None:
        assert field in refused.value.details["fields"]  # type: ignore[attr-defined]
    assert sql(FINGERPRINT) == before


def test_an_agent_ends_only_their_own_calls(
    database_url: str, sql: Any, scopes: dict[str, Scope], acme: Scope, world: dict[str, Any]
) -> None:
    # given a call of an AI agent, which the AGENT persona is not
    agent = scopes["agent@acme.example"]
    call: Interaction = write(
        database_url,
        lambda s: interactions.start_call(s, acme, lead_id=world["lead"], agent_id=world["ai"]),
    )
    assert call.id is not None
    with pytest.raises(NotFound):
        write(
            database_url,
            lambda s: interactions.end_call(s, agent, call.id, outcome=Outcome.NO_ANSWER),
        )
    (row,) = sql("SELECT status FROM interaction WHERE id = $1", call.id)
    assert row["status"] == "ACTIVE"
    write(
        database_url, lambda s: interactions.end_call(s, acme, call.id, outcome=Outcome.NO_ANSWER)
    )
    (row,) = sql("SELECT status, success FROM interaction WHERE id = $1", call.id)
    assert (row["status"], row["success"]) == ("COMPLETED", False)


def test_an_ai_execution_is_recorded_finished(
    database_url: str, sql: Any, acme: Scope, world: dict[str, Any]
) -> None:
    run = write(
        database_url,
        lambda s: interactions.record_ai_execution(
            s, acme, agent_id=world["ai"], topic="call_summary", duration_seconds=42, credits=7
        ),
    )
    (row,) = sql(
        "SELECT *, extract(epoch FROM ended_at - started_at) AS took FROM interaction "
        "WHERE id = $1",
        run.id,
    )
    assert (row["channel"], row["status"], row["success"]) == ("AI_EXECUTION", "COMPLETED", True)
    assert (row["credits"], row["duration_seconds"], float(row["took"])) == (7, 42, 42.0)
    assert row["user_id"] == acme.user_id


@pytest.mark.parametrize(
    ("agent", "extra", "field"),
    [
        ("human", {}, "agentId"),
        ("globex_agent", {}, "agentId"),
        ("ai", {"credits": -1}, "credits"),
        ("ai", {"duration_seconds": -5}, "durationSeconds"),
        ("ai", {"topic": ""}, "topic"),
        ("ai", {"error": "x" * 501}, "error"),
        ("ai", {"lead_id": "globex_lead"}, "leadId"),
    ],
)
def test_record_ai_execution_refuses_bad_input_and_writes_nothing(
    database_url: str,
    sql: Any,
    acme: Scope,
    world: dict[str, Any],
    agent: str,
    extra: dict[str, Any],
    field: str,
) -> None:
    values: dict[str, Any] = {"topic": "market_analysis", "duration_seconds": 10, "credits": 3}
    values |= {k: world.get(v, v) if k == "lead_id" else v for k, v in extra.items()}
    before = sql(FINGERPRINT)
    with pytest.raises(BadUserInput) as refused:
        write(
            database_url,
            lambda s: interactions.record_ai_execution(s, acme, agent_id=world[agent], **values),
        )
    assert field in refused.value.details["fields"]
    assert sql(FINGERPRINT) == before
