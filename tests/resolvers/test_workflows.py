"""Workspace.workflows and Workspace.workflowPerformance through gql, every number recomputed
with polars from the workflow, workflow_run and lead rows the test reads itself."""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from tests.client import Persona

WORKFLOWS = """
query Workflows($status: WorkflowStatus, $type: WorkflowType, $first: Int! = 20) {
  workspace {
    workflows(status: $status, type: $type, first: $first) {
      generatedAt
      summary { totalActive running stalled completedToday failedToday averageCompletionHours
                todayStart }
      workflows {
        id name type status activeRuns stalledRuns
        steps { index name type description averageSeconds executions }
        runs { id status lead { id name } currentStep completedSteps totalSteps progress
               startedAt estimatedCompletion
               nextAction { type stepName description scheduled overdue } }
      }
      performance { executed successRate averageProcessingHours windowStart windowEnd
                    bottlenecks { workflowId step stepIndex averageSeconds medianStepSeconds
                                  potentialImprovement issue recommendation } }
    }
  }
}
"""
PERFORMANCE = """
query Performance($period: Period! = D30, $types: [WorkflowType!]) {
  workspace {
    workflowPerformance(period: $period, types: $types) {
      period windowStart windowEnd baselineConversionRate
      overall { totalExecuted completed failed successRate averageCompletionHours costSavings }
      byType { type workflows executed successRate averageHours conversionRate
               conversionImpact }
      efficiency { timeSavedHours costSavings hourlyRate errorRate stepExecutions }
      bottlenecks { workflowId step averageSeconds potentialImprovement }
      insights { type workflowId title description recommendation potentialImprovement }
    }
  }
}
"""
UPDATE_LEAD = """
mutation Won($id: ID!) { updateLead(id: $id, input: {stage: WON}) { id stage } }
"""
# documented manual minutes per step type (README "Workflows")
MANUAL_MINUTES = {
    "email": 5,
    "task": 10,
    "api": 10,
    "validation": 3,
    "assignment": 5,
    "ml": 2,
    "trigger": 2,
    "notification": 2,
}
HOURLY_RATE = 40.0
FACTOR = 3.0


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def workspace_of(sql: Any, email: str) -> tuple[int, int, str]:
    row = sql(
        "SELECT m.workspace_id, m.user_id, m.role FROM membership m JOIN app_user u "
        "ON u.id = m.user_id WHERE u.email = $1",
        email,
    )[0]
    return int(row["workspace_id"]), int(row["user_id"]), str(row["role"])


def tables(sql: Any, email: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The viewer's workflows and the runs of the leads they may see (ADMIN: every run)."""
    ws, user, role = workspace_of(sql, email)
    flows = pl.DataFrame(
        [
            {
                "id": r["id"],
                "name": r["name"],
                "type": r["type"],
                "status": r["status"],
                "steps": json.loads(r["steps"]),
            }
            for r in sql(
                "SELECT id, name, type, status, steps::text FROM workflow WHERE workspace_id = $1 "
                "ORDER BY id",
                ws,
            )
        ],
        schema={
            "id": pl.Int64,
            "name": pl.Utf8,
            "type": pl.Utf8,
            "status": pl.Utf8,
            "steps": pl.Object,
        },
    )
    rows = sql(
        "SELECT r.id, r.workflow_id, r.lead_id, r.status, r.current_step, r.started_at, "
        "r.finished_at, r.next_action_at, r.step_seconds::text AS step_seconds, l.name, "
        "l.stage, l.owner_id, a.user_id AS agent_user "
        "FROM workflow_run r LEFT JOIN lead l ON l.workspace_id = r.workspace_id "
        "AND l.id = r.lead_id LEFT JOIN agent a ON a.workspace_id = l.workspace_id "
        "AND a.id = l.agent_id WHERE r.workspace_id = $1",
        ws,
    )
    runs = pl.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "workflow_id": [r["workflow_id"] for r in rows],
            "lead_id": [r["lead_id"] for r in rows],
            "status": [r["status"] for r in rows],
            "current_step": [r["current_step"] for r in rows],
            "started_at": [r["started_at"] for r in rows],
            "finished_at": [r["finished_at"] for r in rows],
            "next_action_at": [r["next_action_at"] for r in rows],
            "step_seconds": [json.loads(r["step_seconds"]) for r in rows],
            "lead_name": [r["name"] for r in rows],
            "stage": [r["stage"] for r in rows],
            "owner_id": [r["owner_id"] for r in rows],
            "agent_user": [r["agent_user"] for r in rows],
        },
        schema_overrides={
            "lead_id": pl.Int64,
            "owner_id": pl.Int64,
            "agent_user": pl.Int64,
            "step_seconds": pl.List(pl.Int64),
            "started_at": pl.Datetime("us", "UTC"),
            "finished_at": pl.Datetime("us", "UTC"),
            "next_action_at": pl.Datetime("us", "UTC"),
        },
    )
    if role == "USER":
        runs = runs.filter(pl.col("owner_id") == user)
    elif role == "AGENT":
        runs = runs.filter(pl.col("agent_user") == user)
    return flows, runs


def finished_in(runs: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    return runs.filter((pl.col("finished_at") >= start) & (pl.col("finished_at") < end))


def step_averages(runs: pl.DataFrame) -> dict[tuple[int, int], tuple[float, int]]:
    steps = (
        runs.select("workflow_id", "step_seconds")
        .with_columns(pl.col("step_seconds").list.eval(pl.int_range(pl.len())).alias("step"))
        .explode("step_seconds", "step")
        .drop_nulls("step_seconds")
        .group_by("workflow_id", "step")
        .agg(pl.col("step_seconds").mean().alias("avg"), pl.len().alias("n"))
    )
    return {(r["workflow_id"], r["step"]): (r["avg"], r["n"]) for r in steps.iter_rows(named=True)}


def outcome(runs: pl.DataFrame) -> tuple[int, float, float]:
    """executed, success rate, mean hours of the completed runs."""
    done = runs.filter(pl.col("status") == "COMPLETED")
    failed = runs.filter(pl.col("status") == "FAILED")
    executed = done.height + failed.height
    hours = (
        (done["finished_at"] - done["started_at"]).dt.total_microseconds().mean() / 3.6e9
        if done.height
        else 0.0
    )
    return executed, (done.height / executed if executed else 0.0), float(hours or 0.0)


def expected_bottlenecks(
    flows: pl.DataFrame, averages: dict[tuple[int, int], tuple[float, int]]
) -> list[tuple[str, str, float, float]]:
    found = []
    for w in flows.iter_rows(named=True):
        measured = [
            (k, averages[(w["id"], k)][0])
            for k in range(len(w["steps"]))
            if (w["id"], k) in averages
        ]
        if len(measured) < 2:
            continue
        median = statistics.median(a for _, a in measured)
        total = sum(a for _, a in measured)
        for k, a in measured:
            if a > FACTOR * median:
                found.append(
                    (str(w["id"]), w["steps"][k]["name"], a, (a - FACTOR * median) / total)
                )
    return sorted(found, key=lambda b: -b[3])


def code_of(persona: Persona, document: str, **variables: Any) -> tuple[str, Any]:
    error = persona.error(document, **variables)
    return error["extensions"]["code"], error["extensions"].get("details", {})


# ---- Workspace.workflows -------------------------------------------------------------------


def test_overview_matches_a_recomputation(analytics_admin: Persona, analytics_sql: Any) -> None:
    # given the admin's workflows and every run of the workspace
    # when the overview is read with 5 runs per workflow
    got = analytics_admin.execute(WORKFLOWS, first=5)["workspace"]["workflows"]
    flows, runs = tables(analytics_sql, "admin@acme.example")
    # then the summary counts the runs in progress now and finished since local midnight
    s = got["summary"]
    active = runs.filter(pl.col("status").is_in(["RUNNING", "STALLED"]))
    assert s["running"] == runs.filter(pl.col("status") == "RUNNING").height
    assert s["stalled"] == runs.filter(pl.col("status") == "STALLED").height
    assert s["totalActive"] == active.height > 0
    today = finished_in(runs, when(s["todayStart"]), when(got["generatedAt"]))
    executed, _, hours = outcome(today)
    assert s["completedToday"] == today.filter(pl.col("status") == "COMPLETED").height
    assert s["failedToday"] == today.filter(pl.col("status") == "FAILED").height
    assert s["averageCompletionHours"] == pytest.approx(hours)
    # and the performance covers the runs finished in the last 30 days
    p = got["performance"]
    start, end = when(p["windowStart"]), when(p["windowEnd"])
    assert end - start == timedelta(days=30)
    window = finished_in(runs, start, end)
    executed, success, hours = outcome(window)
    assert (p["executed"], p["successRate"]) == (executed, pytest.approx(success))
    assert p["averageProcessingHours"] == pytest.approx(hours)
    averages = step_averages(window)
    expected = expected_bottlenecks(flows, averages)
    assert expected, "the seed's waits are bottlenecks"
    assert [(b["workflowId"], b["step"]) for b in p["bottlenecks"]] == [e[:2] for e in expected]
    for b, e in zip(p["bottlenecks"], expected, strict=True):
        assert b["averageSeconds"] == pytest.approx(e[2])
        assert b["potentialImprovement"] == pytest.approx(e[3])
        assert b["issue"] and b["recommendation"]
    # and every workflow is listed with its step averages and its first runs in progress
    assert [w["id"] for w in got["workflows"]] == [str(i) for i in flows["id"]]
    for w, f in zip(got["workflows"], flows.iter_rows(named=True), strict=True):
        assert (w["name"], w["type"], w["status"]) == (f["name"], f["type"], f["status"])
        mine = active.filter(pl.col("workflow_id") == f["id"])
        assert w["activeRuns"] == mine.height
        assert w["stalledRuns"] == mine.filter(pl.col("status") == "STALLED").height
        for k, step in enumerate(w["steps"]):
            avg, n = averages.get((f["id"], k), (0.0, 0))
            assert step["name"] == f["steps"][k]["name"]
            assert (step["averageSeconds"], step["executions"]) == (pytest.approx(avg), n)
        first = mine.sort(["next_action_at", "id"], nulls_last=True).head(5)
        assert [r["id"] for r in w["runs"]] == [str(i) for i in first["id"]]
        later = [s["averageSeconds"] for s in w["steps"]]
        for r, e in zip(w["runs"], first.iter_rows(named=True), strict=True):
            total = len(f["steps"])
            assert r["lead"] == {"id": str(e["lead_id"]), "name": e["lead_name"]}
            assert (r["currentStep"], r["completedSteps"], r["totalSteps"]) == (
                e["current_step"] + 1,
                e["current_step"],
                total,
            )
            assert r["progress"] == pytest.approx(e["current_step"] / total)
            step = f["steps"][e["current_step"]]
            assert r["nextAction"]["type"] == step["type"]
            assert r["nextAction"]["description"] == step["description"]
            assert when(r["nextAction"]["scheduled"]) == e["next_action_at"]
            assert r["nextAction"]["overdue"] == (e["next_action_at"] < when(got["generatedAt"]))
            remaining = sum(later[e["current_step"] + 1 :])
            assert when(r["estimatedCompletion"]) == pytest.approx(
                e["next_action_at"] + timedelta(seconds=remaining), abs=timedelta(seconds=1)
            )


def test_status_and_type_pick_the_workflows(analytics_admin: Persona, analytics_sql: Any) -> None:
    flows, runs = tables(analytics_sql, "admin@acme.example")
    for variables, keep in (
        ({"status": "PAUSED"}, pl.col("status") == "PAUSED"),
        ({"type": "NURTURE"}, pl.col("type") == "nurture"),
        (
            {"status": "ACTIVE", "type": "FOLLOW_UP"},
            (pl.col("status") == "ACTIVE") & (pl.col("type") == "follow_up"),
        ),
    ):
        got = analytics_admin.execute(WORKFLOWS, first=1, **variables)["workspace"]["workflows"]
        ids = flows.filter(keep)["id"].to_list()
        assert ids and [w["id"] for w in got["workflows"]] == [str(i) for i in ids]
        mine = runs.filter(pl.col("workflow_id").is_in(ids))
        active = mine.filter(pl.col("status").is_in(["RUNNING", "STALLED"])).height
        assert got["summary"]["totalActive"] == active
        assert all(len(w["runs"]) <= 1 for w in got["workflows"])
        p = got["performance"]
        window = finished_in(mine, when(p["windowStart"]), when(p["windowEnd"]))
        assert p["executed"] == outcome(window)[0]


def test_a_status_without_workflows_gives_zeros(analytics_admin: Persona) -> None:
    got = analytics_admin.execute(WORKFLOWS, status="COMPLETED")["workspace"]["workflows"]
    assert got["workflows"] == []
    assert got["summary"]["totalActive"] == got["summary"]["completedToday"] == 0
    assert got["performance"]["executed"] == 0
    assert got["performance"]["successRate"] == 0.0
    assert got["performance"]["bottlenecks"] == []


@pytest.mark.parametrize("first", [0, 101, -1])
def test_first_outside_1_to_100_is_bad_input(analytics_admin: Persona, first: int) -> None:
    code, details = code_of(analytics_admin, WORKFLOWS, first=first)
    assert code == "BAD_USER_INPUT" and "first" in details["fields"]


def test_unknown_status_or_type_is_refused(analytics_admin: Persona) -> None:
    assert analytics_admin.error(WORKFLOWS, type="cooking")
    assert analytics_admin.error(WORKFLOWS, status="RUNNING")


@pytest.mark.parametrize("email", ["user@acme.example", "agent@acme.example"])
def test_users_and_agents_see_the_runs_of_their_leads(
    analytics_server: Any, analytics_sql: Any, email: str
) -> None:
    from tests.client import login

    persona = login(analytics_server.url, email)
    got = persona.execute(WORKFLOWS, first=100)["workspace"]["workflows"]
    flows, runs = tables(analytics_sql, email)
    # every workflow definition, the numbers of their runs only
    assert [w["id"] for w in got["workflows"]] == [str(i) for i in flows["id"]]
    active = runs.filter(pl.col("status").is_in(["RUNNING", "STALLED"]))
    assert 0 < got["summary"]["totalActive"] == active.height < runs.height
    listed = {r["id"] for w in got["workflows"] for r in w["runs"]}
    assert listed == {str(i) for i in active["id"]}
    p = got["performance"]
    window = finished_in(runs, when(p["windowStart"]), when(p["windowEnd"]))
    executed, success, _ = outcome(window)
    assert (p["executed"], p["successRate"]) == (executed, pytest.approx(success))
    assert executed > 0
    averages = step_averages(window)
    for w in got["workflows"]:
        for k, step in enumerate(w["steps"]):
            avg, n = averages.get((int(w["id"]), k), (0.0, 0))
            assert (step["averageSeconds"], step["executions"]) == (pytest.approx(avg), n)


def test_empty_workspace_has_zeros(analytics_empty: Persona) -> None:
    got = analytics_empty.execute(WORKFLOWS)["workspace"]["workflows"]
    assert got["workflows"] == []
    assert got["summary"]["totalActive"] == 0
    assert got["summary"]["averageCompletionHours"] == 0.0
    perf = analytics_empty.execute(PERFORMANCE, period="D90")["workspace"]["workflowPerformance"]
    assert perf["overall"]["totalExecuted"] == 0 and perf["overall"]["successRate"] == 0.0
    assert perf["byType"] == perf["insights"] == perf["bottlenecks"] == []
    assert perf["efficiency"]["timeSavedHours"] == perf["efficiency"]["errorRate"] == 0.0
    assert perf["baselineConversionRate"] == 0.0


def test_each_workspace_sees_its_own_workflows(
    analytics_globex: Persona, analytics_sql: Any
) -> None:
    got = analytics_globex.execute(WORKFLOWS)["workspace"]["workflows"]
    flows, runs = tables(analytics_sql, "admin@globex.example")
    assert [w["id"] for w in got["workflows"]] == [str(i) for i in flows["id"]]
    active = runs.filter(pl.col("status").is_in(["RUNNING", "STALLED"])).height
    assert got["summary"]["totalActive"] == active


# ---- Workspace.workflowPerformance ----------------------------------------------------------


def expected_performance(sql: Any, email: str, got: dict[str, Any]) -> None:
    flows, runs = tables(sql, email)
    types = {t["type"].lower() for t in got["byType"]}
    flows = flows.filter(pl.col("type").is_in(sorted(types)))
    runs = runs.filter(pl.col("workflow_id").is_in(flows["id"].to_list()))
    window = finished_in(runs, when(got["windowStart"]), when(got["windowEnd"]))
    executed, success, hours = outcome(window)
    o = got["overall"]
    assert (o["totalExecuted"], o["successRate"]) == (executed, pytest.approx(success))
    assert o["averageCompletionHours"] == pytest.approx(hours)
    ws, user, role = workspace_of(sql, email)
    rows = sql(
        "SELECT l.stage, l.owner_id, a.user_id AS agent_user FROM lead l LEFT JOIN agent a "
        "ON a.workspace_id = l.workspace_id AND a.id = l.agent_id WHERE l.workspace_id = $1",
        ws,
    )
    leads = pl.DataFrame(
        [dict(r) for r in rows],
        schema={"stage": pl.Utf8, "owner_id": pl.Int64, "agent_user": pl.Int64},
    )
    if role == "USER":
        leads = leads.filter(pl.col("owner_id") == user)
    baseline = leads.filter(pl.col("stage") == "WON").height / leads.height
    assert got["baselineConversionRate"] == pytest.approx(baseline)
    for t in got["byType"]:
        of = window.filter(
            pl.col("workflow_id").is_in(
                flows.filter(pl.col("type") == t["type"].lower())["id"].to_list()
            )
        )
        executed, success, hours = outcome(of)
        assert (t["executed"], t["successRate"]) == (executed, pytest.approx(success))
        assert t["averageHours"] == pytest.approx(hours)
        won = of.filter(pl.col("stage") == "WON").height / of.height if of.height else 0.0
        assert t["conversionRate"] == pytest.approx(won)
        assert t["conversionImpact"] == pytest.approx(won - baseline if of.height else 0.0)
    # efficiency: steps completed x manual minutes of their kind
    step_types = {
        (w["id"], k): s["type"]
        for w in flows.iter_rows(named=True)
        for k, s in enumerate(w["steps"])
    }
    averages = step_averages(window)
    minutes = sum(n * MANUAL_MINUTES.get(step_types[key], 0) for key, (_, n) in averages.items())
    steps_done = sum(n for _, n in averages.values())
    failed = window.filter(pl.col("status") == "FAILED").height
    e = got["efficiency"]
    assert e["timeSavedHours"] == pytest.approx(minutes / 60)
    assert e["costSavings"] == pytest.approx(minutes / 60 * HOURLY_RATE)
    assert o["costSavings"] == pytest.approx(e["costSavings"])
    assert e["stepExecutions"] == steps_done + failed
    assert e["errorRate"] == pytest.approx(failed / (steps_done + failed) if failed else 0.0)
    expected = expected_bottlenecks(flows, averages)
    assert [(b["workflowId"], b["step"]) for b in got["bottlenecks"]] == [x[:2] for x in expected]
    optimizations = [i for i in got["insights"] if i["type"] == "OPTIMIZATION"]
    assert len(optimizations) == len(expected)
    assert all(i["title"] and i["recommendation"] for i in got["insights"])


@pytest.mark.parametrize("period", ["D7", "D30", "D90"])
def test_performance_matches_a_recomputation(
    analytics_admin: Persona, analytics_sql: Any, period: str
) -> None:
    got = analytics_admin.execute(PERFORMANCE, period=period)["workspace"]["workflowPerformance"]
    assert got["period"] == period
    assert got["overall"]["totalExecuted"] > 0
    assert {t["type"] for t in got["byType"]} == {
        "follow_up",
        "enrichment",
        "notification",
        "nurture",
    }
    assert got["efficiency"]["hourlyRate"] == HOURLY_RATE
    expected_performance(analytics_sql, "admin@acme.example", got)


def test_types_pick_the_workflow_types(analytics_admin: Persona, analytics_sql: Any) -> None:
    got = analytics_admin.execute(PERFORMANCE, period="D90", types=["NURTURE", "FOLLOW_UP"])
    perf = got["workspace"]["workflowPerformance"]
    assert [t["type"] for t in perf["byType"]] == ["follow_up", "nurture"]
    expected_performance(analytics_sql, "admin@acme.example", perf)


def test_a_user_sees_the_performance_of_their_leads(
    analytics_user: Persona, analytics_sql: Any
) -> None:
    got = analytics_user.execute(PERFORMANCE, period="D90")["workspace"]["workflowPerformance"]
    expected_performance(analytics_sql, "user@acme.example", got)


@pytest.mark.parametrize("period", ["H1", "H24", "Y1"])
def test_periods_other_than_7_30_90_days_are_refused(analytics_admin: Persona, period: str) -> None:
    code, details = code_of(analytics_admin, PERFORMANCE, period=period)
    assert code == "BAD_USER_INPUT" and "period" in details["fields"]


def test_a_lead_won_shows_in_the_next_conversion_impact(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    # given an open lead touched by a nurture run finished in the last 90 days
    before = analytics_admin.execute(PERFORMANCE, period="D90", types=["NURTURE"])
    nurture = before["workspace"]["workflowPerformance"]["byType"][0]
    ws, _, _ = workspace_of(analytics_sql, "admin@acme.example")
    lead = analytics_sql(
        "SELECT r.lead_id FROM workflow_run r JOIN workflow w ON w.workspace_id = r.workspace_id "
        "AND w.id = r.workflow_id JOIN lead l ON l.workspace_id = r.workspace_id "
        "AND l.id = r.lead_id WHERE r.workspace_id = $1 AND w.type = 'nurture' "
        "AND r.finished_at > now() - interval '80 days' AND l.stage NOT IN ('WON', 'LOST') "
        "ORDER BY r.lead_id LIMIT 1",
        ws,
    )[0]["lead_id"]
    # when it is won
    analytics_admin.execute(UPDATE_LEAD, id=str(lead))
    # then the next read counts it (no stale cached number)
    after = analytics_admin.execute(PERFORMANCE, period="D90", types=["NURTURE"])
    perf = after["workspace"]["workflowPerformance"]
    assert perf["byType"][0]["conversionRate"] > nurture["conversionRate"]
    expected_performance(analytics_sql, "admin@acme.example", perf)


def test_the_rollups_follow_inserts_updates_and_deletes(
    analytics_database: str, analytics_sql: Any
) -> None:
    from models import workflow_performance as wf
    from models.scope import Scope
    from models.workspaces import Role
    from tests.conftest import on_database

    ws, user, _ = workspace_of(analytics_sql, "admin@acme.example")
    flow = analytics_sql("SELECT id FROM workflow WHERE workspace_id = $1 ORDER BY id LIMIT 1", ws)
    flow_id = flow[0]["id"]
    # given a run written with SQL (no mutation writes runs) that finished two days ago,
    # and a run in progress that completes now
    inserted = analytics_sql(
        "INSERT INTO workflow_run (workspace_id, workflow_id, status, current_step, started_at, "
        "finished_at, step_seconds) VALUES ($1, $2, 'COMPLETED', 4, now() - interval '3 days', "
        "now() - interval '2 days', '[7, 11, 13, 17]') RETURNING id",
        ws,
        flow_id,
    )[0]["id"]
    moved = analytics_sql(
        "UPDATE workflow_run SET status = 'COMPLETED', finished_at = now(), "
        "step_seconds = step_seconds || '[5]'::jsonb, current_step = current_step + 1 "
        "WHERE id = (SELECT id FROM workflow_run WHERE workspace_id = $1 AND status = 'RUNNING' "
        "ORDER BY id LIMIT 1) RETURNING id",
        ws,
    )[0]["id"]
    try:
        # when the numbers are computed without any cache
        report = on_database(
            analytics_database,
            lambda db: wf.workflow_performance(
                db, Scope(ws, user, Role.ADMIN), period="D7", hourly_rate=HOURLY_RATE
            ),
        )
        # then the rollups agree with the rows
        _, runs = tables(analytics_sql, "admin@acme.example")
        window = finished_in(runs, report.window.start, report.window.end)
        assert report.overall.executed == outcome(window)[0]
        assert {inserted, moved} <= set(window["id"].to_list())
        averages = step_averages(window)
        totals = on_database(
            analytics_database,
            lambda db: wf.window_totals(
                db, wf.RunScope(Scope(ws, user, Role.ADMIN)), [flow_id], report.window
            ),
        )
        for k in range(4):
            assert totals.steps[(flow_id, k)].average == pytest.approx(averages[(flow_id, k)][0])
    finally:
        analytics_sql("DELETE FROM workflow_run WHERE id = $1", inserted)
    after = analytics_sql(
        "SELECT coalesce(sum(runs), 0) AS n FROM workflow_run_day WHERE workspace_id = $1", ws
    )[0]["n"]
    finished = analytics_sql(
        "SELECT count(*) AS n FROM workflow_run WHERE workspace_id = $1 "
        "AND finished_at IS NOT NULL",
        ws,
    )[0]["n"]
    assert after == finished
