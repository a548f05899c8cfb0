"""Subscriptions over WebSocket: live metrics, job progress, auth, protocol misuse, isolation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from app.auth import issue_token
from tests.client import Persona
from tests.conftest import ServerThread, settings_for

LIVE = """
subscription Live($ws: ID) {
  liveMetrics(workspaceId: $ws) {
    totalLeads newLeadsToday activeCalls callsToday conversionRate revenueToday
    creditsConsumedToday generatedAt
  }
}
"""
JOB = """
subscription Job($id: ID!) { jobProgress(id: $id) { id status progress } }
"""
CREATE = """
mutation { createLead(input: {name: "Live One", source: WEBSITE}) { id } }
"""
ENQUEUE = """
mutation Cancel($id: ID!) { cancelJob(id: $id) { status } }
"""
PROTOCOLS = {
    "graphql-transport-ws": WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,
    "graphql-ws": WebsocketsTransport.APOLLO_SUBPROTOCOL,
}


def ws_url(server: ServerThread) -> str:
    return server.url.replace("http://", "ws://")


@asynccontextmanager
async def subscribed(
    server: ServerThread,
    persona: Persona,
    protocol: str = "graphql-transport-ws",
    *,
    deflate: bool = True,
) -> AsyncIterator[Any]:
    transport = WebsocketsTransport(
        url=ws_url(server),
        init_payload={"Authorization": f"Bearer {persona.token}"},
        subprotocols=[PROTOCOLS[protocol]],
        close_timeout=2,
        # offering permessage-deflate is the client library's default (browsers' too)
        connect_args={} if deflate else {"compression": None},
    )
    async with Client(transport=transport) as session:
        yield session


@dataclass
class TenantRun:
    """What two tenants' subscribers of one field saw around a write in the first tenant."""

    first: dict[str, Any]  # the writer's tenant: snapshot before the write
    second: dict[str, Any]  # ... and the one the write caused
    theirs: dict[str, Any]  # the other tenant's first snapshot
    late: list[Any]  # anything the other tenant received after the write (must be nothing)


def write_in_one_tenant(
    server: ServerThread,
    writer: Persona,
    other: Persona,
    document: str,
    write: str,
    **variables: Any,
) -> TenantRun:
    """Given `writer` and `other` (members of two workspaces) subscribed to `document`, when
    `writer` runs the mutation `write`: the writer's subscription gets a new snapshot, the
    other's nothing within 1.5 s."""
    field = document.split("{", 1)[1].split("(", 1)[0].strip()

    async def scenario() -> TenantRun:
        async with subscribed(server, writer) as mine, subscribed(server, other) as theirs:
            request = GraphQLRequest(document, variable_values=variables or None)
            own, foreign = mine.subscribe(request), theirs.subscribe(request)
            first = (await anext(own))[field]
            their_first = (await anext(foreign))[field]
            await asyncio.to_thread(writer.execute, write)
            second = (await asyncio.wait_for(anext(own), 10))[field]
            late: list[Any] = []
            with contextlib.suppress(TimeoutError):
                late.append(await asyncio.wait_for(anext(foreign), 1.5))
            await own.aclose()
            await foreign.aclose()
            return TenantRun(first, second, their_first, late)

    return asyncio.run(scenario())


def live_numbers(sql_session: Any, slug: str) -> dict[str, Any]:
    """The same numbers, computed here from the raw rows (UTC days: the seed's time zone)."""
    row = sql_session(
        """
        SELECT
          (SELECT count(*) FROM lead l WHERE l.workspace_id = w.id) AS total,
          (SELECT count(*) FROM lead l WHERE l.workspace_id = w.id
             AND l.created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
             AS today,
          (SELECT count(*) FROM lead l WHERE l.workspace_id = w.id AND l.stage = 'WON') AS won,
          (SELECT count(*) FROM interaction i WHERE i.workspace_id = w.id
             AND i.channel = 'CALL' AND i.status = 'ACTIVE') AS active_calls
        FROM workspace w WHERE w.slug = $1
        """,
        slug,
    )[0]
    return dict(row)


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_live_metrics_snapshot_then_update_after_a_write(
    server: ServerThread, admin_client: Persona, sql_session: Any, protocol: str, deflate: bool
) -> None:
    hub = server.app.state.services.hub

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with subscribed(server, admin_client, protocol, deflate=deflate) as session:
            stream = session.subscribe(GraphQLRequest(LIVE))
            first = (await anext(stream))["liveMetrics"]
            await asyncio.to_thread(admin_client.execute, CREATE)
            second = (await asyncio.wait_for(anext(stream), 10))["liveMetrics"]
            await stream.aclose()  # unsubscribe (`complete`) before the socket closes
            return first, second

    expected = live_numbers(sql_session, "acme")
    direct = hub.stats.snapshots_direct
    first, second = asyncio.run(scenario())
    # the first snapshot goes through the subscriber's own stream, the next one is written
    # to the socket by the hub (app/main.py `_SocketSink`, framed there when the socket is
    # not compressed): the same message for the client
    assert hub.stats.snapshots_direct == direct + 1
    assert set(second) == set(first)
    assert first["totalLeads"] == expected["total"]
    assert first["newLeadsToday"] == expected["today"]
    assert first["activeCalls"] == expected["active_calls"]
    assert first["conversionRate"] == pytest.approx(expected["won"] / expected["total"])
    assert second["totalLeads"] == first["totalLeads"] + 1
    assert second["newLeadsToday"] == first["newLeadsToday"] + 1


def test_other_tenants_see_nothing(
    server: ServerThread, admin_client: Persona, globex_client: Persona, workspace_ids: Any
) -> None:
    async def scenario() -> tuple[str, list[Any]]:
        async with subscribed(server, globex_client) as session:
            with pytest.raises(TransportQueryError) as refused:
                await anext(
                    session.subscribe(
                        GraphQLRequest(LIVE, variable_values={"ws": workspace_ids["acme"]})
                    )
                )
            code = refused.value.errors[0]["extensions"]["code"]
            stream = session.subscribe(GraphQLRequest(LIVE))
            own = (await anext(stream))["liveMetrics"]
            await asyncio.to_thread(admin_client.execute, CREATE)
            late: list[Any] = []
            try:
                late.append(await asyncio.wait_for(anext(stream), 1.5))
            except TimeoutError:
                pass
            assert own["totalLeads"] > 0
            return code, late

    code, late = asyncio.run(scenario())
    assert code == "NOT_FOUND"
    assert late == [], "a write in Acme reached a Globex subscriber"


def test_job_progress_follows_a_job_to_its_end(
    server: ServerThread, admin_client: Persona, database_url: str, sql_session: Any
) -> None:
    from models import jobs
    from models.db import Database
    from models.scope import Scope
    from models.workspaces import Role

    row = sql_session(
        "SELECT w.id AS ws, u.id AS uid FROM workspace w, app_user u"
        " WHERE w.slug = 'acme' AND u.email = 'admin@acme.example'"
    )[0]

    async def scenario() -> list[dict[str, Any]]:
        db = Database(database_url, pool_size=1)
        async with db.transaction() as session:
            # a kind no worker runs: it stays QUEUED until cancelled
            job = await jobs.enqueue(session, Scope(row["ws"], row["uid"], Role.ADMIN), "test.idle")
        await db.dispose()
        seen: list[dict[str, Any]] = []
        async with subscribed(server, admin_client) as session:
            stream = session.subscribe(GraphQLRequest(JOB, variable_values={"id": str(job.id)}))
            seen.append((await anext(stream))["jobProgress"])
            await asyncio.to_thread(admin_client.execute, ENQUEUE, id=str(job.id))
            async for result in stream:  # ends by itself once the job has ended
                seen.append(result["jobProgress"])
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert [s["status"] for s in seen] == ["QUEUED", "CANCELLED"]


async def _raw(server: ServerThread, *messages: dict[str, Any], wait: float = 5) -> int | None:
    """Send protocol messages on a bare graphql-transport-ws socket; the close code it ends with."""
    async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
        for message in messages:
            await ws.send(json.dumps(message))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), wait)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None


def init(token: str | None) -> dict[str, Any]:
    return {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}


def subscribe(op_id: str) -> dict[str, Any]:
    return {"id": op_id, "type": "subscribe", "payload": {"query": LIVE}}


def test_protocol_misuse_gets_its_close_code(server: ServerThread, admin_client: Persona) -> None:
    token = admin_client.token
    cases = {
        4403: [init("garbage")],
        4408: [],
        4429: [init(token), init(token)],
        4401: [subscribe("1")],
        4409: [init(token), subscribe("1"), subscribe("1")],
        4400: [{"type": "nonsense"}],
    }
    for code, messages in cases.items():
        assert asyncio.run(_raw(server, *messages)) == code, code


def test_expired_token_ends_the_connection(
    database_url: str, server: ServerThread, sql_session: Any
) -> None:
    user_id = sql_session("SELECT id FROM app_user WHERE email = 'admin@acme.example'")[0]["id"]
    settings = settings_for(database_url, jwt_ttl_seconds=2)
    token = issue_token(settings, user_id, now=datetime.now(UTC) - timedelta(seconds=0.5))
    assert asyncio.run(_raw(server, init(token), subscribe("1"), wait=6)) == 4403


FEED = """
subscription Feed($types: [ActivityType!], $limit: Int!) {
  events(types: $types, limit: $limit) { items { type subjectId title amount at } }
}
"""


def test_activity_feed_shows_the_newest_and_then_new_activity(
    server: ServerThread, admin_client: Persona, globex_client: Persona, sql_session: Any
) -> None:
    newest = sql_session(
        "SELECT l.id FROM lead l JOIN workspace w ON w.id = l.workspace_id"
        " WHERE w.slug = 'acme' ORDER BY l.created_at DESC, l.id DESC LIMIT 5"
    )
    globex_payments = sql_session(
        "SELECT p.id, p.amount FROM payment p JOIN workspace w ON w.id = p.workspace_id"
        " WHERE w.slug = 'globex' ORDER BY p.created_at DESC, p.id DESC LIMIT 3"
    )

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        async with subscribed(server, admin_client) as session:
            stream = session.subscribe(
                GraphQLRequest(FEED, variable_values={"types": ["LEAD_CREATED"], "limit": 5})
            )
            first = (await anext(stream))["events"]["items"]
            created = await asyncio.to_thread(admin_client.execute, CREATE)
            second = (await asyncio.wait_for(anext(stream), 10))["events"]["items"]
            await stream.aclose()
            assert second[0]["subjectId"] == created["createLead"]["id"]
        async with subscribed(server, globex_client) as session:
            stream = session.subscribe(
                GraphQLRequest(FEED, variable_values={"types": ["PAYMENT"], "limit": 3})
            )
            globex = (await anext(stream))["events"]["items"]
            await stream.aclose()
        return first, second, globex

    first, second, globex = asyncio.run(scenario())
    assert [i["subjectId"] for i in first] == [str(r["id"]) for r in newest]
    assert {i["type"] for i in first} == {"LEAD_CREATED"}
    assert second[1:] == first[:4]
    assert [(i["subjectId"], i["amount"]) for i in globex] == [
        (str(r["id"]), r["amount"] / 100) for r in globex_payments
    ]


def test_activity_feed_is_for_admins(server: ServerThread, user_client: Persona) -> None:
    async def scenario() -> str:
        async with subscribed(server, user_client) as session:
            with pytest.raises(TransportQueryError) as refused:
                await anext(session.subscribe(GraphQLRequest(FEED, variable_values={"limit": 5})))
            return str(refused.value.errors[0]["extensions"]["code"])

    assert asyncio.run(scenario()) == "FORBIDDEN"


def test_subscriptions_over_server_sent_events(server: ServerThread, admin_client: Persona) -> None:
    """For clients without WebSockets: the same subscription as `text/event-stream`."""
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {admin_client.token}"}
    totals = []
    with httpx.stream(
        "POST", server.url, json={"query": LIVE}, headers=headers, timeout=10
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                totals.append(json.loads(line[6:])["data"]["liveMetrics"]["totalLeads"])
                if len(totals) == 1:
                    admin_client.execute(CREATE)
                else:
                    break
    assert totals[1] == totals[0] + 1


def test_a_subscription_posted_as_a_plain_request_says_how_to_subscribe(
    admin_client: Persona,
) -> None:
    error = admin_client.error(LIVE)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "text/event-stream" in error["message"]


SCORE = """
subscription Score($id: ID!) {
  leadScoreChanged(leadId: $id) { id budget score { value probability modelVersion } }
}
"""
UPDATE_BUDGET = """
mutation Budget($id: ID!, $budget: Int!) { updateLead(id: $id, input: {budget: $budget}) { id } }
"""


def test_lead_score_changed_follows_lead_changes(
    server: ServerThread, admin_client: Persona, globex_client: Persona, sql_session: Any
) -> None:
    """A change of the lead reaches its subscriber with fresh data; another workspace is
    refused. (Rescoring by a real model: tests/resolvers/test_scoring.py.)"""
    lead = sql_session(
        "SELECT l.id FROM lead l JOIN workspace w ON w.id = l.workspace_id"
        " WHERE w.slug = 'acme' ORDER BY l.id LIMIT 1"
    )[0]
    lead_id = str(lead["id"])

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], str]:
        async with subscribed(server, admin_client) as session:
            stream = session.subscribe(GraphQLRequest(SCORE, variable_values={"id": lead_id}))
            first = (await anext(stream))["leadScoreChanged"]
            await asyncio.to_thread(admin_client.execute, UPDATE_BUDGET, id=lead_id, budget=777000)
            second = (await asyncio.wait_for(anext(stream), 10))["leadScoreChanged"]
            await stream.aclose()
        async with subscribed(server, globex_client) as session:
            request = GraphQLRequest(SCORE, variable_values={"id": lead_id})
            with pytest.raises(TransportQueryError) as refused:
                await anext(session.subscribe(request))
        return first, second, refused.value.errors[0]["extensions"]["code"]

    first, second, code = asyncio.run(scenario())
    assert first["budget"] != 777000
    assert second["budget"] == 777000
    # the tiny workspace has no model: no score, and no error
    assert first["score"] is None and second["score"] is None
    assert code == "NOT_FOUND"
