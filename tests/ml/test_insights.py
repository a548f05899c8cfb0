"""ML and market insights on the seeded `tiny` data at a fixed NOW, each number recomputed here
with polars over raw rows this test reads itself."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from ml import insights, market
from ml.insights import Impact, InsightCategory
from models.db import Database
from models.errors import BadUserInput
from models.leads import store_scores
from models.ml_models import MlModel
from models.scope import Scope
from models.workspaces import Role
from tests.conftest import SCORED, fetch, seeded_database

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1


@pytest.fixture(scope="module")
def url(admin_database_url: str) -> str:
    """`tiny`, with Acme's open leads scored 30 + id % 20, except two segments this test makes:
    15 open leads moved to (Testville, CONDO, IMMEDIATE) score 80, 12 to (Testville, LAND,
    BROWSING) score 55; the first condo cluster also gets closed look-alikes (3 WON, 5 LOST)."""
    url = seeded_database(admin_database_url, "dashgraph_insights_ml", "tiny", now=NOW)
    rows = fetch(
        url,
        "SELECT id FROM lead WHERE workspace_id = $1 AND stage NOT IN ('WON', 'LOST') ORDER BY id",
        ACME,
    )
    ids = [r["id"] for r in rows]
    made = {"CONDO": (ids[0:30:2], "IMMEDIATE", 80), "LAND": (ids[1:24:2], "BROWSING", 55)}
    for stage, n in (("WON", 3), ("LOST", 5)):
        fetch(
            url,
            "UPDATE lead SET location = 'Testville', property_type = 'CONDO', "
            "timeline = 'IMMEDIATE' WHERE workspace_id = $1 AND id IN (SELECT id FROM lead "
            "WHERE workspace_id = $1 AND stage = $2 ORDER BY id LIMIT $3)",
            ACME,
            stage,
            n,
        )
    values = {i: 30 + i % 20 for i in ids}
    for kind, (members, timeline, score) in made.items():
        fetch(
            url,
            "UPDATE lead SET location = 'Testville', property_type = $2, timeline = $3 "
            "WHERE workspace_id = $1 AND id = ANY($4::bigint[])",
            ACME,
            kind,
            timeline,
            members,
        )
        values.update(dict.fromkeys(members, score))
    scores = [values[i] for i in ids]

    async def write() -> None:
        db = Database(url, pool_size=1)
        try:
            async with db.transaction() as session:
                await store_scores(
                    session,
                    ACME,
                    None,
                    "test",
                    ids,
                    scores,
                    [v / 100 for v in scores],
                    [abs(v / 100 - 0.5) * 2 for v in scores],
                    scored_at=NOW,
                )
        finally:
            await db.dispose()

    asyncio.run(write())
    return url


@pytest.fixture(scope="module")
def admin(url: str) -> Scope:
    row = fetch(
        url,
        "SELECT m.user_id FROM membership m JOIN app_user u ON u.id = m.user_id "
        "WHERE u.email = 'admin@acme.example'",
    )[0]
    return Scope(ACME, row["user_id"], Role.ADMIN)


def run(url: str, call: Any) -> Any:
    async def go() -> Any:
        db = Database(url, pool_size=1)
        try:
            async with db.session() as session:
                return await call(session)
        finally:
            await db.dispose()

    return asyncio.run(go())


def leads_frame(url: str, workspace_id: int = ACME) -> pl.DataFrame:
    rows = fetch(
        url,
        "SELECT l.id, l.created_at, l.budget, l.value, l.stage, l.converted_at, l.source, "
        f"l.location, l.property_type, l.timeline, c.value AS score FROM lead l {SCORED} "
        "WHERE l.workspace_id = $1",
        workspace_id,
    )
    return pl.DataFrame([dict(r) for r in rows], infer_schema_length=None)


def lost_at(url: str, start: datetime, end: datetime, workspace_id: int = ACME) -> pl.DataFrame:
    rows = fetch(
        url,
        "SELECT lead_id AS id, max(occurred_at) AS lost_at FROM lead_event WHERE workspace_id = $1"
        " AND to_stage = 'LOST' AND occurred_at >= $2 AND occurred_at < $3 GROUP BY lead_id",
        workspace_id,
        start,
        end,
    )
    schema = {"id": pl.Int64, "lost_at": pl.Datetime("us", "UTC")}
    return pl.DataFrame([dict(r) for r in rows], schema=schema)


def closes(url: str, start: datetime, end: datetime, workspace_id: int = ACME) -> pl.DataFrame:
    """Leads closed in [start, end): WON at converted_at, LOST at the newest LOST event."""
    leads = leads_frame(url, workspace_id)
    won = leads.filter(
        pl.col("stage") == "WON", pl.col("converted_at") >= start, pl.col("converted_at") < end
    ).with_columns(closed_at=pl.col("converted_at"))
    lost = (
        leads.filter(pl.col("stage") == "LOST")
        .join(lost_at(url, start, end, workspace_id), on="id")
        .with_columns(closed_at=pl.col("lost_at"))
        .drop("lost_at")
    )
    return pl.concat([won, lost]).with_columns(won=pl.col("stage") == "WON")


# ---- clusters ----------------------------------------------------------------------------------


def expected_clusters(url: str, workspace_id: int = ACME) -> dict[str, dict[str, Any]]:
    leads = leads_frame(url, workspace_id)
    open_scored = leads.filter(
        ~pl.col("stage").is_in(["WON", "LOST"]), pl.col("score").is_not_null()
    )
    baseline = open_scored["score"].mean()
    segment = ["location", "property_type", "timeline"]
    outcomes = leads.group_by(segment).agg(
        won=(pl.col("stage") == "WON").sum(), lost=(pl.col("stage") == "LOST").sum()
    )
    groups = (
        open_scored.drop_nulls(segment)
        .group_by(segment)
        .agg(n=pl.len(), avg=pl.col("score").mean(), budget=pl.col("budget").mean())
        .with_columns(lift=pl.col("avg") / baseline)
        .filter(pl.col("n") >= 10, pl.col("lift") >= 1.2)
        .join(outcomes, on=segment, how="left")
    )
    out = {}
    for g in groups.iter_rows(named=True):
        closed = g["won"] + g["lost"]
        out[f"cluster:{g['location']}|{g['property_type']}|{g['timeline']}"] = {
            "n": g["n"],
            "avg": g["avg"],
            "lift": g["lift"],
            "budget": g["budget"],
            "rate": g["won"] / closed if closed else None,
            "closed": closed,
            "baseline": baseline,
            "impact": "HIGH" if g["lift"] >= 1.6 else "MEDIUM" if g["lift"] >= 1.35 else "LOW",
        }
    return out


def test_high_value_clusters_match_a_recomputation(url: str, admin: Scope) -> None:
    report = run(
        url,
        lambda s: insights.ml_insights(
            s, admin, category=InsightCategory.HIGH_VALUE_CLUSTERS, limit=50, now=NOW
        ),
    )
    expected = expected_clusters(url)
    assert {"cluster:Testville|CONDO|IMMEDIATE", "cluster:Testville|LAND|BROWSING"} <= set(expected)
    assert {i.id for i in report.insights} == set(expected)
    assert expected  # the seed grows: there are trends to find
    assert report.total == len(expected)
    for found in report.insights:
        want = expected[found.id]
        n = found.numbers
        assert n.lead_count == want["n"]
        assert n.average_score == pytest.approx(want["avg"])
        assert n.lift == pytest.approx(want["lift"])
        assert n.baseline == pytest.approx(want["baseline"])
        assert n.average_budget == pytest.approx(want["budget"])
        assert n.closed_count == want["closed"]
        assert n.conversion_rate == pytest.approx(want["rate"])
        assert found.impact.value == want["impact"]
        assert found.confidence == pytest.approx(1 - 1 / math.sqrt(want["n"]))
        assert found.recommendations and str(want["n"]) in found.recommendations[0].action
        # working them first should bring the wins their closed look-alikes' rate predicts
        impact = found.recommendations[0].expected_impact
        if want["rate"] is None:
            assert impact is None
        else:
            assert impact is not None
            assert f"About {round(want['n'] * want['rate'])} wins" in impact
    # most important first
    ranks = [("HIGH", "MEDIUM", "LOW").index(i.impact.value) for i in report.insights]
    assert ranks == sorted(ranks)
    assert report.insights[0].impact is Impact.HIGH
    condos = expected["cluster:Testville|CONDO|IMMEDIATE"]
    assert (condos["closed"], condos["rate"]) == (8, 3 / 8)


def test_limit_cuts_the_list_not_the_summary(url: str, admin: Scope) -> None:
    report = run(url, lambda s: insights.ml_insights(s, admin, limit=1, timeframe="Y1", now=NOW))
    assert len(report.insights) == 1
    assert report.total == sum(report.by_impact.values()) == sum(report.by_category.values())
    assert report.total >= 2
    assert report.leads_analysed == leads_frame(url).height


@pytest.mark.parametrize("limit", [0, 51, -3])
def test_limit_outside_1_to_50_is_refused(url: str, admin: Scope, limit: int) -> None:
    with pytest.raises(BadUserInput) as refused:
        run(url, lambda s: insights.ml_insights(s, admin, limit=limit, now=NOW))
    assert "limit" in refused.value.details["fields"]


def test_no_scores_means_no_clusters(url: str) -> None:
    globex = Scope(2, 0, Role.ADMIN)  # no scores were written there
    report = run(
        url,
        lambda s: insights.ml_insights(
            s, globex, category=InsightCategory.HIGH_VALUE_CLUSTERS, now=NOW
        ),
    )
    assert report.insights == [] and report.total == 0
    assert report.leads_analysed > 0


# ---- segment trends ---------------------------------------------------------------------------


def test_segment_trends_match_a_recomputation(url: str, admin: Scope) -> None:
    year = timedelta(days=365)
    start, middle = NOW - 2 * year, NOW - year
    closed = closes(url, start, NOW).with_columns(now=pl.col("closed_at") >= middle)
    created = (
        leads_frame(url)
        .filter(pl.col("created_at") >= start, pl.col("created_at") < NOW)
        .with_columns(now=pl.col("created_at") >= middle)
    )
    expected: dict[str, tuple[float, str]] = {}
    for dim in ("source", "property_type", "location"):
        for row in (
            closed.drop_nulls(dim)
            .group_by(dim)
            .agg(
                a=pl.col("now").sum(),
                b=(~pl.col("now")).sum(),
                wa=(pl.col("now") & pl.col("won")).sum(),
                wb=(~pl.col("now") & pl.col("won")).sum(),
            )
            .iter_rows(named=True)
        ):
            if row["a"] >= 20 and row["b"] >= 20:
                delta = row["wa"] / row["a"] - row["wb"] / row["b"]
                if abs(delta) >= 0.05:
                    kind = "OPPORTUNITY" if delta > 0 else "RISK"
                    expected[f"trend:{dim}:{row[dim]}:winRate"] = (delta, kind)
        for row in (
            created.drop_nulls(dim)
            .group_by(dim)
            .agg(a=pl.col("now").sum(), b=(~pl.col("now")).sum())
            .iter_rows(named=True)
        ):
            if row["b"] >= 20:
                relative = (row["a"] - row["b"]) / row["b"]
                if abs(relative) >= 0.25:
                    kind = "TREND" if relative > 0 else "RISK"
                    expected[f"trend:{dim}:{row[dim]}:newLeads"] = (relative, kind)

    report = run(
        url,
        lambda s: insights.ml_insights(
            s, admin, category=InsightCategory.SEGMENT_TRENDS, limit=50, timeframe="Y1", now=NOW
        ),
    )
    assert expected  # the seed grows: there are trends to find
    assert report.total == len(expected)
    assert {i.id: i.type.value for i in report.all_insights} == {
        k: kind for k, (_, kind) in expected.items()
    }
    for found in report.all_insights:
        assert found.numbers.change == pytest.approx(expected[found.id][0])


# ---- market --------------------------------------------------------------------------------------


def expected_market(
    url: str,
    days: int,
    location: str | None = None,
    kind: str | None = None,
    *,
    end: datetime = NOW,
    workspace_id: int = ACME,
) -> dict[str, Any]:
    """The market numbers of the `days` before `end` and the `days` before those."""
    length = timedelta(days=days)
    start, middle = end - 2 * length, end - length
    leads = leads_frame(url, workspace_id)
    closed = closes(url, start, end, workspace_id)
    if location is not None:
        leads = leads.filter(pl.col("location").str.to_lowercase() == location.lower())
        closed = closed.filter(pl.col("location").str.to_lowercase() == location.lower())
    if kind is not None:
        leads = leads.filter(pl.col("property_type") == kind)
        closed = closed.filter(pl.col("property_type") == kind)
    now_new = leads.filter(pl.col("created_at") >= middle, pl.col("created_at") < end)
    old_new = leads.filter(pl.col("created_at") >= start, pl.col("created_at") < middle)
    now_closed = closed.filter(pl.col("closed_at") >= middle)
    old_closed = closed.filter(pl.col("closed_at") < middle)
    now_won = now_closed.filter(pl.col("won"))
    days_now = (now_won["closed_at"] - now_won["created_at"]).dt.total_seconds() / 86_400
    return {
        "budget_now": now_new["budget"].median(),
        "budget_before": old_new["budget"].median(),
        "budget_mean": now_new["budget"].mean(),
        "price_now": now_won["value"].median(),
        "price_before": old_closed.filter(pl.col("won"))["value"].median(),
        "new_now": now_new.height,
        "new_before": old_new.height,
        "days_now": days_now.median() if days_now.len() else None,
        "rate_now": now_won.height / now_closed.height if now_closed.height else None,
        "closed_now": now_closed.height,
        "types": dict(
            now_new.select(pl.col("property_type").fill_null("UNSPECIFIED"))
            .group_by("property_type")
            .len()
            .rows()
        ),
    }


def test_market_numbers_match_a_recomputation(url: str, admin: Scope) -> None:
    m = run(url, lambda s: market.market_insights(s, admin, timeframe="D90", now=NOW))
    want = expected_market(url, 90)
    assert want["new_now"] > 0 and want["closed_now"] > 0  # the check means something
    assert m.budget.median.current == pytest.approx(want["budget_now"])
    assert m.budget.median.previous == pytest.approx(want["budget_before"])
    assert m.budget.average.current == pytest.approx(want["budget_mean"])
    assert m.budget.median.change == pytest.approx(
        (want["budget_now"] - want["budget_before"]) / want["budget_before"]
    )
    assert m.price.median.current == pytest.approx(want["price_now"])
    assert m.price.median.previous == pytest.approx(want["price_before"])
    assert m.demand.new_leads.current == want["new_now"]
    assert m.demand.new_leads.previous == want["new_before"]
    assert sum(p.count for p in m.demand.points) == want["new_now"]
    assert {s.key: s.count for s in m.demand.by_property_type} == want["types"]
    assert sum(s.share for s in m.demand.by_location) == pytest.approx(1.0)
    assert m.days_to_close.current == pytest.approx(want["days_now"])
    assert m.conversion_rate.current == pytest.approx(want["rate_now"])
    assert m.conversion_rate.current_count == want["closed_now"]
    assert m.bucket == "1w"


def test_market_filters_narrow_the_numbers(url: str, admin: Scope) -> None:
    top = leads_frame(url).drop_nulls("location").group_by("location").len().sort("len").row(-1)[0]
    m = run(
        url,
        lambda s: market.market_insights(
            s, admin, location=top.upper(), property_type="SINGLE_FAMILY", timeframe="Y1", now=NOW
        ),
    )
    want = expected_market(url, 365, top, "SINGLE_FAMILY")
    assert 0 < m.demand.new_leads.current_count == want["new_now"]
    assert m.budget.median.current == pytest.approx(want["budget_now"])
    assert m.price.median.current == pytest.approx(want["price_now"])
    assert [s.key for s in m.demand.by_location] == [top]
    assert m.bucket == "1mo"


def test_unknown_location_gives_zeros_not_errors(url: str, admin: Scope) -> None:
    m = run(
        url,
        lambda s: market.market_insights(s, admin, location="Atlantis", timeframe="D30", now=NOW),
    )
    assert m.demand.new_leads.current == 0 and m.demand.new_leads.change is None
    assert m.demand.points == [] and m.demand.by_location == [] and m.demand.level is None
    assert m.budget.points == [] and m.budget.median.current is None
    assert m.price.median.current is None and m.days_to_close.current is None
    assert m.conversion_rate.current is None and m.conversion_rate.confidence == 0.0
    assert m.recommendations == []


@pytest.mark.parametrize("timeframe", ["H1", "H24", "D365", ""])
def test_bad_timeframe_is_refused(url: str, admin: Scope, timeframe: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        run(url, lambda s: market.market_insights(s, admin, timeframe=timeframe, now=NOW))
    assert "timeframe" in refused.value.details["fields"]


# ---- operational and model performance -------------------------------------------------------


def expected_operations(url: str, days: int) -> dict[str, Any]:
    """The OPERATIONAL rules recomputed from Acme's lead and engagement rows."""
    rows = fetch(
        url,
        "SELECT l.stage, c.value AS score, l.created_at, "
        "coalesce(l.last_activity_at, l.created_at) AS seen, e.first_response_at AS answered "
        f"FROM lead l {SCORED} LEFT JOIN lead_engagement e "
        "ON e.workspace_id = l.workspace_id AND e.lead_id = l.id WHERE l.workspace_id = $1",
        ACME,
    )
    hot = [r for r in rows if r["stage"] not in ("WON", "LOST") and (r["score"] or 0) >= 80]
    idle = [r for r in hot if r["seen"] < NOW - timedelta(days=insights.IDLE_DAYS)]
    length = min(timedelta(days=days), insights.RESPONSE_SPAN)
    within = insights.RESPONSE_WITHIN

    def answered_share(start: datetime, end: datetime) -> tuple[int, float | None]:
        new = [r for r in rows if start <= r["created_at"] < end]
        fast = [r for r in new if r["answered"] and r["answered"] < r["created_at"] + within]
        return len(new), (len(fast) / len(new) if new else None)

    return {
        "hot": len(hot),
        "idle": len(idle),
        "idle_avg": sum(r["score"] for r in idle) / len(idle) if idle else None,
        "now": answered_share(NOW - length, NOW - within),
        "before": answered_share(NOW - 2 * length, NOW - length),
    }


@pytest.mark.parametrize("days", [7, 30, 90])  # D30 (and D90: its last 30 days) has a move
def test_operational_insights_match_a_recomputation(url: str, admin: Scope, days: int) -> None:
    report = run(
        url,
        lambda s: insights.ml_insights(
            s,
            admin,
            category=InsightCategory.OPERATIONAL,
            limit=50,
            timeframe=f"D{days}",
            now=NOW,
        ),
    )
    want = expected_operations(url, days)
    found = {i.id: i for i in report.insights}
    assert all(i.category is InsightCategory.OPERATIONAL for i in report.insights)
    assert want["hot"] >= 15  # the fixture's Testville condos score 80
    share = want["idle"] / want["hot"]
    idle = found.get("operational:idleHighValue")
    assert (idle is not None) is (share >= insights.IDLE_STEPS[0])
    if idle is not None:
        assert idle.numbers.lead_count == want["idle"]
        assert idle.numbers.current == pytest.approx(share)
        assert idle.numbers.average_score == pytest.approx(want["idle_avg"])
        assert idle.impact is insights.grade(share, insights.IDLE_STEPS)
        assert idle.confidence == pytest.approx(1 - 1 / math.sqrt(want["hot"]))
    (n_now, now), (n_before, before) = want["now"], want["before"]
    response = found.get("operational:firstResponse")
    told = (
        min(n_now, n_before) >= insights.MIN_TREND_SAMPLE
        and now is not None
        and before is not None
        and abs(now - before) >= insights.RATE_STEPS[0]
    )
    assert (response is not None) is told
    if response is not None:
        assert response.numbers.lead_count == n_now
        assert response.numbers.current == pytest.approx(now)
        assert response.numbers.previous == pytest.approx(before)
        assert response.type.value == ("TREND" if now > before else "RISK")
    assert report.by_category[InsightCategory.OPERATIONAL] == len(found) == report.total


def test_idle_high_value_leads_show_once_they_go_quiet(url: str, admin: Scope) -> None:
    """Given every Testville condo (score 80) last active 30 days ago, at least 15 high-value
    leads are idle: the insight counts them and grades their share."""
    fetch(
        url,
        "UPDATE lead SET last_activity_at = $2 WHERE workspace_id = $1 AND location = 'Testville' "
        "AND property_type = 'CONDO'",
        ACME,
        NOW - timedelta(days=30),
    )
    report = run(
        url,
        lambda s: insights.ml_insights(
            s, admin, category=InsightCategory.OPERATIONAL, limit=50, now=NOW
        ),
    )
    want = expected_operations(url, 30)
    idle = {i.id: i for i in report.insights}["operational:idleHighValue"]
    assert want["idle"] >= 15 and idle.numbers.lead_count == want["idle"]
    assert idle.type.value == "RISK" and str(want["idle"]) in idle.recommendations[0].action


def test_model_performance_is_for_admins_only(url: str, admin: Scope) -> None:
    """The ML dashboard's alerts are an admin's (as `mlAnalytics`): another role's report has
    none, and with no models there are none for the admin either."""
    user = Scope(ACME, admin.user_id, Role.USER)
    for scope in (admin, user):
        report = run(
            url,
            lambda s, scope=scope: insights.ml_insights(
                s, scope, category=InsightCategory.MODEL_PERFORMANCE, now=NOW
            ),
        )
        assert report.insights == [] and report.total == 0


def _model(id: int, auc: float | None, test: int = 400) -> MlModel:
    return MlModel(
        workspace_id=ACME,
        id=id,
        name="Lead scoring",
        version=id,
        metrics={"test": {"auc": auc}},
        training_sizes={"test": {"rows": test, "conversions": test // 4}},
    )


def test_a_candidate_beating_the_champion_is_an_opportunity() -> None:
    champion = _model(1, 0.80)
    found = insights.model_insights(
        [], champion, [_model(2, 0.83), _model(3, 0.803), _model(4, 0.79), _model(5, None)]
    )
    assert [i.id for i in found] == ["model:2:BEATS_CHAMPION"]
    (better,) = found
    assert better.impact is Impact.HIGH and better.type.value == "OPPORTUNITY"
    assert better.numbers.current == 0.83 and better.numbers.baseline == 0.80
    assert better.numbers.change == pytest.approx(0.03) and better.numbers.lead_count == 400
    assert better.confidence == pytest.approx(1 - 1 / 20)
    assert "deployModel" in better.recommendations[0].action
    assert insights.model_insights([], None, [_model(2, 0.9)]) == []
