"""`Workspace.performance`, `updatePerformanceThresholds` and `performanceUpdated` end to end
through gql on the shared analytics database. Every number is recomputed here with polars
from raw `lead`, `lead_event` and `agent` rows, over the window the answer reports."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests.client import Persona
from tests.conftest import SCORED, ServerThread
from tests.resolvers.test_subscriptions import subscribed, write_in_one_tenant

PERIODS = ["H1", "H24", "D7", "D30"]
HIGH_VALUE = 80
QUALIFIED = ["QUALIFIED", "SHOWING", "OFFER", "WON"]

PERFORMANCE = """
query Performance($period: Period!) {
  workspace {
    performance(period: $period) {
      period windowStart windowEnd
      summary { totalLeads activeLeads convertedLeads conversionRate averageLeadScore
                responseTimeHours }
      leadGeneration { daily weekly monthly growth }
      leadQuality { averageScore highValuePercentage qualifiedPercentage }
      conversion { overallRate bySource { key count converted rate }
                   byAgent { agent { id name } count converted rate } }
      engagement { emailsSent emailOpenRate responseRate meetingBookedRate }
      trends { conversionTrend { date rate count } leadQualityTrend { date score count } }
      alerts { type severity metric message threshold current previous change }
      thresholds { minConversionRate maxResponseTimeHours minAverageLeadScore
                   minEmailOpenRate minLeadGrowth maxChange updatedAt }
    }
  }
}
"""
THRESHOLDS = """
mutation Thresholds($input: PerformanceThresholdsInput!) {
  updatePerformanceThresholds(input: $input) {
    minConversionRate maxResponseTimeHours minAverageLeadScore minEmailOpenRate
    minLeadGrowth maxChange updatedAt
  }
}
"""
DEFAULTS = {
    "minConversionRate": 0.05,
    "maxResponseTimeHours": 3.0,
    "minAverageLeadScore": None,
    "minEmailOpenRate": 0.2,
    "minLeadGrowth": -0.2,
    "maxChange": 0.15,
}
CREATE = """
mutation Create { createLead(input: {name: "Performance One", source: REFERRAL}) { id } }
"""
WIN = """
mutation Win($id: ID!) { updateLead(id: $id, input: {stage: WON}) { id stage } }
"""
EMAIL = """
mutation Email($id: ID!) {
  recordLeadEvent(input: {leadId: $id, type: EMAIL_SENT}) { id }
}
"""
UPDATED = """
subscription Updated($ws: ID, $period: Period!) {
  performanceUpdated(workspaceId: $ws, period: $period) {
    summary { totalLeads convertedLeads } windowEnd
  }
}
"""


# ---- the independent recomputation ------------------------------------------------------------


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _frame(rows: list[Any], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([dict(r) for r in rows], schema=schema, orient="row")


LEAD_SCHEMA = {
    "id": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
    "converted_at": pl.Datetime("us", "UTC"),
    "stage": pl.Utf8,
    "score": pl.Int64,
    "source": pl.Utf8,
    "agent_id": pl.Int64,
}
EVENT_SCHEMA = {"lead_id": pl.Int64, "type": pl.Utf8, "occurred_at": pl.Datetime("us", "UTC")}


def raw(sql: Any, persona_email: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[int, str]]:
    """The persona's leads (their role's rule, applied here by hand), their events, and the
    workspace's agents."""
    member = sql(
        "SELECT m.workspace_id, m.user_id, m.role FROM membership m JOIN app_user u "
        "ON u.id = m.user_id WHERE u.email = $1 ORDER BY m.workspace_id LIMIT 1",
        persona_email,
    )[0]
    ws, uid, role = member["workspace_id"], member["user_id"], member["role"]
    rule = {
        "ADMIN": "",
        "USER": "AND l.owner_id = $2",
        "AGENT": "AND l.agent_id IN "
        "(SELECT id FROM agent WHERE workspace_id = $1 AND user_id = $2)",
    }[role]
    args = (ws, uid) if rule else (ws,)
    leads = _frame(
        sql(
            "SELECT l.id, l.created_at, l.converted_at, l.stage, c.value AS score, l.source, "
            f"l.agent_id FROM lead l {SCORED} WHERE l.workspace_id = $1 {rule}",
            *args,
        ),
        LEAD_SCHEMA,
    )
    events = _frame(
        sql(
            "SELECT e.lead_id, e.type, e.occurred_at FROM lead_event e JOIN lead l "
            "ON l.workspace_id = e.workspace_id AND l.id = e.lead_id "
            f"WHERE e.workspace_id = $1 {rule}",
            *args,
        ),
        EVENT_SCHEMA,
    )
    agents = {
        r["id"]: r["name"] for r in sql("SELECT id, name FROM agent WHERE workspace_id = $1", ws)
    }
    return leads, events, agents


def _rate(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def window_numbers(
    leads: pl.DataFrame, events: pl.DataFrame, start: datetime, end: datetime
) -> dict[str, Any]:
    new = leads.filter((pl.col("created_at") >= start) & (pl.col("created_at") < end))
    won = leads.filter(
        (pl.col("stage") == "WON")
        & (pl.col("converted_at") >= start)
        & (pl.col("converted_at") < end)
    )
    scored = new.filter(pl.col("score").is_not_null())
    # first call or email sent within 14 days of creation
    first = (
        events.filter(pl.col("type").is_in(["CALL", "EMAIL_SENT"]))
        .join(new.select("id", "created_at"), left_on="lead_id", right_on="id")
        .filter(
            (pl.col("occurred_at") >= pl.col("created_at"))
            & (pl.col("occurred_at") <= pl.col("created_at") + timedelta(days=14))
        )
        .group_by("lead_id")
        .agg(
            (
                (pl.col("occurred_at").min() - pl.col("created_at").first()).dt.total_microseconds()
                / 3.6e9
            ).alias("hours")
        )
    )
    in_window = events.filter((pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end))
    counts = dict(in_window.group_by("type").len().iter_rows())
    sent = counts.get("EMAIL_SENT", 0)
    return {
        "leads": new.height,
        "active": new.filter(~pl.col("stage").is_in(["WON", "LOST"])).height,
        "converted": won.height,
        "conversionRate": _rate(won.height, new.height),
        "scored": scored.height,
        "averageScore": float(scored["score"].mean()) if scored.height else 0.0,
        "highValue": new.filter(pl.col("score") >= HIGH_VALUE).height,
        "qualified": new.filter(pl.col("stage").is_in(QUALIFIED)).height,
        "responded": first.height,
        "responseHours": float(first["hours"].median()) if first.height else 0.0,
        "emailsSent": sent,
        "emailOpenRate": _rate(counts.get("EMAIL_OPENED", 0), sent),
        "responseRate": _rate(counts.get("EMAIL_REPLIED", 0), sent),
        "meetingBookedRate": _rate(counts.get("MEETING", 0), sent + counts.get("CALL", 0)),
        "new": new,
        "won": won,
    }


def expected(sql: Any, email: str, answer: dict[str, Any]) -> dict[str, Any]:
    leads, events, agents = raw(sql, email)
    start, end = _ts(answer["windowStart"]), _ts(answer["windowEnd"])
    cur = window_numbers(leads, events, start, end)
    prev = window_numbers(leads, events, start - (end - start), start)
    created = leads["created_at"]
    new, won = cur["new"], cur["won"]
    by_source = {}
    for key in set(new["source"].to_list()) | set(won["source"].to_list()):
        n = new.filter(pl.col("source") == key).height
        c = won.filter(pl.col("source") == key).height
        by_source[key] = {"key": key, "count": n, "converted": c, "rate": _rate(c, n)}
    by_agent = {}
    for a in set(new["agent_id"].drop_nulls().to_list()) | set(
        won["agent_id"].drop_nulls().to_list()
    ):
        n = new.filter(pl.col("agent_id") == a).height
        c = won.filter(pl.col("agent_id") == a).height
        by_agent[str(a)] = {
            "agent": {"id": str(a), "name": agents[a]},
            "count": n,
            "converted": c,
            "rate": _rate(c, n),
        }
    every = "1h" if answer["period"] in ("H1", "H24") else "1d"
    trend = []
    at = pl.Series([start]).dt.truncate(every)[0]
    while at < end:
        nxt = at + (timedelta(hours=1) if every == "1h" else timedelta(days=1))
        bucket_new = new.filter((pl.col("created_at") >= at) & (pl.col("created_at") < nxt))
        bucket_won = won.filter((pl.col("converted_at") >= at) & (pl.col("converted_at") < nxt))
        bucket_scored = bucket_new.filter(pl.col("score").is_not_null())
        trend.append(
            {
                "date": at,
                "count": bucket_new.height,
                "rate": _rate(bucket_won.height, bucket_new.height),
                "scored": bucket_scored.height,
                "score": float(bucket_scored["score"].mean()) if bucket_scored.height else 0.0,
            }
        )
        at = nxt
    return {
        "cur": cur,
        "prev": prev,
        "daily": created.filter((created >= end - timedelta(days=1)) & (created < end)).len(),
        "weekly": created.filter((created >= end - timedelta(days=7)) & (created < end)).len(),
        "monthly": created.filter((created >= end - timedelta(days=30)) & (created < end)).len(),
        "growth": _rate(cur["leads"] - prev["leads"], prev["leads"]),
        "bySource": by_source,
        "byAgent": by_agent,
        "trend": trend,
    }


def assert_rows(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for key, row in want.items():
        assert got[key]["rate"] == pytest.approx(row["rate"]), key
        assert {k: v for k, v in got[key].items() if k != "rate"} == {
            k: v for k, v in row.items() if k != "rate"
        }, key


def assert_matches(answer: dict[str, Any], want: dict[str, Any]) -> None:
    cur = want["cur"]
    s = answer["summary"]
    assert s["totalLeads"] == cur["leads"]
    assert s["activeLeads"] == cur["active"]
    assert s["convertedLeads"] == cur["converted"]
    assert s["conversionRate"] == pytest.approx(cur["conversionRate"])
    assert s["averageLeadScore"] == pytest.approx(cur["averageScore"])
    assert s["responseTimeHours"] == pytest.approx(cur["responseHours"], abs=1e-6)
    g = answer["leadGeneration"]
    assert (g["daily"], g["weekly"], g["monthly"]) == (
        want["daily"],
        want["weekly"],
        want["monthly"],
    )
    assert g["growth"] == pytest.approx(want["growth"])
    q = answer["leadQuality"]
    assert q["averageScore"] == pytest.approx(cur["averageScore"])
    assert q["highValuePercentage"] == pytest.approx(100 * _rate(cur["highValue"], cur["leads"]))
    assert q["qualifiedPercentage"] == pytest.approx(100 * _rate(cur["qualified"], cur["leads"]))
    c = answer["conversion"]
    assert c["overallRate"] == pytest.approx(cur["conversionRate"])
    assert_rows({r["key"]: r for r in c["bySource"]}, want["bySource"])
    assert [(-r["count"], r["key"]) for r in c["bySource"]] == sorted(
        (-r["count"], r["key"]) for r in c["bySource"]
    )
    assert_rows({r["agent"]["id"]: r for r in c["byAgent"]}, want["byAgent"])
    assert [(-r["converted"], -r["count"], int(r["agent"]["id"])) for r in c["byAgent"]] == sorted(
        (-r["converted"], -r["count"], int(r["agent"]["id"])) for r in c["byAgent"]
    )
    e = answer["engagement"]
    assert e["emailsSent"] == cur["emailsSent"]
    for name in ("emailOpenRate", "responseRate", "meetingBookedRate"):
        assert e[name] == pytest.approx(cur[name]), name
    trend = want["trend"]
    conversion = answer["trends"]["conversionTrend"]
    quality = answer["trends"]["leadQualityTrend"]
    assert [_ts(p["date"]) for p in conversion] == [t["date"] for t in trend]
    assert [p["count"] for p in conversion] == [t["count"] for t in trend]
    assert [p["rate"] for p in conversion] == pytest.approx([t["rate"] for t in trend])
    assert [p["count"] for p in quality] == [t["scored"] for t in trend]
    assert [p["score"] for p in quality] == pytest.approx([t["score"] for t in trend])


def set_thresholds(admin: Persona, **values: Any) -> dict[str, Any]:
    return admin.execute(THRESHOLDS, input=values)["updatePerformanceThresholds"]


@pytest.fixture
def default_thresholds(analytics_admin: Persona) -> Any:
    yield
    set_thresholds(analytics_admin, **DEFAULTS)


# ---- reads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", PERIODS)
def test_every_number_matches_a_recomputation_from_raw_rows(
    analytics_admin: Persona, analytics_sql: Any, period: str
) -> None:
    answer = analytics_admin.execute(PERFORMANCE, period=period)["workspace"]["performance"]
    assert answer["period"] == period
    assert (
        _ts(answer["windowEnd"]) - _ts(answer["windowStart"])
        == {
            "H1": timedelta(hours=1),
            "H24": timedelta(hours=24),
            "D7": timedelta(days=7),
            "D30": timedelta(days=30),
        }[period]
    )
    assert_matches(answer, expected(analytics_sql, "admin@acme.example", answer))


def test_the_seeded_month_has_data_to_compare(analytics_admin: Persona) -> None:
    """Guards the comparisons above against passing on zeros."""
    answer = analytics_admin.execute(PERFORMANCE, period="D30")["workspace"]["performance"]
    assert answer["summary"]["totalLeads"] > 0
    assert answer["summary"]["convertedLeads"] > 0
    assert answer["summary"]["responseTimeHours"] > 0
    assert answer["engagement"]["emailsSent"] > 0
    assert answer["conversion"]["byAgent"] and answer["conversion"]["bySource"]
    assert len(answer["trends"]["conversionTrend"]) in (30, 31)


@pytest.mark.parametrize(
    ("persona", "email"),
    [("analytics_user", "user@acme.example"), ("analytics_agent", "agent@acme.example")],
)
def test_users_and_agents_see_only_their_leads_numbers(
    request: pytest.FixtureRequest,
    analytics_admin: Persona,
    analytics_sql: Any,
    persona: str,
    email: str,
) -> None:
    viewer: Persona = request.getfixturevalue(persona)
    answer = viewer.execute(PERFORMANCE, period="D30")["workspace"]["performance"]
    assert_matches(answer, expected(analytics_sql, email, answer))
    whole = analytics_admin.execute(PERFORMANCE, period="D30")["workspace"]["performance"]
    assert answer["summary"]["totalLeads"] < whole["summary"]["totalLeads"]


def test_an_empty_workspace_answers_zeros_and_empty_lists(analytics_empty: Persona) -> None:
    """Every period, down to the last hour of a workspace where nothing ever happened."""
    for period in PERIODS:
        answer = analytics_empty.execute(PERFORMANCE, period=period)["workspace"]["performance"]
        assert answer["summary"] == {
            "totalLeads": 0,
            "activeLeads": 0,
            "convertedLeads": 0,
            "conversionRate": 0.0,
            "averageLeadScore": 0.0,
            "responseTimeHours": 0.0,
        }
        assert answer["leadGeneration"] == {"daily": 0, "weekly": 0, "monthly": 0, "growth": 0.0}
        assert answer["conversion"] == {"overallRate": 0.0, "bySource": [], "byAgent": []}
        assert answer["engagement"] == {
            "emailsSent": 0,
            "emailOpenRate": 0.0,
            "responseRate": 0.0,
            "meetingBookedRate": 0.0,
        }
        assert answer["alerts"] == []
        points = answer["trends"]["conversionTrend"]
        assert points and all(p["rate"] == 0.0 and p["count"] == 0 for p in points)
        assert answer["thresholds"] == {**DEFAULTS, "updatedAt": None}


@pytest.mark.parametrize("period", ["D90", "Y1"])
def test_longer_periods_are_refused_naming_the_field(analytics_admin: Persona, period: str) -> None:
    error = analytics_admin.error(PERFORMANCE, period=period)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "period" in error["extensions"]["details"]["fields"]


def test_a_write_moves_the_numbers_on_the_next_read(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    # given a read that fills the cache
    before = analytics_admin.execute(PERFORMANCE, period="H24")["workspace"]["performance"]
    # when a lead is created, emailed and won through the API
    lead_id = analytics_admin.execute(CREATE)["createLead"]["id"]
    analytics_admin.execute(EMAIL, id=lead_id)
    analytics_admin.execute(WIN, id=lead_id)
    # then the next read shows it
    after = analytics_admin.execute(PERFORMANCE, period="H24")["workspace"]["performance"]
    assert after["summary"]["totalLeads"] >= before["summary"]["totalLeads"] + 1
    assert after["summary"]["convertedLeads"] >= before["summary"]["convertedLeads"] + 1
    assert after["engagement"]["emailsSent"] >= before["engagement"]["emailsSent"] + 1
    assert_matches(after, expected(analytics_sql, "admin@acme.example", after))


# ---- alerts and thresholds ----------------------------------------------------------------------


def test_alerts_fire_when_a_configured_threshold_is_crossed(
    analytics_admin: Persona, analytics_sql: Any, default_thresholds: Any
) -> None:
    current = analytics_admin.execute(PERFORMANCE, period="D30")["workspace"]["performance"]
    rate = current["summary"]["conversionRate"]
    hours = current["summary"]["responseTimeHours"]
    score = current["summary"]["averageLeadScore"]
    # given thresholds the current values cross, and no trend alerts
    set_thresholds(
        analytics_admin,
        minConversionRate=rate + 0.01,
        maxResponseTimeHours=hours / 2,
        minAverageLeadScore=score + 1,
        minEmailOpenRate=None,
        minLeadGrowth=None,
        maxChange=10,
    )
    answer = analytics_admin.execute(PERFORMANCE, period="D30")["workspace"]["performance"]
    want = expected(analytics_sql, "admin@acme.example", answer)["cur"]
    alerts = {a["metric"]: a for a in answer["alerts"]}
    assert set(alerts) == {"conversionRate", "responseTimeHours", "averageLeadScore"}
    assert all(a["type"] == "THRESHOLD" and a["severity"] == "CRITICAL" for a in alerts.values())
    assert alerts["conversionRate"]["current"] == pytest.approx(want["conversionRate"])
    assert alerts["conversionRate"]["threshold"] == pytest.approx(rate + 0.01)
    assert alerts["responseTimeHours"]["current"] == pytest.approx(want["responseHours"])
    assert "above" in alerts["responseTimeHours"]["message"]
    assert alerts["averageLeadScore"]["current"] == pytest.approx(want["averageScore"])
    # when the thresholds are switched off, nothing fires
    set_thresholds(
        analytics_admin, minConversionRate=None, maxResponseTimeHours=None, minAverageLeadScore=None
    )
    quiet = analytics_admin.execute(PERFORMANCE, period="D30")["workspace"]["performance"]
    assert quiet["alerts"] == []


def test_trend_alerts_compare_with_the_previous_window(
    analytics_admin: Persona, analytics_sql: Any, default_thresholds: Any
) -> None:
    off = {k: None for k in DEFAULTS if k != "maxChange"}
    set_thresholds(analytics_admin, **off, maxChange=0.01)
    answer = analytics_admin.execute(PERFORMANCE, period="D7")["workspace"]["performance"]
    want = expected(analytics_sql, "admin@acme.example", answer)
    cur, prev = want["cur"], want["prev"]
    pairs = {
        "conversionRate": (cur["conversionRate"], prev["conversionRate"], False, prev["leads"]),
        "responseTimeHours": (cur["responseHours"], prev["responseHours"], True, prev["responded"]),
        "averageLeadScore": (cur["averageScore"], prev["averageScore"], False, prev["scored"]),
        "emailOpenRate": (cur["emailOpenRate"], prev["emailOpenRate"], False, prev["emailsSent"]),
    }
    worse = set()
    for metric, (now, before, higher_is_worse, sample) in pairs.items():
        if sample and before:
            change = (now - before) / before
            if (change if higher_is_worse else -change) >= 0.01:
                worse.add(metric)
    alerts = {a["metric"]: a for a in answer["alerts"]}
    assert set(alerts) == worse
    for metric in worse:
        assert alerts[metric]["type"] == "TREND" and alerts[metric]["severity"] == "WARNING"
        now, before, _, _ = pairs[metric]
        assert alerts[metric]["previous"] == pytest.approx(before)
        assert alerts[metric]["change"] == pytest.approx((now - before) / before)


def test_thresholds_are_validated_admin_only_and_audited(
    analytics_admin: Persona, analytics_user: Persona, analytics_sql: Any, default_thresholds: Any
) -> None:
    error = analytics_admin.error(THRESHOLDS, input={"minConversionRate": -1, "maxChange": None})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(error["extensions"]["details"]["fields"]) == {"minConversionRate", "maxChange"}
    assert (
        analytics_user.error(THRESHOLDS, input={"minConversionRate": 0.1})["extensions"]["code"]
        == "FORBIDDEN"
    )
    changed = set_thresholds(analytics_admin, minConversionRate=0.07)
    assert changed["minConversionRate"] == 0.07 and changed["updatedAt"] is not None
    audit = analytics_sql(
        "SELECT details FROM audit_log WHERE action = 'performance_thresholds.updated' "
        "ORDER BY id DESC LIMIT 1"
    )
    assert '"minConversionRate"' in audit[0]["details"]
    shown = analytics_user.execute(PERFORMANCE, period="H24")["workspace"]["performance"]
    assert shown["thresholds"]["minConversionRate"] == 0.07


# ---- performanceUpdated -------------------------------------------------------------------------


def test_subscription_snapshot_then_resend_after_a_write_and_isolation(
    analytics_server: ServerThread,
    analytics_admin: Persona,
    analytics_globex: Persona,
    analytics_sql: Any,
) -> None:
    run = write_in_one_tenant(
        analytics_server, analytics_admin, analytics_globex, UPDATED, CREATE, period="H24"
    )
    first, second, theirs, late = run.first, run.second, run.theirs, run.late
    assert second["summary"]["totalLeads"] >= first["summary"]["totalLeads"] + 1
    end = _ts(second["windowEnd"])
    counts = {
        r["workspace_id"]: r["n"]
        for r in analytics_sql(
            "SELECT workspace_id, count(*) AS n FROM lead "
            "WHERE created_at >= $1 AND created_at < $2 GROUP BY 1",
            end - timedelta(hours=24),
            end,
        )
    }
    acme, globex = (
        analytics_sql("SELECT id FROM workspace WHERE name = $1", name)[0]["id"]
        for name in ("Acme Realty", "Globex")
    )
    assert second["summary"]["totalLeads"] == counts.get(acme, 0)
    globex_end = _ts(theirs["windowEnd"])
    assert (
        theirs["summary"]["totalLeads"]
        == analytics_sql(
            "SELECT count(*) AS n FROM lead WHERE workspace_id = $1 AND created_at >= $2 "
            "AND created_at < $3",
            globex,
            globex_end - timedelta(hours=24),
            globex_end,
        )[0]["n"]
    )
    assert late == [], "a write in Acme reached a Globex subscriber"


def test_subscription_refuses_bad_periods_and_other_tenants(
    analytics_server: ServerThread, analytics_globex: Persona, analytics_sql: Any
) -> None:
    acme = analytics_sql("SELECT id FROM workspace WHERE name = 'Acme Realty'")[0]["id"]

    async def scenario() -> list[str]:
        codes = []
        async with subscribed(analytics_server, analytics_globex) as session:
            for variables in ({"period": "Y1"}, {"period": "H24", "ws": str(acme)}):
                with pytest.raises(TransportQueryError) as refused:
                    await anext(
                        session.subscribe(GraphQLRequest(UPDATED, variable_values=variables))
                    )
                codes.append(refused.value.errors[0]["extensions"]["code"])  # type: ignore[index]
        return codes

    assert asyncio.run(scenario()) == ["BAD_USER_INPUT", "NOT_FOUND"]
