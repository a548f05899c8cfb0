"""`Workspace.scoringTrends` end to end through gql on the analytics database (a `small` seed up
to now, every Acme lead scored once by the fixture). The tests add older score history with SQL
(the data), then recompute every number here with polars from the raw `lead_score` and `lead`
rows, never from the rollups the field reads (`score_trend*`: the workspace's for an ADMIN,
per owner and per agent for a USER or an AGENT)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg
import polars as pl
import pytest

from models.scoring_trends.rules import ACTIVITY_WORDS
from tests.client import Persona
from tests.conftest import wait_for

ACME = 1
GLOBEX = 2
# the documented rules (schema descriptions, README)
MIN_IMPROVEMENT, TOP, MIN_SAMPLE, CONCERNING = 10, 5, 20, -2.0
EVERY = {"DAY": "1d", "WEEK": "1w", "MONTH": "1mo"}
# the wording is the product's; the counts behind it are recomputed here
ACTIVITY = ACTIVITY_WORDS

TRENDS = """
query Trends($period: Period, $groupBy: Granularity, $leadIds: [ID!]) {
  workspace {
    scoringTrends(period: $period, groupBy: $groupBy, leadIds: $leadIds) {
      period groupBy windowStart windowEnd
      trends {
        periodStart date leadsScored averageScore highValueCount
        scoreDistribution { excellent good moderate low }
        rescorings averageChange
        topImprovers { leadId name scoreIncrease score previousScore scoredAt previousScoredAt
                       reason }
      }
      insights {
        overallTrend averageImprovement rescorings
        bestPerformingSegment { dimension value averageImprovement sampleSize }
        segments { dimension value averageImprovement sampleSize }
        concerningTrends { segment { dimension value averageImprovement sampleSize }
                           issue recommendation }
      }
    }
  }
}
"""
SCORE_LEADS = "mutation Score($leadIds: [ID!]) { scoreLeads(leadIds: $leadIds) { id } }"


# ---- the history the tests add (the data), before the first read ------------------------------

# older scorings for chosen leads, relative to each lead's current (fixture) score
HISTORY = [
    # cold calls scored 15 points higher 20 days ago: their fixture scoring is a fall
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, s.model_id, s.model_version, least(99, c.value + 15), 0.5,
           now() - interval '20 days'
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id,
    (SELECT model_id, model_version FROM lead_score WHERE workspace_id = $1
                  LIMIT 1) s
    WHERE l.workspace_id = $1 AND l.source = 'COLD_CALL' AND c.value IS NOT NULL
    ORDER BY l.id LIMIT 80
    """,
    # condos 20 and 12 points lower 50 and 20 days ago (two rescorings in D90, one in D30)
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, s.model_id, 'v-old', greatest(1, c.value - d.drop), 0.5,
           now() - d.ago
    FROM lead l JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id,
         (SELECT model_id FROM lead_score WHERE workspace_id = $1 LIMIT 1) s,
         (VALUES (20, interval '50 days'), (12, interval '20 days')) AS d(drop, ago)
    WHERE l.workspace_id = $1 AND l.property_type = 'CONDO' AND l.source <> 'COLD_CALL'
      AND c.value IS NOT NULL AND l.id IN (
          SELECT id FROM lead WHERE workspace_id = $1 AND property_type = 'CONDO'
            AND source <> 'COLD_CALL' ORDER BY id LIMIT 80)
    """,
    # referrals scored twice on one day 5 days ago (the later one counts for the day)
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, NULL, 'v-old', greatest(1, c.value - d.drop), 0.5,
           date_trunc('day', now() - interval '5 days', 'UTC') + d.at
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id,
    (VALUES (25, interval '8 hours'), (13, interval '14 hours')) AS d(drop, at)
    WHERE l.workspace_id = $1 AND l.source = 'REFERRAL' AND c.value IS NOT NULL
      AND l.id IN (SELECT id FROM lead WHERE workspace_id = $1 AND source = 'REFERRAL'
                   ORDER BY id LIMIT 15)
    """,
    # website leads scored long before the window (a baseline outside every period)
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, NULL, 'v-old', greatest(1, c.value - 30), 0.5,
           now() - interval '120 days'
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id
    WHERE l.workspace_id = $1 AND l.source = 'WEBSITE' AND c.value IS NOT NULL
    ORDER BY l.id LIMIT 20
    """,
    # some of the demo user's own leads rose 11 points since 10 days ago (leads scored above 11,
    # so that the rise is whole whatever scores the fixture's model gave)
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, NULL, 'v-old', c.value - 11, 0.5, now() - interval '10 days'
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id
    JOIN app_user u ON u.id = l.owner_id AND u.email = 'user@acme.example'
    WHERE l.workspace_id = $1 AND c.value > 11
    ORDER BY l.id LIMIT 30
    """,
    # and some of the demo agent's assigned leads 14 points since 8 days ago (scored above 14)
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, NULL, 'v-old', c.value - 14, 0.5, now() - interval '8 days'
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id
    JOIN agent a ON a.workspace_id = l.workspace_id AND a.id = l.agent_id
    JOIN app_user u ON u.id = a.user_id AND u.email = 'agent@acme.example'
    WHERE l.workspace_id = $1 AND c.value > 14
    ORDER BY l.id LIMIT 12
    """,
    # four leads of neither demo persona rose 45 points since 3 days ago, more than any rise
    # above: the reassignment test moves them to the user and the agent, whose top improvers they
    # then are whatever scores the fixture's model gave
    """
    INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, probability,
                            scored_at)
    SELECT l.workspace_id, l.id, NULL, 'v-moved', c.value - 45, 0.5, now() - interval '3 days'
    FROM lead l
    JOIN lead_current_score c ON c.workspace_id = l.workspace_id AND c.lead_id = l.id
    WHERE l.workspace_id = $1 AND c.value > 45 AND l.source <> 'COLD_CALL'
      AND l.property_type IN ('SINGLE_FAMILY', 'TOWNHOUSE')
      AND l.owner_id <> (SELECT id FROM app_user WHERE email = 'user@acme.example')
      AND l.agent_id NOT IN (SELECT a.id FROM agent a JOIN app_user u ON u.id = a.user_id
                             WHERE u.email = 'agent@acme.example')
    ORDER BY l.id LIMIT 4
    """,
    # activity between two scorings of some condos (reasons read it)
    """
    INSERT INTO lead_event (workspace_id, lead_id, type, occurred_at)
    SELECT l.workspace_id, l.id, 'WEBSITE_VISIT', now() - interval '3 days' - g * interval '1 hour'
    FROM lead l, generate_series(1, 2) g
    WHERE l.workspace_id = $1 AND l.property_type = 'CONDO' AND l.source <> 'COLD_CALL'
    ORDER BY l.id LIMIT 10
    """,
]


@pytest.fixture(scope="module")
def history(analytics_admin: Persona, analytics_sql: Any) -> None:
    """Given older scorings of chosen leads (the fixture's scoring run is the newest of each)."""
    for statement in HISTORY:
        analytics_sql(statement, ACME)


# ---- the independent recomputation -------------------------------------------------------------


def scorings(sql: Any) -> pl.DataFrame:
    """Every Acme scoring with its lead's scoring before and after it, and the lead's segment."""
    rows = sql("SELECT lead_id, id, value, scored_at FROM lead_score WHERE workspace_id = $1", ACME)
    scores = pl.DataFrame(
        [dict(r) for r in rows],
        schema={
            "lead_id": pl.Int64,
            "id": pl.Int64,
            "value": pl.Int64,
            "scored_at": pl.Datetime("us", "UTC"),
        },
    )
    leads = pl.DataFrame(
        [
            dict(r)
            for r in sql(
                "SELECT id AS lead_id, name, source, property_type, owner_id, agent_id "
                "FROM lead WHERE workspace_id = $1",
                ACME,
            )
        ],
        schema={
            "lead_id": pl.Int64,
            "name": pl.String,
            "source": pl.String,
            "property_type": pl.String,
            "owner_id": pl.Int64,
            "agent_id": pl.Int64,
        },
    ).with_columns(pl.col("property_type").fill_null("UNSPECIFIED"))
    return (
        scores.sort("lead_id", "scored_at", "id")
        .with_columns(
            prev=pl.col("value").shift(1).over("lead_id"),
            prev_at=pl.col("scored_at").shift(1).over("lead_id"),
            next_at=pl.col("scored_at").shift(-1).over("lead_id"),
        )
        .join(leads, on="lead_id")
    )


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at)


def expected(scored: pl.DataFrame, start: datetime, end: datetime, group_by: str) -> dict[str, Any]:
    every = EVERY[group_by]
    df = scored.with_columns(
        bucket=pl.col("scored_at").dt.truncate(every),
        change=pl.col("value") - pl.col("prev"),
    ).with_columns(
        latest=pl.col("next_at").is_null()
        | (pl.col("next_at").dt.truncate(every) != pl.col("bucket"))
    )
    window = df.filter((pl.col("bucket") >= start) & (pl.col("bucket") <= end))
    v = pl.col("value")
    buckets = (
        window.filter("latest")
        .group_by("bucket")
        .agg(
            leads=pl.len(),
            average=v.mean(),
            excellent=(v >= 80).sum(),
            good=((v >= 60) & (v < 80)).sum(),
            moderate=((v >= 40) & (v < 60)).sum(),
            low=(v < 40).sum(),
        )
    )
    rescored = window.filter(pl.col("change").is_not_null())
    changes = rescored.group_by("bucket").agg(
        rescorings=pl.len(), average_change=pl.col("change").mean()
    )
    points = buckets.join(changes, on="bucket", how="left").sort("bucket")
    rises = (
        window.filter(pl.col("change") >= MIN_IMPROVEMENT)
        .sort(["bucket", "lead_id", "change", "scored_at"], descending=[False, False, True, True])
        .unique(["bucket", "lead_id"], keep="first", maintain_order=True)
        .sort(["bucket", "change", "lead_id"], descending=[False, True, False])
    )
    tops: dict[datetime, list[tuple[int, int, int, int]]] = {}
    for r in rises.iter_rows(named=True):
        found = tops.setdefault(r["bucket"], [])
        if len(found) < TOP:
            found.append((r["lead_id"], r["change"], r["value"], r["prev"]))
    segments = []
    for dimension, column in (("SOURCE", "source"), ("PROPERTY_TYPE", "property_type")):
        per = rescored.group_by(column).agg(n=pl.len(), mean=pl.col("change").mean())
        for r in per.filter(pl.col("n") >= MIN_SAMPLE).iter_rows(named=True):
            segments.append((dimension, r[column], r["mean"], r["n"]))
    overall = rescored["change"].mean() if rescored.height else 0.0
    return {
        "points": [
            {
                "bucket": r["bucket"],
                "leads": r["leads"],
                "average": r["average"],
                "distribution": [r["excellent"], r["good"], r["moderate"], r["low"]],
                "rescorings": r["rescorings"] or 0,
                "average_change": r["average_change"] or 0.0,
                "top": tops.get(r["bucket"], []),
            }
            for r in points.iter_rows(named=True)
        ],
        "overall": overall,
        "rescorings": rescored.height,
        "segments": segments,
    }


def trend_label(mean: float) -> str:
    return "IMPROVING" if mean >= 1.0 else "DECLINING" if mean <= -1.0 else "STABLE"


def assert_matches(got: dict[str, Any], want: dict[str, Any]) -> None:
    points = got["trends"]
    assert [parse(p["periodStart"]) for p in points] == [w["bucket"] for w in want["points"]]
    for p, w in zip(points, want["points"], strict=True):
        assert p["date"] == w["bucket"].date().isoformat()
        assert p["leadsScored"] == w["leads"]
        assert p["averageScore"] == pytest.approx(w["average"])
        assert p["highValueCount"] == w["distribution"][0]
        d = p["scoreDistribution"]
        assert [d["excellent"], d["good"], d["moderate"], d["low"]] == w["distribution"]
        assert p["rescorings"] == w["rescorings"]
        assert p["averageChange"] == pytest.approx(w["average_change"])
        assert [
            (int(i["leadId"]), i["scoreIncrease"], i["score"], i["previousScore"])
            for i in p["topImprovers"]
        ] == w["top"]
    insights = got["insights"]
    assert insights["rescorings"] == want["rescorings"]
    assert insights["averageImprovement"] == pytest.approx(want["overall"])
    assert insights["overallTrend"] == trend_label(want["overall"])
    segments = {(s[0], s[1]): s for s in want["segments"]}
    assert {(s["dimension"], s["value"]) for s in insights["segments"]} == set(segments)
    for s in insights["segments"]:
        w = segments[(s["dimension"], s["value"])]
        assert s["averageImprovement"] == pytest.approx(w[2])
        assert s["sampleSize"] == w[3]
    improving = [s for s in want["segments"] if s[2] > 0]
    best = insights["bestPerformingSegment"]
    if improving:
        top_mean = max(s[2] for s in improving)
        assert best is not None and best["averageImprovement"] == pytest.approx(top_mean)
    else:
        assert best is None
    concerning = sorted((s for s in want["segments"] if s[2] <= CONCERNING), key=lambda s: s[2])
    got_concerning = insights["concerningTrends"]
    assert [(c["segment"]["dimension"], c["segment"]["value"]) for c in got_concerning] == [
        (s[0], s[1]) for s in concerning
    ]
    for c in got_concerning:
        assert c["issue"] and c["recommendation"]


def trends(persona: Persona, **variables: Any) -> dict[str, Any]:
    return dict(persona.execute(TRENDS, **variables)["workspace"]["scoringTrends"])


def window(got: dict[str, Any]) -> tuple[datetime, datetime]:
    return parse(got["windowStart"]), parse(got["windowEnd"])


# ---- tests --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("history")
def test_admin_daily_trends_match_the_score_history(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    # when the admin asks for the default period (D30) by day
    got = trends(analytics_admin)
    # then every bucket, improver and insight matches the recomputation from raw rows
    assert got["period"] == "D30" and got["groupBy"] == "DAY"
    want = expected(scorings(analytics_sql), *window(got), "DAY")
    assert_matches(got, want)
    # the seeded history shows: cold calls fell, condos rose
    insights = got["insights"]
    assert ("SOURCE", "COLD_CALL") in {
        (c["segment"]["dimension"], c["segment"]["value"]) for c in insights["concerningTrends"]
    }
    assert insights["bestPerformingSegment"] is not None
    assert got["trends"] and any(p["topImprovers"] for p in got["trends"])


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("period", "group_by"),
    [("D90", "DAY"), ("D90", "WEEK"), ("D90", "MONTH"), ("D7", "DAY"), ("D30", "WEEK")],
)
def test_periods_and_buckets(
    analytics_admin: Persona, analytics_sql: Any, period: str, group_by: str
) -> None:
    got = trends(analytics_admin, period=period, groupBy=group_by)
    want = expected(scorings(analytics_sql), *window(got), group_by)
    assert_matches(got, want)


@pytest.mark.usefixtures("history")
def test_reasons_say_what_changed_between_the_two_scorings(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    got = trends(analytics_admin, period="D90")
    improvers = [i for p in got["trends"] for i in p["topImprovers"]]
    assert improvers
    for i in improvers:
        events = analytics_sql(
            "SELECT type, count(*) AS n FROM lead_event WHERE workspace_id = $1 AND lead_id = $2 "
            "AND occurred_at > $3 AND occurred_at <= $4 AND type NOT IN ('CREATED', "
            "'STAGE_CHANGE') GROUP BY 1",
            ACME,
            int(i["leadId"]),
            parse(i["previousScoredAt"]),
            parse(i["scoredAt"]),
        )
        reason = i["reason"].lower()
        for e in events:
            one, many = ACTIVITY[e["type"]]
            assert f"{e['n']} {one if e['n'] == 1 else many}" in reason, (i, dict(e))
        name = analytics_sql(
            "SELECT name FROM lead WHERE workspace_id = $1 AND id = $2", ACME, int(i["leadId"])
        )
        assert i["name"] == name[0]["name"]
        assert i["scoreIncrease"] == i["score"] - i["previousScore"] >= MIN_IMPROVEMENT


@pytest.mark.usefixtures("history")
def test_lead_ids_narrow_it_to_those_leads(analytics_admin: Persona, analytics_sql: Any) -> None:
    rows = analytics_sql(
        "SELECT DISTINCT lead_id FROM lead_score WHERE workspace_id = $1 "
        "AND scored_at < now() - interval '1 day' ORDER BY lead_id LIMIT 40",
        ACME,
    )
    ids = [r["lead_id"] for r in rows] + [r["lead_id"] for r in rows][:3]  # repeats are fine
    got = trends(analytics_admin, period="D90", leadIds=[str(i) for i in ids])
    scored = scorings(analytics_sql).filter(pl.col("lead_id").is_in(ids))
    assert_matches(got, expected(scored, *window(got), "DAY"))
    assert sum(p["leadsScored"] for p in got["trends"]) >= 40
    # an empty list narrows to nothing: zeros, no error
    empty = trends(analytics_admin, leadIds=[])
    assert empty["trends"] == []
    assert empty["insights"]["overallTrend"] == "STABLE"
    assert empty["insights"]["averageImprovement"] == 0.0


@pytest.mark.usefixtures("history")
def test_user_sees_only_their_leads(
    analytics_user: Persona, analytics_agent: Persona, analytics_sql: Any
) -> None:
    user = analytics_sql("SELECT id FROM app_user WHERE email = 'user@acme.example'")[0]["id"]
    got = trends(analytics_user, period="D30")
    scored = scorings(analytics_sql).filter(pl.col("owner_id") == user)
    assert_matches(got, expected(scored, *window(got), "DAY"))
    assert got["insights"]["rescorings"] >= 30  # their risen leads
    # an agent: the leads assigned to them
    agent_ids = [
        r["id"]
        for r in analytics_sql(
            "SELECT a.id FROM agent a JOIN app_user u ON u.id = a.user_id "
            "WHERE a.workspace_id = $1 AND u.email = 'agent@acme.example'",
            ACME,
        )
    ]
    got = trends(analytics_agent, period="D90", groupBy="WEEK")
    scored = scorings(analytics_sql).filter(pl.col("agent_id").is_in(agent_ids))
    assert_matches(got, expected(scored, *window(got), "WEEK"))


@pytest.mark.usefixtures("history")
def test_a_new_scoring_shows_up_on_the_next_read(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    before = trends(analytics_admin, period="D7")
    today = before["trends"][-1]
    ids = [
        r["id"]
        for r in analytics_sql(
            # leads scored before (other tests create leads: a first scoring is no rescoring)
            "SELECT id FROM lead l WHERE workspace_id = $1 AND EXISTS (SELECT 1 FROM "
            "lead_score s WHERE s.workspace_id = l.workspace_id AND s.lead_id = l.id) "
            "ORDER BY id DESC LIMIT 25",
            ACME,
        )
    ]
    # when the admin rescores 25 leads (a job through the mutation)
    job = analytics_admin.execute(SCORE_LEADS, leadIds=[str(i) for i in ids])["scoreLeads"]
    assert wait_for(analytics_admin, job["id"])["status"] == "SUCCEEDED"
    # then the next read counts them: 25 more rescorings today, every number recomputed
    after = trends(analytics_admin, period="D7")
    assert after["trends"][-1]["rescorings"] == today["rescorings"] + 25
    assert_matches(after, expected(scorings(analytics_sql), *window(after), "DAY"))


def test_empty_workspace_has_no_trends(analytics_empty: Persona) -> None:
    for group_by in ("DAY", "WEEK", "MONTH"):
        got = trends(analytics_empty, period="D90", groupBy=group_by)
        assert got["trends"] == []
        assert got["insights"] == {
            "overallTrend": "STABLE",
            "averageImprovement": 0.0,
            "rescorings": 0,
            "bestPerformingSegment": None,
            "segments": [],
            "concerningTrends": [],
        }


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"period": "H24"}, "period"),
        ({"period": "Y1"}, "period"),
        ({"groupBy": "HOUR"}, "groupBy"),
        ({"leadIds": [str(i) for i in range(1, 1002)]}, "leadIds"),
        ({"leadIds": ["abc"]}, "leadIds"),
    ],
)
def test_bad_arguments(analytics_admin: Persona, variables: dict[str, Any], field: str) -> None:
    error = analytics_admin.error(TRENDS, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert field in error["extensions"]["details"]["fields"]


def test_leads_of_another_workspace_or_viewer_are_not_found(
    analytics_admin: Persona, analytics_user: Persona, analytics_sql: Any
) -> None:
    globex = analytics_sql("SELECT id FROM lead WHERE workspace_id <> $1 LIMIT 1", ACME)[0]["id"]
    error = analytics_admin.error(TRENDS, leadIds=[str(globex)])
    assert error["extensions"]["code"] == "NOT_FOUND"
    # a USER asking for an Acme lead they do not own gets the same answer
    other = analytics_sql(
        "SELECT l.id FROM lead l JOIN app_user u ON u.email = 'user@acme.example' "
        "WHERE l.workspace_id = $1 AND l.owner_id IS DISTINCT FROM u.id LIMIT 1",
        ACME,
    )[0]["id"]
    error = analytics_user.error(TRENDS, leadIds=[str(other)])
    assert error["extensions"]["code"] == "NOT_FOUND"


def rollup_days(sql: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The stored daily rollups of Acme: per-day totals, and each day's top rises."""
    cells = sql(
        "SELECT bucket, sum(leads) AS leads, sum(score_sum) AS score_sum, "
        "sum(rescorings) AS rescorings, sum(change_sum) AS change_sum FROM score_trend "
        "WHERE workspace_id = $1 AND unit = 'day' GROUP BY 1 HAVING sum(leads) > 0 ORDER BY 1",
        ACME,
    )
    top = sql(
        "SELECT day, lead_id, change, value, before FROM score_trend_top WHERE workspace_id = $1 "
        "ORDER BY day, change DESC, lead_id",
        ACME,
    )
    return [tuple(r.values()) for r in cells], [tuple(r.values()) for r in top]


def recomputed_days(scored: pl.DataFrame) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    df = scored.with_columns(
        day=pl.col("scored_at").dt.truncate("1d"), change=pl.col("value") - pl.col("prev")
    ).with_columns(
        latest=pl.col("next_at").is_null() | (pl.col("next_at").dt.truncate("1d") != pl.col("day"))
    )
    latest = (
        df.filter("latest").group_by("day").agg(leads=pl.len(), score_sum=pl.col("value").sum())
    )
    changes = (
        df.filter(pl.col("change").is_not_null())
        .group_by("day")
        .agg(rescorings=pl.len(), change_sum=pl.col("change").sum())
    )
    cells = (
        latest.join(changes, on="day", how="left")
        .with_columns(pl.col("rescorings", "change_sum").fill_null(0))
        .sort("day")
    )
    best = (
        df.filter(pl.col("change") >= MIN_IMPROVEMENT)
        .sort(["day", "lead_id", "change", "scored_at"], descending=[False, False, True, True])
        .unique(["day", "lead_id"], keep="first", maintain_order=True)
        .sort(["day", "change", "lead_id"], descending=[False, True, False])
    )
    top = best.group_by("day", maintain_order=True).head(TOP)
    return (
        [
            (r["day"], r["leads"], r["score_sum"], r["rescorings"], r["change_sum"])
            for r in cells.iter_rows(named=True)
        ],
        [
            (r["day"], r["lead_id"], r["change"], r["value"], r["prev"])
            for r in top.iter_rows(named=True)
        ],
    )


@pytest.mark.usefixtures("history")
def test_rollups_stay_exact_after_back_dated_and_repeated_scorings(analytics_sql: Any) -> None:
    # given a day's biggest rise, a scoring back-dated between its two scorings takes it away
    top = analytics_sql(
        "SELECT lead_id, value, before_at + (scored_at - before_at) / 2 AS between_at "
        "FROM score_trend_top WHERE workspace_id = $1 ORDER BY change DESC, lead_id LIMIT 1",
        ACME,
    )[0]
    analytics_sql(
        "INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, "
        "probability, scored_at) VALUES ($1, $2, NULL, 'v-late', $3, 0.5, $4)",
        ACME,
        top["lead_id"],
        top["value"],
        top["between_at"],
    )
    # and a lead is scored twice in one statement now (an online flush), rising 30 points
    lead = analytics_sql(
        "SELECT id FROM lead WHERE workspace_id = $1 AND id <> $2 ORDER BY id LIMIT 1",
        ACME,
        top["lead_id"],
    )[0]["id"]
    analytics_sql(
        "INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, "
        "probability, scored_at) SELECT $1, $2, NULL, 'v-now', v, 0.5, now() - d "
        "FROM (VALUES (5, interval '2 seconds'), (35, interval '1 second')) AS t(v, d)",
        ACME,
        lead,
    )
    # then the daily rollups equal a recomputation from the raw history
    cells, rises = rollup_days(analytics_sql)
    want_cells, want_rises = recomputed_days(scorings(analytics_sql))
    assert cells == want_cells
    assert rises == want_rises


# ---- USER and AGENT: the rollups per owner and per agent (migration 0016) ---------------------

UPDATE_LEAD = """
mutation Move($id: ID!, $input: UpdateLeadInput!) {
  updateLead(id: $id, input: $input) { id source propertyType agent { id } }
}
"""


def demo_user(sql: Any) -> int:
    return int(sql("SELECT id FROM app_user WHERE email = 'user@acme.example'")[0]["id"])


def demo_agents(sql: Any) -> list[int]:
    return [
        int(r["id"])
        for r in sql(
            "SELECT a.id FROM agent a JOIN app_user u ON u.id = a.user_id "
            "WHERE a.workspace_id = $1 AND u.email = 'agent@acme.example'",
            ACME,
        )
    ]


def improver_ids(got: dict[str, Any]) -> set[int]:
    return {int(i["leadId"]) for p in got["trends"] for i in p["topImprovers"]}


def assert_viewers_match(user: Persona, agent: Persona, sql: Any) -> None:
    """Both viewers' trends, each period and bucket, equal a recomputation over their leads."""
    scored = scorings(sql)
    owned = scored.filter(pl.col("owner_id") == demo_user(sql))
    assigned = scored.filter(pl.col("agent_id").is_in(demo_agents(sql)))
    for period, group_by in (("D90", "DAY"), ("D30", "WEEK"), ("D90", "MONTH"), ("D7", "DAY")):
        got = trends(user, period=period, groupBy=group_by)
        assert_matches(got, expected(owned, *window(got), group_by))
        got = trends(agent, period=period, groupBy=group_by)
        assert_matches(got, expected(assigned, *window(got), group_by))


@pytest.mark.usefixtures("history")
def test_user_and_agent_read_their_rollups_for_every_period(
    analytics_user: Persona, analytics_agent: Persona, analytics_sql: Any
) -> None:
    assert_viewers_match(analytics_user, analytics_agent, analytics_sql)
    # the user's own risen leads are their top improvers, and only their leads are
    got = trends(analytics_user, period="D30")
    owned = {
        r["id"]
        for r in analytics_sql(
            "SELECT id FROM lead WHERE workspace_id = $1 AND owner_id = $2",
            ACME,
            demo_user(analytics_sql),
        )
    }
    assert improver_ids(got) and improver_ids(got) <= owned
    improvers = [i for p in got["trends"] for i in p["topImprovers"]]
    assert all(i["scoreIncrease"] >= MIN_IMPROVEMENT for i in improvers)
    # narrowed to some of their leads, the user's numbers are those leads' (their history)
    some = sorted(owned)[:40]
    got = trends(analytics_user, period="D90", leadIds=[str(i) for i in some])
    scored = scorings(analytics_sql).filter(pl.col("lead_id").is_in(some))
    assert_matches(got, expected(scored, *window(got), "DAY"))


@pytest.mark.usefixtures("history")
def test_reassigned_leads_take_their_whole_history_along(
    analytics_admin: Persona,
    analytics_user: Persona,
    analytics_agent: Persona,
    analytics_sql: Any,
) -> None:
    sql = analytics_sql
    user, agents = demo_user(sql), demo_agents(sql)
    other_agent = sql(
        "SELECT id FROM agent WHERE workspace_id = $1 AND NOT (id = ANY($2::bigint[])) "
        "ORDER BY id LIMIT 1",
        ACME,
        agents,
    )[0]["id"]
    other_owner = sql(
        "SELECT owner_id FROM lead WHERE workspace_id = $1 AND owner_id <> $2 LIMIT 1", ACME, user
    )[0]["owner_id"]
    # given the four leads of neither persona that rose most (HISTORY)
    moved = [
        r["lead_id"]
        for r in sql(
            "SELECT lead_id FROM lead_score WHERE workspace_id = $1 AND model_version = 'v-moved' "
            "ORDER BY lead_id",
            ACME,
        )
    ]
    assert len(moved) == 4
    to_user, to_agent = moved[:2], moved[2:]
    # and each viewer's top improvers
    user_top = improver_ids(trends(analytics_user, period="D90"))
    agent_top = improver_ids(trends(analytics_agent, period="D90"))
    assert user_top and agent_top
    from_user, from_agent = sorted(user_top)[:2], sorted(agent_top)[:2]
    owners = {
        r["id"]: r["owner_id"]
        for r in sql(
            "SELECT id, owner_id FROM lead WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
            ACME,
            [*to_user, *from_user],
        )
    }
    assigned = {
        r["id"]: (r["agent_id"], r["source"], r["property_type"])
        for r in sql(
            "SELECT id, agent_id, source, property_type FROM lead WHERE workspace_id = $1 "
            "AND id = ANY($2::bigint[])",
            ACME,
            [*to_agent, *from_agent],
        )
    }

    def own(lead: int, owner: int) -> None:
        # no mutation changes a lead's owner: the data changes under the rollups
        sql("UPDATE lead SET owner_id = $3 WHERE workspace_id = $1 AND id = $2", ACME, lead, owner)

    def assign(lead: int, **input: Any) -> None:
        analytics_admin.execute(UPDATE_LEAD, id=str(lead), input=input)

    # when leads move in and out of the user's and the agent's hands (an updateLead each for
    # the agents, after the owners so that it also empties the analytics cache), one arriving
    # lead also changing segment
    for lead in to_user:
        own(lead, user)
    for lead in from_user:
        own(lead, other_owner)
    for lead in from_agent:
        assign(lead, agentId=str(other_agent))
    arriving = to_agent
    assign(arriving[0], agentId=str(agents[0]), source="OPEN_HOUSE", propertyType="LAND")
    for lead in arriving[1:]:
        assign(lead, agentId=str(agents[0]))
    # then each viewer's numbers are their leads' whole history, top improvers included
    assert_viewers_match(analytics_user, analytics_agent, sql)
    assert set(to_user) <= improver_ids(trends(analytics_user, period="D90"))
    assert not set(from_user) & improver_ids(trends(analytics_user, period="D90"))
    assert set(arriving) <= improver_ids(trends(analytics_agent, period="D90"))
    assert not set(from_agent) & improver_ids(trends(analytics_agent, period="D90"))
    # and the workspace's segments follow the changed one
    got = trends(analytics_admin, period="D90")
    assert_matches(got, expected(scorings(sql), *window(got), "DAY"))

    # when every lead goes back, so do the numbers
    for lead, owner in owners.items():
        own(lead, owner)
    for lead, (agent, source, property_type) in assigned.items():
        assign(lead, agentId=str(agent), source=source, propertyType=property_type)
    assert_viewers_match(analytics_user, analytics_agent, sql)
    assert improver_ids(trends(analytics_user, period="D90")) == user_top
    assert improver_ids(trends(analytics_agent, period="D90")) == agent_top
    got = trends(analytics_admin, period="D90")
    assert_matches(got, expected(scorings(sql), *window(got), "DAY"))


# ---- concurrent writers (migration 0018) -------------------------------------------------------


def test_a_workspaces_rollups_have_one_writer_at_a_time(analytics_database: str) -> None:
    """Two scoring writers of a workspace deadlocked on its rollup rows; each statement now
    takes the workspace's advisory lock first. Shown here: a statement waits for a holder of
    Acme's lock, and one of another workspace does not (everything rolled back)."""
    insert = (
        "INSERT INTO lead_score (workspace_id, lead_id, model_id, model_version, value, "
        "probability, scored_at) SELECT workspace_id, id, NULL, 'v-lock', 50, 0.5, now() "
        "FROM lead WHERE workspace_id = $1 ORDER BY id LIMIT 3"
    )

    async def scenario() -> tuple[bool, bool]:
        holder = await asyncpg.connect(analytics_database)
        writer = await asyncpg.connect(analytics_database)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('score_trend'), $1)", ACME
                )
                outcomes = []
                for workspace in (ACME, GLOBEX):
                    transaction = writer.transaction()
                    await transaction.start()
                    try:
                        await writer.execute("SET LOCAL lock_timeout = '300ms'")
                        await writer.execute(insert, workspace)
                        outcomes.append(True)
                    except asyncpg.exceptions.LockNotAvailableError:
                        outcomes.append(False)
                    finally:
                        await transaction.rollback()
                return outcomes[0], outcomes[1]
        finally:
            await holder.close()
            await writer.close()

    acme_went_through, globex_went_through = asyncio.run(scenario())
    assert not acme_went_through and globex_went_through
