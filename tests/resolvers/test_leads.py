"""Leads through the graph: paging, filters, sorts, mutations, role rules, isolation, no N+1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.client import Persona

LEADS = """
query Leads($filter: LeadFilter, $sort: LeadSort, $first: Int!, $after: String) {
  workspace {
    leads(filter: $filter, sort: $sort, first: $first, after: $after) {
      totalCount
      edges { cursor node { id name budget createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
LEAD_IDS = """
query Ids($first: Int!, $after: String, $sort: LeadSort) {
  workspace { leads(first: $first, after: $after, sort: $sort) {
    edges { node { id } } pageInfo { hasNextPage endCursor } } }
}
"""
NESTED = """
query Nested($first: Int!) {
  workspace { leads(first: $first) { edges { node {
    id agent { name } events(first: 5) { type } score { value }
  } } } }
}
"""
LEAD = """
query Lead($id: ID!) { lead(id: $id) {
  id name stage agent { id name } events(first: 5) { id type occurredAt toStage }
} }
"""
CREATE = """
mutation Create($input: CreateLeadInput!) {
  createLead(input: $input) { id name email budget stage source events(first: 5) { type toStage } }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: UpdateLeadInput!) {
  updateLead(id: $id, input: $input) { id stage budget events(first: 1) { type fromStage toStage } }
}
"""
RECORD = """
mutation Record($input: LeadEventInput!) {
  recordLeadEvent(input: $input) { id type toStage occurredAt }
}
"""


def acme_id(sql_session: Any) -> int:
    return int(sql_session("SELECT id FROM workspace WHERE slug = 'acme'")[0]["id"])


def fingerprint(sql: Any) -> tuple[Any, ...]:
    """Everything a lead mutation could touch, so a refused one provably changed nothing."""
    row = sql(
        "SELECT (SELECT count(*) FROM lead) AS leads, (SELECT count(*) FROM lead_event) AS events,"
        " (SELECT max(updated_at) FROM lead) AS updated,"
        " (SELECT md5(string_agg(l::text, ',' ORDER BY workspace_id, id)) FROM lead l) AS digest"
    )[0]
    return tuple(row)


def all_pages(persona: Persona, first: int, sort: dict[str, str] | None = None) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = persona.execute(LEAD_IDS, first=first, after=after, sort=sort)["workspace"]["leads"]
        ids += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


def test_pages_cover_every_lead_once_in_order(admin_client: Persona, sql_session: Any) -> None:
    expected = [
        str(r["id"])
        for r in sql_session(
            "SELECT id FROM lead WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC",
            acme_id(sql_session),
        )
    ]
    assert len(expected) > 500
    assert all_pages(admin_client, 100) == expected


def test_budget_sort_pages_match_sql(admin_client: Persona, sql_session: Any) -> None:
    expected = [
        str(r["id"])
        for r in sql_session(
            "SELECT id FROM lead WHERE workspace_id = $1 ORDER BY coalesce(budget, -1), id",
            acme_id(sql_session),
        )
    ]
    got = all_pages(admin_client, 100, sort={"field": "BUDGET", "direction": "ASC"})
    assert got == expected


def test_filters_match_sql(admin_client: Persona, sql_session: Any) -> None:
    since = datetime.now(UTC) - timedelta(days=200)
    expected = sql_session(
        "SELECT id FROM lead WHERE workspace_id = $1 AND stage = ANY($2) AND source = ANY($3)"
        " AND created_at >= $4 ORDER BY created_at DESC, id DESC",
        acme_id(sql_session),
        ["CONTACTED", "QUALIFIED"],
        ["WEBSITE", "REFERRAL"],
        since,
    )
    leads = admin_client.execute(
        LEADS,
        first=100,
        filter={
            "stages": ["CONTACTED", "QUALIFIED"],
            "sources": ["WEBSITE", "REFERRAL"],
            "createdAfter": since.isoformat(),
        },
    )["workspace"]["leads"]
    assert leads["totalCount"] == len(expected) > 0
    assert [e["node"]["id"] for e in leads["edges"]] == [str(r["id"]) for r in expected[:100]]


def test_text_search_on_name_and_email(admin_client: Persona, sql_session: Any) -> None:
    name = sql_session(
        "SELECT name FROM lead WHERE workspace_id = $1 ORDER BY id LIMIT 1", acme_id(sql_session)
    )[0]["name"]
    term = name.split()[-1].lower()
    expected = sql_session(
        "SELECT count(*) AS n FROM lead WHERE workspace_id = $1"
        " AND (name ILIKE $2 OR email ILIKE $2)",
        acme_id(sql_session),
        f"%{term}%",
    )[0]["n"]
    got = admin_client.execute(LEADS, first=1, filter={"search": term.upper()})
    assert got["workspace"]["leads"]["totalCount"] == expected > 0


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": 1000}, "first"),
        ({"first": -1}, "first"),
        ({"first": 10, "after": "not-a-cursor"}, "after"),
        ({"first": 10, "filter": {"minScore": 120}}, "filter.minScore"),
        ({"first": 10, "filter": {"stages": ["NOT_A_STAGE"]}}, "filter"),
        ({"first": 10, "sort": {"field": "SHOE_SIZE"}}, "sort"),
    ],
)
def test_bad_list_arguments(admin_client: Persona, variables: dict[str, Any], field: str) -> None:
    error = admin_client.error(LEADS, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert any(field in name for name in error["extensions"]["details"]["fields"]), error


def test_cursor_of_another_sort_is_refused(admin_client: Persona) -> None:
    page = admin_client.execute(LEADS, first=2)["workspace"]["leads"]
    error = admin_client.error(
        LEADS, first=2, after=page["pageInfo"]["endCursor"], sort={"field": "BUDGET"}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_lead_with_agent_and_newest_events(admin_client: Persona, sql_session: Any) -> None:
    row = sql_session(
        "SELECT l.id, a.name AS agent FROM lead l JOIN agent a"
        " ON a.workspace_id = l.workspace_id AND a.id = l.agent_id"
        " WHERE l.workspace_id = $1 ORDER BY l.id LIMIT 1",
        acme_id(sql_session),
    )[0]
    events = sql_session(
        "SELECT id FROM lead_event WHERE workspace_id = $1 AND lead_id = $2"
        " ORDER BY occurred_at DESC, id DESC LIMIT 5",
        acme_id(sql_session),
        row["id"],
    )
    lead = admin_client.execute(LEAD, id=str(row["id"]))["lead"]
    assert lead["agent"]["name"] == row["agent"]
    assert [e["id"] for e in lead["events"]] == [str(e["id"]) for e in events]


def test_nested_page_runs_a_constant_small_number_of_statements(
    admin_client: Persona, count_statements: Any
) -> None:
    counts = {}
    for first in (10, 100):
        count_statements.statements.clear()
        data = admin_client.execute(NESTED, first=first)
        assert len(data["workspace"]["leads"]["edges"]) == first
        counts[first] = count_statements.count
    assert counts[10] == counts[100] <= 5, count_statements.statements


def test_create_lead_records_creation_and_publishes(
    user_client: Persona, server: Any, sql_session: Any
) -> None:
    version = server.services.pubsub.versions[acme_id(sql_session)]
    lead = user_client.execute(
        CREATE,
        input={
            "name": "Dana Created",
            "email": "Dana@Example.com",
            "source": "REFERRAL",
            "budget": 450000,
            "timeline": "IMMEDIATE",
            "propertyType": "CONDO",
        },
    )["createLead"]
    assert lead["email"] == "dana@example.com" and lead["stage"] == "NEW"
    assert lead["events"] == [{"type": "CREATED", "toStage": "NEW"}]
    stored = sql_session("SELECT owner_id, budget FROM lead WHERE id = $1", int(lead["id"]))[0]
    owner = sql_session("SELECT id FROM app_user WHERE email = 'user@acme.example'")[0]["id"]
    assert stored["owner_id"] == owner and stored["budget"] == 450000
    # it has a current score row, empty until it is scored (the list's SCORE order reads it)
    current = sql_session(
        "SELECT value FROM lead_current_score WHERE lead_id = $1", int(lead["id"])
    )
    assert [r["value"] for r in current] == [None]
    assert server.services.pubsub.versions[acme_id(sql_session)] == version + 1
    # the USER sees the lead they created
    assert user_client.execute(LEAD, id=lead["id"])["lead"]["name"] == "Dana Created"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"budget": -5}, "budget"),
        ({"email": "not-an-email"}, "email"),
        ({"name": "   "}, "name"),
        ({"agentId": "999999999"}, "agentId"),
        ({"agentId": "abc"}, "agentId"),
        ({"source": "CARRIER_PIGEON"}, "source"),
    ],
)
def test_create_lead_refuses_bad_input_and_changes_nothing(
    admin_client: Persona, sql: Any, bad: dict[str, Any], field: str
) -> None:
    before = fingerprint(sql)
    error = admin_client.error(CREATE, input={"name": "Bad Input", "source": "WEBSITE", **bad})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert any(field in name for name in error["extensions"]["details"]["fields"]), error
    assert fingerprint(sql) == before


def test_agents_cannot_create_leads(agent_client: Persona, sql: Any) -> None:
    before = fingerprint(sql)
    error = agent_client.error(CREATE, input={"name": "Nope", "source": "WEBSITE"})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert fingerprint(sql) == before


def test_stage_change_through_update_and_record(admin_client: Persona, sql_session: Any) -> None:
    lead = admin_client.execute(CREATE, input={"name": "Stage Walker", "source": "WEBSITE"})
    lead_id = lead["createLead"]["id"]
    updated = admin_client.execute(UPDATE, id=lead_id, input={"stage": "CONTACTED", "budget": 9})
    assert updated["updateLead"]["stage"] == "CONTACTED"
    assert updated["updateLead"]["events"] == [
        {"type": "STAGE_CHANGE", "fromStage": "NEW", "toStage": "CONTACTED"}
    ]
    event = admin_client.execute(
        RECORD,
        input={
            "leadId": lead_id,
            "type": "STAGE_CHANGE",
            "toStage": "WON",
        },
    )["recordLeadEvent"]
    assert event["toStage"] == "WON"
    row = sql_session("SELECT stage, converted_at FROM lead WHERE id = $1", int(lead_id))[0]
    assert row["stage"] == "WON" and row["converted_at"] is not None
    opened = admin_client.execute(RECORD, input={"leadId": lead_id, "type": "EMAIL_OPENED"})
    assert opened["recordLeadEvent"]["type"] == "EMAIL_OPENED"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "STAGE_CHANGE"}, "toStage"),
        ({"type": "NOTE", "toStage": "WON"}, "toStage"),
        ({"type": "NOTE", "occurredAt": "2999-01-01T00:00:00+00:00"}, "occurredAt"),
        ({"type": "CREATED"}, "type"),
        ({"type": "NOTE", "leadId": "x"}, "leadId"),
    ],
)
def test_record_event_refuses_bad_input(
    admin_client: Persona, sql: Any, sql_session: Any, bad: dict[str, Any], field: str
) -> None:
    lead_id = str(
        sql_session(
            "SELECT id FROM lead WHERE workspace_id = $1 ORDER BY id LIMIT 1", acme_id(sql_session)
        )[0]["id"]
    )
    before = fingerprint(sql)
    error = admin_client.error(RECORD, input={"leadId": lead_id, **bad})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert any(field in name for name in error["extensions"]["details"]["fields"]), error
    assert fingerprint(sql) == before


def test_role_rules_on_lead_lists(
    user_client: Persona, agent_client: Persona, sql_session: Any
) -> None:
    ws = acme_id(sql_session)
    owned = sql_session(
        "SELECT count(*) AS n FROM lead l JOIN app_user u ON u.id = l.owner_id"
        " WHERE l.workspace_id = $1 AND u.email = 'user@acme.example'",
        ws,
    )[0]["n"]
    assigned = sql_session(
        "SELECT count(*) AS n FROM lead l JOIN agent a ON a.workspace_id = l.workspace_id"
        " AND a.id = l.agent_id JOIN app_user u ON u.id = a.user_id"
        " WHERE l.workspace_id = $1 AND u.email = 'agent@acme.example'",
        ws,
    )[0]["n"]
    assert user_client.execute(LEADS, first=1)["workspace"]["leads"]["totalCount"] == owned > 0
    assert agent_client.execute(LEADS, first=1)["workspace"]["leads"]["totalCount"] == assigned > 0


def test_other_users_and_other_tenants_leads_are_not_found(
    user_client: Persona, globex_client: Persona, sql: Any, sql_session: Any
) -> None:
    foreign = str(
        sql_session(
            "SELECT l.id FROM lead l JOIN app_user u ON u.id = l.owner_id"
            " WHERE l.workspace_id = $1 AND u.email <> 'user@acme.example' ORDER BY l.id LIMIT 1",
            acme_id(sql_session),
        )[0]["id"]
    )
    before = fingerprint(sql)
    for persona in (user_client, globex_client):
        error = persona.error(LEAD, id=foreign)
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert persona.error(UPDATE, id=foreign, input={"budget": 1})["extensions"]["code"] == (
            "NOT_FOUND"
        )
        assert (
            persona.error(RECORD, input={"leadId": foreign, "type": "NOTE"})["extensions"]["code"]
            == "NOT_FOUND"
        )
    assert fingerprint(sql) == before
    globex_ids = set(all_pages(globex_client, 100))
    acme_ids = {
        str(r["id"])
        for r in sql_session("SELECT id FROM lead WHERE workspace_id = $1", acme_id(sql_session))
    }
    assert globex_ids and not globex_ids & acme_ids


AGENTS = """
{ workspace { agents { id name kind status } } }
"""


def test_agents_follow_role_rules(
    admin_client: Persona, user_client: Persona, agent_client: Persona, sql_session: Any
) -> None:
    ws = acme_id(sql_session)
    everyone = {
        str(r["id"]) for r in sql_session("SELECT id FROM agent WHERE workspace_id = $1", ws)
    }
    own = {
        str(r["id"])
        for r in sql_session(
            "SELECT a.id FROM agent a JOIN app_user u ON u.id = a.owner_id"
            " WHERE a.workspace_id = $1 AND u.email = 'user@acme.example'",
            ws,
        )
    }
    me = {
        str(r["id"])
        for r in sql_session(
            "SELECT a.id FROM agent a JOIN app_user u ON u.id = a.user_id"
            " WHERE a.workspace_id = $1 AND u.email = 'agent@acme.example'",
            ws,
        )
    }
    assert {a["id"] for a in admin_client.execute(AGENTS)["workspace"]["agents"]} == everyone
    assert {a["id"] for a in user_client.execute(AGENTS)["workspace"]["agents"]} == own
    assert {a["id"] for a in agent_client.execute(AGENTS)["workspace"]["agents"]} == me
    assert own and me and own < everyone
