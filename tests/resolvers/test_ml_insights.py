"""ML insights, market insights, the ML analytics dashboard and `mlInsightsUpdated` end to end
through gql, on a `small` database of this module's own with a trained, scored first model.
Expected numbers are recomputed here from raw rows (tests/ml/test_insights.py's helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from app.main import create_app
from ml.insights import MARKET_STEPS
from tests.client import Persona, login
from tests.conftest import (
    SCORED,
    ServerThread,
    fetch,
    record_predictions,
    seeded_database,
    settings_for,
)
from tests.ml.test_insights import expected_clusters, expected_market
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job
from tests.resolvers.test_subscriptions import subscribed, write_in_one_tenant

ACME, GLOBEX = 1, 2

INSIGHTS = """
query Insights($category: MlInsightCategory, $limit: Int!, $period: Period!) {
  workspace {
    mlInsights(category: $category, limit: $limit, period: $period) {
      insights {
        id category type title description impact confidence
        data { leadCount closedCount conversionRate averageScore averageBudget lift baseline
               current previous change }
        traits { dimension value }
        recommendations { action priority reason expectedImpact }
      }
      summary { totalInsights highImpact mediumImpact lowImpact leadsAnalysed
                categories { category count } }
      windowStart windowEnd generatedAt
    }
  }
}
"""
MARKET = """
query Market($location: String, $type: PropertyType, $timeframe: Period!) {
  workspace {
    marketInsights(location: $location, propertyType: $type, timeframe: $timeframe) {
      timeframe windowStart windowEnd granularity
      budgetTrend { points { periodStart count median average }
                    median { current previous change currentSampleSize previousSampleSize }
                    average { current } }
      priceTrend { points { count } median { current previous change } }
      demand { points { periodStart count } level
               newLeads { current previous change confidence }
               byPropertyType { key count share } byLocation { key count share } }
      daysToClose { current previous }
      conversionRate { current previous currentSampleSize confidence }
      recommendations { type action reason confidence }
      insights { id category data { current previous change } }
    }
  }
}
"""
ANALYTICS = """
query Analytics($period: Period!, $ws: ID) {
  mlAnalytics(period: $period, workspaceId: $ws) {
    period periodStart periodEnd granularity
    summary {
      modelsByStatus { status count } activeModels championVersion championTestAuc
      champion { id version }
      batchPredictions onlinePredictions totalPredictions onlineErrors averageConfidence
      leadsScored leadsWithScore totalLeads
    }
    models {
      model { id version status metrics { auc } }
      batchPredictions averageScore averageConfidence onlinePredictions onlineErrors errorRate
      latency { calls meanMs p50Ms p95Ms p99Ms }
    }
    systemHealth { cpuPercent memoryRssBytes memoryPercent queueDepth pubsubBackend
                   pubsubHealthy queue { kind queued running } }
    trends { periodStart predictions averageScore averageConfidence onlinePredictions
             averageLatencyMs }
  }
}
"""
SERVING = """
query Serving($period: Period!, $models: [ID!]) {
  mlAnalytics(period: $period, models: $models) {
    periodStart periodEnd
    summary { averageAccuracy averageLatencyMs alertsCount onlinePredictions onlineErrors }
    systemHealth { errorRate }
    models { model { id } onlinePredictions }
    alerts { model { id } type severity value threshold message recommendation }
    trends { periodStart onlinePredictions averageLatencyMs }
  }
}
"""
UPDATED = """
subscription Updated($ws: ID, $category: MlInsightCategory, $limit: Int!) {
  mlInsightsUpdated(workspaceId: $ws, category: $category, limit: $limit) {
    insights { id impact data { leadCount } }
    summary { totalInsights leadsAnalysed }
    generatedAt
  }
}
"""
SCORE = "mutation Score($ids: [ID!]) { scoreLeads(leadIds: $ids) { id } }"
CREATE = """
mutation Create($ws: ID) {
  createLead(workspaceId: $ws, input: {name: "Insight One", source: REFERRAL,
    location: "Austin, TX", propertyType: CONDO, timeline: IMMEDIATE, budget: 450000}) { id }
}
"""


@pytest.fixture(scope="module")
def insights_database(admin_database_url: str) -> str:
    """`small`, seeded up to the real now: the server's windows end at the real now."""
    return seeded_database(admin_database_url, "dashgraph_ml_insights_gql", "small")


@pytest.fixture(scope="module")
def insights_server(insights_database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(insights_database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(insights_server: ServerThread) -> Persona:
    return login(insights_server.url, "admin@acme.example")


@pytest.fixture(scope="module")
def user(insights_server: ServerThread) -> Persona:
    return login(insights_server.url, "user@acme.example")


@pytest.fixture(scope="module")
def agent(insights_server: ServerThread) -> Persona:
    return login(insights_server.url, "agent@acme.example")


@pytest.fixture(scope="module")
def globex(insights_server: ServerThread) -> Persona:
    return login(insights_server.url, "admin@globex.example")


@pytest.fixture(scope="module")
def trained(admin: Persona) -> dict[str, Any]:
    """Given the seeded leads, a first model is trained, promoted, and every lead scored."""
    job = admin.execute(RETRAIN, input=FAST)["retrainModel"]
    done = wait_for_job(admin, job["id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done
    scored = wait_for_job(admin, done["result"]["scoreJobId"], timeout=90)
    assert scored["status"] == "SUCCEEDED", scored
    result: dict[str, Any] = done["result"]
    return result


def record_ago(
    database: str, model_id: str, ago: timedelta, bucket: int, calls: int, ms: float, errors: int
) -> None:
    """Online predictions of the version `ago` before this minute (record_predictions)."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    record_predictions(
        database,
        ACME,
        int(model_id),
        minute - ago,
        bucket=bucket,
        calls=calls,
        latency_ms=ms,
        errors=errors,
    )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def code_of(persona: Persona, document: str, **variables: Any) -> str:
    return str(persona.error(document, **variables)["extensions"]["code"])


# ---- mlInsights ------------------------------------------------------------------------------


def test_clusters_through_gql_match_a_recomputation(
    trained: dict[str, Any], admin: Persona, insights_database: str
) -> None:
    data = admin.execute(INSIGHTS, category="HIGH_VALUE_CLUSTERS", limit=50, period="D30")
    found = data["workspace"]["mlInsights"]
    expected = expected_clusters(insights_database)
    assert {i["id"] for i in found["insights"]} == set(expected)
    assert found["summary"]["totalInsights"] == len(expected)
    for insight in found["insights"]:
        want = expected[insight["id"]]
        assert insight["category"] == "HIGH_VALUE_CLUSTERS" and insight["type"] == "OPPORTUNITY"
        assert insight["data"]["leadCount"] == want["n"]
        assert insight["data"]["averageScore"] == pytest.approx(want["avg"])
        assert insight["data"]["lift"] == pytest.approx(want["lift"])
        assert insight["impact"] == want["impact"]
        # working them first should bring the wins their closed look-alikes' rate predicts
        expected_impact = insight["recommendations"][0]["expectedImpact"]
        if want["rate"] is None:
            assert expected_impact is None
        else:
            assert f"About {round(want['n'] * want['rate'])} wins" in expected_impact
            assert f"{want['closed']} closed" in expected_impact
        assert {t["dimension"] for t in insight["traits"]} == {
            "location",
            "propertyType",
            "timeline",
        }
    leads = fetch(insights_database, "SELECT count(*) FROM lead WHERE workspace_id = $1", ACME)
    assert found["summary"]["leadsAnalysed"] == leads[0][0]


def test_every_category_with_a_limit(trained: dict[str, Any], admin: Persona) -> None:
    found = admin.execute(INSIGHTS, category=None, limit=3, period="D90")["workspace"]["mlInsights"]
    summary = found["summary"]
    assert len(found["insights"]) == min(3, summary["totalInsights"])
    assert summary["totalInsights"] > 0  # the seed grows: at least its trends show
    assert (
        summary["highImpact"] + summary["mediumImpact"] + summary["lowImpact"]
        == summary["totalInsights"]
        == sum(c["count"] for c in summary["categories"])
    )
    for insight in found["insights"]:
        assert 0 <= insight["confidence"] < 1
        assert insight["recommendations"] and insight["description"]


def test_a_user_sees_insights_of_their_own_leads(
    trained: dict[str, Any], user: Persona, insights_database: str
) -> None:
    found = user.execute(INSIGHTS, category=None, limit=5, period="D30")["workspace"]["mlInsights"]
    own = fetch(
        insights_database,
        "SELECT count(*) FROM lead l JOIN app_user u ON u.id = l.owner_id "
        "WHERE l.workspace_id = $1 AND u.email = 'user@acme.example'",
        ACME,
    )[0][0]
    assert found["summary"]["leadsAnalysed"] == own


@pytest.mark.parametrize("limit", [0, 51])
def test_limit_outside_1_to_50_is_bad_input(admin: Persona, limit: int) -> None:
    error = admin.error(INSIGHTS, category=None, limit=limit, period="D30")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "limit" in error["extensions"]["details"]["fields"]


def test_unknown_category_and_short_period_are_refused(admin: Persona) -> None:
    assert code_of(admin, INSIGHTS, category="NOPE", limit=5, period="D30") == "BAD_USER_INPUT"
    assert code_of(admin, INSIGHTS, category=None, limit=5, period="H1") == "BAD_USER_INPUT"


CACHE = "query Cache { realtimeStatus { cache { hits misses } } }"
CREATE_IN_ACME = 'mutation { createLead(input: {name: "Cache Buster", source: WEBSITE}) { id } }'


def test_a_repeated_read_is_served_from_the_cache_until_a_write(
    trained: dict[str, Any], admin: Persona
) -> None:
    def cache() -> dict[str, int]:
        return dict(admin.execute(CACHE)["realtimeStatus"]["cache"])

    def read() -> dict[str, Any]:
        found = admin.execute(INSIGHTS, category="OPERATIONAL", limit=7, period="D7")
        report: dict[str, Any] = found["workspace"]["mlInsights"]
        report.pop("generatedAt")  # when this answer was sent
        return report

    first = read()
    before = cache()
    # the same read again is a cache hit with the same answer
    assert read() == first
    after = cache()
    assert (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"])
    # a write of the workspace through the API makes the next read compute again
    admin.execute(CREATE_IN_ACME)
    again = read()
    assert cache()["misses"] == after["misses"] + 1
    assert again["summary"]["leadsAnalysed"] == first["summary"]["leadsAnalysed"] + 1


# ---- marketInsights ----------------------------------------------------------------------------


def test_market_insights_match_a_recomputation(admin: Persona, insights_database: str) -> None:
    m = admin.execute(MARKET, timeframe="D90")["workspace"]["marketInsights"]
    want = expected_market(insights_database, 90, end=when(m["windowEnd"]))
    assert m["timeframe"] == "D90" and m["granularity"] == "WEEK"
    assert want["new_now"] > 0 and want["closed_now"] > 0
    assert m["budgetTrend"]["median"]["current"] == pytest.approx(want["budget_now"])
    assert m["budgetTrend"]["median"]["previous"] == pytest.approx(want["budget_before"])
    assert m["budgetTrend"]["average"]["current"] == pytest.approx(want["budget_mean"])
    assert m["priceTrend"]["median"]["current"] == pytest.approx(want["price_now"])
    assert m["priceTrend"]["median"]["previous"] == pytest.approx(want["price_before"])
    assert m["demand"]["newLeads"]["current"] == want["new_now"]
    assert m["demand"]["newLeads"]["previous"] == want["new_before"]
    assert sum(p["count"] for p in m["demand"]["points"]) == want["new_now"]
    assert {s["key"]: s["count"] for s in m["demand"]["byPropertyType"]} == want["types"]
    assert m["daysToClose"]["current"] == pytest.approx(want["days_now"])
    assert m["conversionRate"]["current"] == pytest.approx(want["rate_now"])
    assert m["conversionRate"]["currentSampleSize"] == want["closed_now"]
    # the moves big enough to tell (MARKET_STEPS: 5% and more) are its insights
    moves = {
        "market:budget": (want["budget_now"], want["budget_before"]),
        "market:price": (want["price_now"], want["price_before"]),
        "market:demand": (want["new_now"], want["new_before"]),
    }
    told = {
        key: (now - before) / before
        for key, (now, before) in moves.items()
        if now is not None and before and abs(now - before) / before >= MARKET_STEPS[0]
    }
    assert {i["id"] for i in m["insights"]} == set(told)
    for insight in m["insights"]:
        assert insight["category"] == "MARKET_TRENDS"
        now, before = moves[insight["id"]]
        assert insight["data"]["current"] == pytest.approx(now)
        assert insight["data"]["previous"] == pytest.approx(before)
        assert insight["data"]["change"] == pytest.approx(told[insight["id"]])


def test_market_filter_with_no_data_gives_zeros(admin: Persona) -> None:
    m = admin.execute(MARKET, location="Atlantis", type="LAND", timeframe="D7")["workspace"][
        "marketInsights"
    ]
    assert m["granularity"] == "DAY"
    assert m["demand"]["newLeads"]["current"] == 0 and m["demand"]["newLeads"]["change"] is None
    assert m["demand"]["points"] == [] and m["demand"]["byLocation"] == []
    assert m["budgetTrend"]["points"] == [] and m["budgetTrend"]["median"]["current"] is None
    assert m["priceTrend"]["median"]["current"] is None
    assert m["conversionRate"]["current"] is None and m["conversionRate"]["confidence"] == 0
    assert m["recommendations"] == [] and m["insights"] == []


def test_market_bad_timeframe_is_refused(admin: Persona) -> None:
    error = admin.error(MARKET, timeframe="H24")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "timeframe" in error["extensions"]["details"]["fields"]


# ---- mlAnalytics -------------------------------------------------------------------------------


def test_ml_analytics_counts_match_the_rows(
    trained: dict[str, Any], admin: Persona, insights_database: str
) -> None:
    a = admin.execute(ANALYTICS, period="D7")["mlAnalytics"]
    start, end = when(a["periodStart"]), when(a["periodEnd"])
    models = pl.DataFrame(
        [
            dict(r)
            for r in fetch(
                insights_database,
                "SELECT id, version, status, alias, (metrics->'test'->>'auc')::float AS auc "
                "FROM ml_model WHERE workspace_id = $1",
                ACME,
            )
        ]
    )
    scores = pl.DataFrame(
        [
            dict(r)
            for r in fetch(
                insights_database,
                "SELECT lead_id, model_id, value, confidence, scored_at FROM lead_score "
                "WHERE workspace_id = $1 AND scored_at >= $2 AND scored_at < $3",
                ACME,
                start,
                end,
            )
        ]
    )
    summary = a["summary"]
    assert {s["status"]: s["count"] for s in summary["modelsByStatus"]} == dict(
        models.group_by("status").len().rows()
    )
    champion = models.filter(pl.col("alias") == "champion").row(0, named=True)
    assert summary["champion"]["id"] == str(champion["id"]) == trained["modelId"]
    assert summary["championVersion"] == champion["version"]
    assert summary["championTestAuc"] == pytest.approx(champion["auc"])
    assert summary["batchPredictions"] == scores.height > 0
    assert summary["leadsScored"] == scores["lead_id"].n_unique()
    assert summary["averageConfidence"] == pytest.approx(scores["confidence"].mean())
    assert summary["totalPredictions"] == summary["batchPredictions"] + summary["onlinePredictions"]
    per_model = dict(scores.group_by("model_id").len().rows())
    listed = {m["model"]["id"]: m for m in a["models"]}
    assert set(listed) == {
        str(i) for i in models.filter(pl.col("status").is_in(["ACTIVE", "CANDIDATE"]))["id"]
    }
    for model_id, usage in listed.items():
        assert usage["batchPredictions"] == per_model.get(int(model_id), 0)
    daily = scores.group_by(pl.col("scored_at").dt.truncate("1d")).agg(
        n=pl.len(), avg=pl.col("value").mean()
    )
    assert a["granularity"] == "DAY"
    # (buckets with online predictions only have no batch ones)
    batch_days = [t["predictions"] for t in a["trends"] if t["predictions"]]
    assert sorted(batch_days) == sorted(daily["n"].to_list())
    assert sum(t["predictions"] for t in a["trends"]) == scores.height
    health = a["systemHealth"]
    assert health["cpuPercent"] >= 0 and health["memoryRssBytes"] > 10_000_000
    assert 0 < health["memoryPercent"] <= 100
    assert health["pubsubHealthy"] is True and health["pubsubBackend"] == "memory"
    assert health["queueDepth"] >= sum(q["queued"] for q in health["queue"])


def test_ml_analytics_latency_errors_accuracy_and_alerts_come_from_the_rows(
    trained: dict[str, Any], admin: Persona, insights_database: str
) -> None:
    champion = trained["modelId"]

    def record(ago: timedelta, bucket: int, calls: int, ms: float, errors: int) -> None:
        record_ago(insights_database, champion, ago, bucket, calls, ms, errors)

    # given the champion's fast predictions of the week before, and slow ones (some failing)
    # two days ago: its p95 went up by far more than the ML config's 100 ms
    record(timedelta(days=9, minutes=3), 2, 200, 1.5, 0)
    record(timedelta(days=2, minutes=3), 10, 60, 700.0, 3)
    record(timedelta(days=1, minutes=3), 4, 40, 7.0, 1)
    a = admin.execute(SERVING, period="D7")["mlAnalytics"]
    start, end = when(a["periodStart"]), when(a["periodEnd"])
    stats = pl.DataFrame(
        [
            dict(r)
            for r in fetch(
                insights_database,
                "SELECT minute, count, errors, latency_sum_ms, "
                "(SELECT sum(b) FROM unnest(latency_buckets) b)::bigint AS calls "
                "FROM ml_prediction_stat WHERE workspace_id = $1 AND minute >= $2 AND minute < $3",
                ACME,
                start.replace(second=0, microsecond=0),
                end,
            )
        ]
    )
    summary = a["summary"]
    # then latency and error rate are those of the period's online predictions
    assert summary["onlinePredictions"] == stats["count"].sum()
    assert summary["averageLatencyMs"] == pytest.approx(
        stats["latency_sum_ms"].sum() / stats["calls"].sum()
    )
    assert a["systemHealth"]["errorRate"] == pytest.approx(
        stats["errors"].sum() / stats["count"].sum()
    )
    daily = stats.group_by(pl.col("minute").dt.truncate("1d")).agg(
        n=pl.col("count").sum(), ms=pl.col("latency_sum_ms").sum() / pl.col("calls").sum()
    )
    online = {when(t["periodStart"]): t for t in a["trends"] if t["onlinePredictions"]}
    assert set(online) == set(daily["minute"])
    for day, n, ms in daily.iter_rows():
        assert online[day]["onlinePredictions"] == n
        assert online[day]["averageLatencyMs"] == pytest.approx(ms)
    # accuracy: the serving versions' test-split accuracy
    active = fetch(
        insights_database,
        "SELECT (metrics->'test'->>'accuracy')::float FROM ml_model "
        "WHERE workspace_id = $1 AND status = 'ACTIVE'",
        ACME,
    )
    assert summary["averageAccuracy"] == pytest.approx(sum(r[0] for r in active) / len(active))
    # and the champion's latency alert, with what to do about it
    latency = [x for x in a["alerts"] if x["type"] == "LATENCY_INCREASE"]
    assert [x["model"]["id"] for x in latency] == [champion]
    assert latency[0]["severity"] == "CRITICAL" and latency[0]["value"] > 2 * 100
    assert latency[0]["threshold"] == 100 and latency[0]["recommendation"]
    assert summary["alertsCount"] == len(a["alerts"])
    # the versions listed can be chosen; unknown ones are not found
    chosen = admin.execute(SERVING, period="D7", models=[champion])["mlAnalytics"]["models"]
    assert [m["model"]["id"] for m in chosen] == [champion]
    assert code_of(admin, SERVING, period="D7", models=[champion, "987654"]) == "MODEL_NOT_FOUND"


def test_model_performance_insights_are_the_serving_versions_alerts(
    trained: dict[str, Any], admin: Persona, user: Persona, insights_database: str
) -> None:
    champion = trained["modelId"]
    # given the champion's fast predictions of last week and slow ones since
    for ago, bucket, calls, ms in (
        (timedelta(days=10), 2, 300, 1.5),
        (timedelta(days=3), 10, 90, 650.0),
    ):
        record_ago(insights_database, champion, ago, bucket, calls, ms, 0)
    alerts = admin.execute(SERVING, period="D7")["mlAnalytics"]["alerts"]
    found = admin.execute(INSIGHTS, category="MODEL_PERFORMANCE", limit=50, period="D7")
    risks = [i for i in found["workspace"]["mlInsights"]["insights"] if i["type"] == "RISK"]
    # then each alert of the ML dashboard is a RISK insight, with its value and what to do
    assert alerts and len(risks) == len(alerts)
    by_id = {i["id"]: i for i in risks}
    for alert in alerts:
        insight = by_id[f"model:{alert['model']['id']}:{alert['type']}"]
        assert insight["category"] == "MODEL_PERFORMANCE"
        assert insight["impact"] == ("HIGH" if alert["severity"] == "CRITICAL" else "MEDIUM")
        assert insight["description"] == alert["message"]
        assert insight["data"]["current"] == pytest.approx(alert["value"])
        assert insight["data"]["baseline"] == pytest.approx(alert["threshold"])
        assert insight["recommendations"][0]["action"] == alert["recommendation"]
        assert {"dimension": "model", "value": alert["model"]["id"]} in insight["traits"]
    assert f"model:{champion}:LATENCY_INCREASE" in by_id
    # a USER's insights are about their leads: no model alerts
    theirs = user.execute(INSIGHTS, category="MODEL_PERFORMANCE", limit=50, period="D7")
    assert theirs["workspace"]["mlInsights"]["insights"] == []


def test_ml_analytics_is_for_admins(user: Persona, agent: Persona, globex: Persona) -> None:
    assert code_of(user, ANALYTICS, period="H24") == "FORBIDDEN"
    assert code_of(agent, ANALYTICS, period="H24") == "FORBIDDEN"
    assert code_of(globex, ANALYTICS, period="H24", ws=str(ACME)) == "NOT_FOUND"


def test_ml_analytics_of_a_workspace_without_models(globex: Persona) -> None:
    a = globex.execute(ANALYTICS, period="H1")["mlAnalytics"]
    assert a["granularity"] == "HOUR"
    assert a["summary"]["champion"] is None and a["summary"]["championTestAuc"] is None
    assert a["summary"]["batchPredictions"] == 0 and a["summary"]["averageConfidence"] is None
    assert a["models"] == [] and a["trends"] == []


# ---- mlInsightsUpdated -------------------------------------------------------------------------


def test_subscription_snapshot_then_update_and_isolation(
    trained: dict[str, Any],
    insights_server: ServerThread,
    admin: Persona,
    globex: Persona,
    insights_database: str,
) -> None:
    run = write_in_one_tenant(insights_server, admin, globex, UPDATED, CREATE, limit=5)
    first, second, theirs, late = run.first, run.second, run.theirs, run.late
    assert second["summary"]["leadsAnalysed"] == first["summary"]["leadsAnalysed"] + 1
    counts = dict(
        fetch(insights_database, "SELECT workspace_id, count(*) FROM lead GROUP BY workspace_id")
    )
    assert second["summary"]["leadsAnalysed"] == counts[ACME]
    assert theirs["summary"]["leadsAnalysed"] == counts[GLOBEX]
    assert late == [], "a write in Acme reached a Globex subscriber"


def test_an_unchanged_summary_is_not_sent_again(
    trained: dict[str, Any], insights_server: ServerThread, admin: Persona, insights_database: str
) -> None:
    """Rescoring leads with the same model changes no cluster: the group recomputes on the
    `lead_score` event but sends nothing; the next snapshot is the one a new lead causes."""
    open_ids = [
        str(r["id"])
        for r in fetch(
            insights_database,
            f"SELECT l.id FROM lead l {SCORED} WHERE l.workspace_id = $1 AND c.value IS NOT NULL "
            "AND l.stage NOT IN ('WON', 'LOST') ORDER BY c.value DESC, l.id LIMIT 20",
            ACME,
        )
    ]
    variables = {"limit": 50, "category": "HIGH_VALUE_CLUSTERS"}

    hub = insights_server.services.hub

    async def scenario() -> tuple[dict[str, Any], list[Any], int, dict[str, Any]]:
        async with subscribed(insights_server, admin) as session:
            stream = session.subscribe(GraphQLRequest(UPDATED, variable_values=variables))
            received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

            async def read() -> None:
                # one reader: cancelling a pending `anext` would end gql's subscription
                async for result in stream:
                    received.put_nowait(result["mlInsightsUpdated"])

            reader = asyncio.create_task(read())
            try:
                first = await asyncio.wait_for(received.get(), 10)
                before = hub.stats.recomputes
                job = (await asyncio.to_thread(admin.execute, SCORE, ids=open_ids))["scoreLeads"]
                done = await asyncio.to_thread(wait_for_job, admin, job["id"])
                assert done["status"] == "SUCCEEDED", done
                await asyncio.sleep(1.5)  # several ticks after the lead_score event
                resent = [received.get_nowait() for _ in range(received.qsize())]
                recomputed = hub.stats.recomputes - before
                await asyncio.to_thread(admin.execute, CREATE)
                after = await asyncio.wait_for(received.get(), 10)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            return first, resent, recomputed, after

    first, resent, recomputed, after = asyncio.run(scenario())
    assert recomputed >= 1, "the lead_score event did not reach the group"
    assert resent == []
    assert after["summary"]["leadsAnalysed"] == first["summary"]["leadsAnalysed"] + 1
    assert after["insights"] == first["insights"]


def test_subscription_refuses_bad_limit_and_other_tenants(
    insights_server: ServerThread, globex: Persona
) -> None:
    async def scenario() -> list[str]:
        codes = []
        async with subscribed(insights_server, globex) as session:
            for variables in ({"limit": 0}, {"limit": 5, "ws": str(ACME)}):
                with pytest.raises(TransportQueryError) as refused:
                    await anext(
                        session.subscribe(GraphQLRequest(UPDATED, variable_values=variables))
                    )
                codes.append(refused.value.errors[0]["extensions"]["code"])
        return codes

    assert asyncio.run(scenario()) == ["BAD_USER_INPUT", "NOT_FOUND"]
