"""`Workspace.leadInsights` and `leadInsightsUpdated` end to end through gql on the shared
analytics database (a trained model that scored every Acme lead). Every number is recomputed
here with polars from raw `lead`, `lead_score` and `lead_event` rows, over the window the answer
reports; the rules are written again here from their documentation, not imported."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests.client import Persona
from tests.conftest import SCORED, ServerThread
from tests.resolvers.test_subscriptions import subscribed, write_in_one_tenant

INSIGHTS = """
query Insights(
  $period: Period, $filter: [LeadInsightFilter!], $limit: Int, $sort: LeadInsightSort
) {
  workspace {
    leadInsights(period: $period, filter: $filter, limit: $limit, sort: $sort) {
      period windowStart windowEnd lastUpdated generatedAt
      summary { totalLeads openLeads wonLeads highValueLeads urgentLeads conversionRate
                averageScore }
      insights {
        leadId name email currentScore conversionProbability priority insights
        lead { id name stage }
        recommendations { type action priority reason }
        trends { scoreChange engagementChange engagementEvents previousEngagementEvents
                 lastActivity }
      }
      filters { applied available counts { filter count } }
      thresholds { scoreQ1 scoreMedian scoreQ3 budgetQ3 }
    }
  }
}
"""
EXPLANATION = """
query Explanation($id: ID!) { lead(id: $id) { explanation { contributions { feature shap } } } }
"""
CREATE = """
mutation Create {
  createLead(input: {name: "Lead Insight One", source: REFERRAL, location: "Austin, TX",
    propertyType: CONDO, timeline: IMMEDIATE, budget: 650000}) { id }
}
"""
RECORD = """
mutation Record($input: LeadEventInput!) { recordLeadEvent(input: $input) { id } }
"""
UPDATED = """
subscription Updated($ws: ID, $period: Period, $filter: [LeadInsightFilter!], $limit: Int) {
  leadInsightsUpdated(workspaceId: $ws, period: $period, filter: $filter, limit: $limit) {
    summary { totalLeads openLeads }
    insights { leadId priority }
    windowStart windowEnd generatedAt
  }
}
"""

FILTERS = ["HIGH_VALUE", "URGENT", "NEW", "ENGAGED", "COLD"]
NEAR = ["IMMEDIATE", "WITHIN_3_MONTHS"]
IN_CONVERSATION = ["QUALIFIED", "SHOWING", "OFFER"]
ENGAGEMENT = ["EMAIL_OPENED", "EMAIL_REPLIED", "CALL", "MEETING", "SHOWING", "WEBSITE_VISIT"]
LEAD_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "owner_id": pl.Int64,
    "agent_id": pl.Int64,
    "stage": pl.String,
    "score": pl.Int64,
    "budget": pl.Int64,
    "timeline": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "last_activity_at": pl.Datetime("us", "UTC"),
}


# ---- the independent recomputation -------------------------------------------------------------


def workspace_id(sql: Any, slug: str) -> int:
    return int(sql("SELECT id FROM workspace WHERE slug = $1", slug)[0]["id"])


def lead_rows(
    sql: Any, ws: int, *, owner: str | None = None, agent: str | None = None
) -> pl.DataFrame:
    """The leads a persona may see: all of the workspace, a USER's own, an AGENT's assigned."""
    columns = ", ".join("c.value AS score" if c == "score" else f"l.{c}" for c in LEAD_SCHEMA)
    query = f"SELECT {columns} FROM lead l {SCORED} WHERE l.workspace_id = $1"
    args: list[Any] = [ws]
    if owner is not None:
        query += " AND l.owner_id = (SELECT id FROM app_user WHERE email = $2)"
        args.append(owner)
    if agent is not None:
        query += (
            " AND l.agent_id IN (SELECT a.id FROM agent a JOIN app_user u ON u.id = a.user_id"
            " WHERE a.workspace_id = $1 AND u.email = $2)"
        )
        args.append(agent)
    rows = [tuple(r) for r in sql(query, *args)]
    return pl.DataFrame(rows, schema=LEAD_SCHEMA, orient="row")


def percentile_disc(values: pl.Series, fraction: float) -> int | None:
    """Postgres' percentile_disc: the first value whose position reaches the fraction."""
    ordered = values.drop_nulls().sort().to_list()
    return ordered[math.ceil(fraction * len(ordered)) - 1] if ordered else None


def at_least(column: str, bound: int | None) -> pl.Expr:
    return (pl.col(column) >= bound).fill_null(False) if bound is not None else pl.lit(False)


def expected(frame: pl.DataFrame, start: datetime, end: datetime) -> dict[str, Any]:
    open_all = frame.filter(~pl.col("stage").is_in(["WON", "LOST"]))
    q1, q2, q3 = (percentile_disc(open_all["score"], f) for f in (0.25, 0.5, 0.75))
    b3 = percentile_disc(open_all["budget"], 0.75)
    activity = pl.coalesce("last_activity_at", "created_at")
    period = frame.filter(activity >= start, activity < end)
    open_period = period.filter(~pl.col("stage").is_in(["WON", "LOST"]))
    rules = {
        "HIGH_VALUE": at_least("budget", b3) & at_least("score", q2),
        "URGENT": at_least("score", q3) & pl.col("timeline").is_in(NEAR).fill_null(False),
        "NEW": (pl.col("created_at") >= start) & (pl.col("created_at") < end),
        "ENGAGED": pl.col("stage").is_in(IN_CONVERSATION)
        & (pl.col("last_activity_at") >= end - timedelta(days=7)).fill_null(False),
        "COLD": (pl.col("score") <= q1).fill_null(False) if q1 is not None else pl.lit(False),
    }
    quartile = (
        at_least("score", q3).cast(pl.Int64)
        + at_least("score", q2).cast(pl.Int64)
        + at_least("score", q1).cast(pl.Int64)
    )
    points = (
        pl.when(pl.col("score").is_null())
        .then(0)
        .otherwise(quartile + pl.col("timeline").is_in(NEAR).fill_null(False).cast(pl.Int64))
    )
    listed = open_period.with_columns(
        points=points,
        score_key=pl.col("score").fill_null(-1),
        **{f: rule for f, rule in rules.items()},
    )
    won = period.filter(pl.col("stage") == "WON").height
    scored = period["score"].drop_nulls()
    return {
        "summary": {
            "totalLeads": period.height,
            "openLeads": open_period.height,
            "wonLeads": won,
            "highValueLeads": int(listed["HIGH_VALUE"].sum()),
            "urgentLeads": int(listed["URGENT"].sum()),
            "conversionRate": won / period.height if period.height else 0.0,
            "averageScore": float(scored.mean()) if len(scored) else None,  # type: ignore[arg-type]
        },
        "thresholds": {"scoreQ1": q1, "scoreMedian": q2, "scoreQ3": q3, "budgetQ3": b3},
        "counts": {f: int(listed[f].sum()) for f in FILTERS},
        "listed": listed,
    }


def priority(points: int) -> str:
    return {4: "URGENT", 3: "HIGH", 2: "MEDIUM"}.get(points, "LOW")


SORTS = {
    "SCORE": (["score_key", "id"], [True, True]),
    "CREATED_AT": (["created_at", "id"], [True, True]),
    "PRIORITY": (["points", "score_key", "id"], [True, True, True]),
}


def expected_ids(listed: pl.DataFrame, filters: list[str], sort: str, limit: int) -> list[str]:
    chosen = listed.filter(*[pl.col(f) for f in filters]) if filters else listed
    by, descending = SORTS[sort]
    return [str(i) for i in chosen.sort(by, descending=descending)["id"].head(limit)]


def window_of(answer: dict[str, Any]) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(answer["windowStart"]),
        datetime.fromisoformat(answer["windowEnd"]),
    )


def insights(persona: Persona, **variables: Any) -> dict[str, Any]:
    return persona.execute(INSIGHTS, **variables)["workspace"]["leadInsights"]


def assert_summary_totals(answer: dict[str, Any], want: dict[str, Any]) -> None:
    for name in ("totalLeads", "openLeads"):
        assert answer["summary"][name] == want["summary"][name], name


def assert_summary(answer: dict[str, Any], want: dict[str, Any]) -> None:
    got = answer["summary"]
    for name in ("totalLeads", "openLeads", "wonLeads", "highValueLeads", "urgentLeads"):
        assert got[name] == want["summary"][name], name
    assert got["conversionRate"] == pytest.approx(want["summary"]["conversionRate"])
    if want["summary"]["averageScore"] is None:
        assert got["averageScore"] is None
    else:
        assert got["averageScore"] == pytest.approx(want["summary"]["averageScore"])
    assert answer["thresholds"] == want["thresholds"]
    assert {c["filter"]: c["count"] for c in answer["filters"]["counts"]} == want["counts"]


# ---- the summary, the rules, the sorts -----------------------------------------------------------


@pytest.mark.parametrize("period", ["H24", "D30", "Y1"])
def test_summary_thresholds_and_filter_counts_match_a_recomputation(
    analytics_admin: Persona, analytics_sql: Any, period: str
) -> None:
    # when
    answer = insights(analytics_admin, period=period, limit=5)
    # then
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "acme"))
    want = expected(frame, *window_of(answer))
    assert answer["period"] == period
    assert want["summary"]["totalLeads"] > 0
    assert_summary(answer, want)
    assert answer["filters"]["applied"] == []
    assert answer["filters"]["available"] == FILTERS


@pytest.mark.parametrize("rule", FILTERS)
def test_each_filter_lists_exactly_the_leads_of_its_rule(
    analytics_admin: Persona, analytics_sql: Any, rule: str
) -> None:
    answer = insights(analytics_admin, period="Y1", filter=[rule], limit=100)
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "acme"))
    want = expected(frame, *window_of(answer))
    assert answer["filters"]["applied"] == [rule]
    assert [i["leadId"] for i in answer["insights"]] == expected_ids(
        want["listed"], [rule], "SCORE", 100
    )
    # the summary ignores the filters
    assert_summary(answer, want)


def test_filters_combine_with_and(analytics_admin: Persona, analytics_sql: Any) -> None:
    answer = insights(analytics_admin, period="Y1", filter=["URGENT", "NEW", "URGENT"], limit=100)
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "acme"))
    want = expected(frame, *window_of(answer))
    assert answer["filters"]["applied"] == ["URGENT", "NEW"]
    ids = expected_ids(want["listed"], ["URGENT", "NEW"], "SCORE", 100)
    assert [i["leadId"] for i in answer["insights"]] == ids
    assert all(i["priority"] == "URGENT" for i in answer["insights"])


@pytest.mark.parametrize("sort", list(SORTS))
def test_sort_orders_and_priorities(
    analytics_admin: Persona, analytics_sql: Any, sort: str
) -> None:
    answer = insights(analytics_admin, period="D30", sort=sort, limit=100)
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "acme"))
    want = expected(frame, *window_of(answer))
    assert [i["leadId"] for i in answer["insights"]] == expected_ids(want["listed"], [], sort, 100)
    points = dict(zip(want["listed"]["id"].cast(pl.String), want["listed"]["points"], strict=True))
    scores = dict(zip(frame["id"].cast(pl.String), frame["score"], strict=True))
    for item in answer["insights"]:
        assert item["priority"] == priority(points[item["leadId"]])
        assert item["currentScore"] == scores[item["leadId"]]
        assert item["lead"]["id"] == item["leadId"]
        assert item["lead"]["stage"] not in ("WON", "LOST")


def test_default_arguments_are_h24_score_and_50(analytics_admin: Persona) -> None:
    answer = insights(analytics_admin)
    start, end = window_of(answer)
    assert answer["period"] == "H24" and end - start == timedelta(hours=24)
    assert len(answer["insights"]) <= 50
    scores = [
        i["currentScore"] if i["currentScore"] is not None else -1 for i in answer["insights"]
    ]
    assert scores == sorted(scores, reverse=True)


# ---- per lead: trends, probability, sentences, recommendations ----------------------------------


def test_trends_and_probabilities_match_the_rows(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    answer = insights(analytics_admin, period="D7", limit=25, sort="PRIORITY")
    start, end = window_of(answer)
    ws = workspace_id(analytics_sql, "acme")
    ids = [int(i["leadId"]) for i in answer["insights"]]
    assert ids
    scores = pl.DataFrame(
        [
            tuple(r)
            for r in analytics_sql(
                "SELECT lead_id, id, value, probability, scored_at FROM lead_score "
                "WHERE workspace_id = $1 AND lead_id = ANY($2::bigint[])",
                ws,
                ids,
            )
        ],
        schema=["lead_id", "id", "value", "probability", "scored_at"],
        orient="row",
    ).sort("scored_at", "id")
    events = pl.DataFrame(
        [
            tuple(r)
            for r in analytics_sql(
                "SELECT lead_id, type, occurred_at FROM lead_event "
                "WHERE workspace_id = $1 AND lead_id = ANY($2::bigint[])",
                ws,
                ids,
            )
        ],
        schema=["lead_id", "type", "occurred_at"],
        orient="row",
    ).filter(pl.col("type").is_in(ENGAGEMENT))
    leads = lead_rows(analytics_sql, ws).filter(pl.col("id").is_in(ids))
    previous_start = start - (end - start)
    for item in answer["insights"]:
        lead_id = int(item["leadId"])
        lead = leads.filter(pl.col("id") == lead_id).row(0, named=True)
        mine = scores.filter(pl.col("lead_id") == lead_id)
        before = mine.filter(pl.col("scored_at") < start)
        inside = mine.filter(pl.col("scored_at") >= start)
        baseline = (
            before["value"][-1]
            if before.height
            else (inside["value"][0] if inside.height else None)
        )
        trends = item["trends"]
        if lead["score"] is None:
            assert item["conversionProbability"] is None and trends["scoreChange"] is None
        else:
            assert item["conversionProbability"] == pytest.approx(mine["probability"][-1])
            assert trends["scoreChange"] == (None if baseline is None else lead["score"] - baseline)
        at = events.filter(pl.col("lead_id") == lead_id)["occurred_at"]
        now = int(((at >= start) & (at < end)).sum())
        previous = int(((at >= previous_start) & (at < start)).sum())
        assert (trends["engagementEvents"], trends["previousEngagementEvents"]) == (now, previous)
        if previous:
            assert trends["engagementChange"] == pytest.approx((now - previous) / previous)
        else:
            assert trends["engagementChange"] is None
        assert datetime.fromisoformat(trends["lastActivity"]) == lead["last_activity_at"]


def test_sentences_come_from_the_shap_factors_and_activity(analytics_admin: Persona) -> None:
    answer = insights(analytics_admin, period="D30", limit=10)
    end = window_of(answer)[1]
    for item in answer["insights"]:
        assert item["currentScore"] is not None
        contributions = analytics_admin.execute(EXPLANATION, id=item["leadId"])["lead"][
            "explanation"
        ]["contributions"]
        strong = min(3, sum(abs(c["shap"]) >= 0.10 for c in contributions))
        trends = item["trends"]
        change = trends["engagementChange"]
        activity = int(
            (change is not None and abs(change) >= 0.25)
            or (change is None and trends["engagementEvents"] > 0)
        )
        quiet = (end - datetime.fromisoformat(trends["lastActivity"])).days >= 14
        assert len(item["insights"]) == strong + activity + int(quiet)
        assert all(isinstance(s, str) and s for s in item["insights"])
        assert 1 <= len(item["recommendations"]) <= 3
        ranks = [{"HIGH": 0, "MEDIUM": 1, "LOW": 2}[r["priority"]] for r in item["recommendations"]]
        assert ranks == sorted(ranks)
        for r in item["recommendations"]:
            assert r["action"] and r["reason"]


def facts(**lead: Any) -> Any:
    """A builder of the advice rules' facts about one lead, for a given priority."""
    from ml.lead_advice import LeadFacts, LeadTrends
    from models.lead_insights import LeadPriority
    from models.leads import Lead

    now = datetime(2026, 1, 31, tzinfo=UTC)
    row = Lead(
        workspace_id=1,
        id=1,
        name="A",
        source="REFERRAL",
        created_at=lead.pop("created_at", now - timedelta(days=3)),
        last_activity_at=lead.pop("last_activity_at", now - timedelta(days=1)),
        **lead,
    )
    trends = LeadTrends(0, 2, 4, -0.5, row.last_activity_at)
    quiet = (now - (row.last_activity_at or row.created_at)).days
    hours = (now - row.created_at).total_seconds() / 3600
    return lambda p: LeadFacts(row, LeadPriority(p), 0.6, trends, quiet, hours, None)


@pytest.mark.parametrize(
    ("lead", "priority", "expected"),
    [
        # unassigned, urgent, budget, engagement halved: the HIGH ones only (at most 3)
        (
            {"stage": "QUALIFIED", "budget": 500000, "timeline": "IMMEDIATE", "score": 80},
            "URGENT",
            ["CONTACT", "SHOWING", "ASSIGNMENT"],
        ),
        ({"stage": "OFFER", "agent_id": 7}, "MEDIUM", ["CLOSING", "FOLLOW_UP"]),
        (
            {"stage": "CONTACTED", "agent_id": 7, "timeline": "BROWSING"},
            "LOW",
            ["SHOWING", "FOLLOW_UP", "NURTURE"],
        ),
        (
            {
                "stage": "NEW",
                "agent_id": 7,
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                "last_activity_at": datetime(2026, 1, 2, tzinfo=UTC),
            },
            "HIGH",
            ["CONTACT", "CONTACT", "FOLLOW_UP"],
        ),
    ],
)
def test_the_advice_registry(lead: dict[str, Any], priority: str, expected: list[str]) -> None:
    from ml.lead_advice import recommendations

    build = facts(**lead)
    found = recommendations(build(priority))
    assert [r.type.value for r in found] == expected
    ranks = [{"HIGH": 0, "MEDIUM": 1, "LOW": 2}[r.priority.value] for r in found]
    assert ranks == sorted(ranks) and len(found) <= 3


def test_a_lead_no_rule_fits_gets_its_stage_next_step() -> None:
    """Given a MEDIUM lead at SHOWING with an agent, no budget and steady engagement (no rule
    holds), its one recommendation is the stage's next step."""
    from ml.lead_advice import NEXT_STEP, LeadFacts, LeadTrends, recommendations
    from models.lead_insights import LeadPriority
    from models.leads import Lead

    now = datetime(2026, 1, 31, tzinfo=UTC)
    row = Lead(workspace_id=1, id=1, name="A", source="REFERRAL", stage="SHOWING", agent_id=7)
    row.created_at, row.last_activity_at = now - timedelta(days=20), now - timedelta(days=1)
    steady = LeadTrends(0, 3, 3, 0.0, row.last_activity_at)
    [only] = recommendations(LeadFacts(row, LeadPriority.MEDIUM, 0.3, steady, 1, 480.0, None))
    assert (only.type.value, only.action, only.priority.value) == (
        "FOLLOW_UP",
        NEXT_STEP["SHOWING"],
        "LOW",
    )


# ---- arguments, tenancy, empty data --------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_limit_outside_1_to_100_is_bad_input(analytics_admin: Persona, limit: int) -> None:
    error = analytics_admin.error(INSIGHTS, limit=limit)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "limit" in error["extensions"]["details"]["fields"]


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(analytics_admin: Persona, limit: int) -> None:
    answer = insights(analytics_admin, period="Y1", limit=limit)
    assert len(answer["insights"]) == limit


def test_unknown_filter_is_refused(analytics_admin: Persona) -> None:
    with pytest.raises(TransportQueryError):
        analytics_admin.execute(INSIGHTS, filter=["HOT"])


def test_empty_workspace_gives_zeros(analytics_empty: Persona) -> None:
    answer = insights(analytics_empty, period="Y1", filter=["URGENT"])
    assert answer["summary"] == {
        "totalLeads": 0,
        "openLeads": 0,
        "wonLeads": 0,
        "highValueLeads": 0,
        "urgentLeads": 0,
        "conversionRate": 0.0,
        "averageScore": None,
    }
    assert answer["insights"] == []
    assert answer["thresholds"] == dict.fromkeys(["scoreQ1", "scoreMedian", "scoreQ3", "budgetQ3"])
    assert all(c["count"] == 0 for c in answer["filters"]["counts"])


def test_workspace_without_a_model_lists_leads_without_sentences(
    analytics_globex: Persona, analytics_sql: Any
) -> None:
    answer = insights(analytics_globex, period="Y1", limit=20, sort="CREATED_AT")
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "globex"))
    if frame["score"].null_count() != frame.height:
        pytest.skip("another test scored Globex's leads")
    want = expected(frame, *window_of(answer))
    assert_summary(answer, want)
    assert answer["summary"]["averageScore"] is None and answer["summary"]["urgentLeads"] == 0
    assert [i["leadId"] for i in answer["insights"]] == expected_ids(
        want["listed"], [], "CREATED_AT", 20
    )
    for item in answer["insights"]:
        assert item["currentScore"] is None and item["conversionProbability"] is None
        assert item["priority"] == "LOW" and item["insights"] == []
        assert item["trends"]["scoreChange"] is None


def test_a_period_with_no_matching_leads(analytics_admin: Persona, analytics_sql: Any) -> None:
    answer = insights(analytics_admin, period="H1", filter=["COLD", "URGENT"])
    assert answer["insights"] == []  # bottom and top quartile at once: never
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "acme"))
    assert_summary(answer, expected(frame, *window_of(answer)))


@pytest.mark.parametrize(
    ("persona", "email", "role"),
    [
        ("analytics_user", "user@acme.example", "owner"),
        ("analytics_agent", "agent@acme.example", "agent"),
    ],
)
def test_users_and_agents_see_only_their_leads(
    request: pytest.FixtureRequest, analytics_sql: Any, persona: str, email: str, role: str
) -> None:
    client: Persona = request.getfixturevalue(persona)
    answer = insights(client, period="Y1", limit=100, sort="PRIORITY")
    ws = workspace_id(analytics_sql, "acme")
    frame = lead_rows(analytics_sql, ws, **{role: email})
    want = expected(frame, *window_of(answer))
    assert_summary(answer, want)
    assert [i["leadId"] for i in answer["insights"]] == expected_ids(
        want["listed"], [], "PRIORITY", 100
    )
    everyone = expected(lead_rows(analytics_sql, ws), *window_of(answer))
    assert want["summary"]["totalLeads"] < everyone["summary"]["totalLeads"]


def test_a_created_lead_shows_up_on_the_next_read(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    # given a read the cache keeps
    variables = {"period": "H1", "filter": ["NEW"], "sort": "CREATED_AT", "limit": 5}
    before = insights(analytics_admin, **variables)
    for _ in range(50):  # until the cache answers (its listener may still be subscribing)
        again = insights(analytics_admin, **variables)
        if again["lastUpdated"] == before["lastUpdated"]:
            break
        before = again
        time.sleep(0.1)
    else:
        raise AssertionError("the analytics cache never answered")
    # when
    created = analytics_admin.execute(CREATE)["createLead"]["id"]
    # then
    after = insights(analytics_admin, **variables)
    assert after["insights"][0]["leadId"] == created
    assert after["insights"][0]["name"] == "Lead Insight One"
    assert after["summary"]["totalLeads"] == before["summary"]["totalLeads"] + 1
    frame = lead_rows(analytics_sql, workspace_id(analytics_sql, "acme"))
    assert_summary(after, expected(frame, *window_of(after)))


# ---- leadInsightsUpdated -------------------------------------------------------------------------


def test_subscription_snapshot_then_update_and_isolation(
    analytics_server: ServerThread,
    analytics_admin: Persona,
    analytics_globex: Persona,
    analytics_sql: Any,
) -> None:
    variables = {"period": "H24", "limit": 5}

    run = write_in_one_tenant(
        analytics_server, analytics_admin, analytics_globex, UPDATED, CREATE, **variables
    )
    first, second, theirs, late = run.first, run.second, run.theirs, run.late
    assert second["summary"]["totalLeads"] == first["summary"]["totalLeads"] + 1
    assert second["summary"]["openLeads"] == first["summary"]["openLeads"] + 1
    globex = lead_rows(analytics_sql, workspace_id(analytics_sql, "globex"))
    assert_summary_totals(theirs, expected(globex, *window_of(theirs)))
    assert late == [], "a write in Acme reached a Globex subscriber"


def test_subscription_does_not_resend_an_unchanged_result(
    analytics_server: ServerThread, analytics_admin: Persona, analytics_sql: Any
) -> None:
    """A note dated in the past on a closed lead changes nothing of the answer: the `lead`
    event recomputes the group, which sends nothing."""
    closed = analytics_sql(
        "SELECT id, last_activity_at FROM lead WHERE workspace_id = $1 AND stage = 'WON' "
        "AND last_activity_at > now() - interval '300 days' ORDER BY id LIMIT 1",
        workspace_id(analytics_sql, "acme"),
    )[0]
    note = {
        "leadId": str(closed["id"]),
        "type": "NOTE",
        "note": "called, no change",
        "occurredAt": (closed["last_activity_at"] - timedelta(days=1)).isoformat(),
    }
    variables = {"period": "Y1", "limit": 3, "filter": ["COLD"]}
    hub = analytics_server.services.hub

    async def scenario() -> tuple[list[Any], int]:
        async with subscribed(analytics_server, analytics_admin) as session:
            stream = session.subscribe(GraphQLRequest(UPDATED, variable_values=variables))
            received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

            async def read() -> None:
                # one reader: cancelling a pending `anext` would end gql's subscription
                async for result in stream:
                    received.put_nowait(result["leadInsightsUpdated"])

            reader = asyncio.create_task(read())
            try:
                await asyncio.wait_for(received.get(), 10)
                before = hub.stats.recomputes
                await asyncio.to_thread(analytics_admin.execute, RECORD, input=note)
                await asyncio.sleep(1.5)  # several ticks after the event
                resent = [received.get_nowait() for _ in range(received.qsize())]
                return resent, hub.stats.recomputes - before
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    resent, recomputed = asyncio.run(scenario())
    assert recomputed >= 1, "the lead event did not reach the group"
    assert resent == []


def test_subscription_refuses_bad_limit_and_other_tenants(
    analytics_server: ServerThread, analytics_globex: Persona, analytics_sql: Any
) -> None:
    acme = str(workspace_id(analytics_sql, "acme"))

    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        codes = []
        async with subscribed(analytics_server, analytics_globex) as session:
            for variables in ({"limit": 101}, {"limit": 5, "ws": acme}):
                with pytest.raises(TransportQueryError) as refused:
                    await anext(
                        session.subscribe(GraphQLRequest(UPDATED, variable_values=variables))
                    )
                assert refused.value.errors
                error = refused.value.errors[0]
                codes.append((error["extensions"]["code"], error["extensions"].get("details", {})))
        return codes

    (bad, bad_details), (missing, _) = asyncio.run(scenario())
    assert bad == "BAD_USER_INPUT" and "limit" in bad_details["fields"]
    assert missing == "NOT_FOUND"
