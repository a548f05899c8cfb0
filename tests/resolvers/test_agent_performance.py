"""`Agent.performance`, `Agent.usage`, `Workspace.agent` and `Workspace.agentLeaderboard` end to
end through gql on the shared analytics database. Every number is recomputed here with polars
from raw `agent`, `lead`, `lead_event` and `interaction` rows (not from the rollups), over the
window the answer reports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from app.main import create_app
from tests.client import Persona, login
from tests.conftest import SCORED, ServerThread, settings_for
from tests.resolvers.test_statement_count import (  # noqa: F401 (a fixture)
    _reset,
    _statements_since_reset,
    stats_database_url,
)

CONTACT = ["CALL", "EMAIL_SENT", "MEETING"]
BAND = 0.05  # the documented trend band
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

PERFORMANCE_FIELDS = """
  windowStart windowEnd leadsAssigned leadsConverted conversionRate leadsContacted
  averageResponseTimeHours averageLeadScore revenueGenerated
  executions successRate averageExecutionSeconds errorRate creditsConsumed satisfaction
  rank rankedAgents percentile trends { conversion responseTime leadQuality } insights
"""
AGENTS = f"""
query Agents($period: Period!, $kind: AgentKind) {{
  workspace {{
    agents(kind: $kind) {{ id kind name performance(period: $period) {{ {PERFORMANCE_FIELDS} }} }}
  }}
}}
"""
ONE_AGENT = f"""
query One($id: ID!, $period: Period!) {{
  workspace {{
    agent(id: $id) {{ id kind performance(period: $period) {{ {PERFORMANCE_FIELDS} }} }}
  }}
}}
"""
USAGE = """
query Usage($id: ID!, $granularity: Granularity!, $period: Period!, $range: AgentUsageRange) {
  workspace {
    agent(id: $id) {
      id kind
      usage(granularity: $granularity, period: $period, range: $range) {
        points { timestamp executions uniqueUsers credits errors }
        peakHours busiestDays
      }
    }
  }
}
"""
LIST_USAGE = """
query ListUsage { workspace { agents(kind: AI) { id usage(granularity: HOUR) {
  points { executions } peakHours busiestDays } } } }
"""
LEADERBOARD = """
query Board($by: AgentRanking!, $period: Period!, $kind: AgentKind, $limit: Int!) {
  workspace {
    agentLeaderboard(by: $by, period: $period, kind: $kind, limit: $limit) {
      entries { rank value change agent { id kind } }
      rankedAgents windowStart windowEnd
      benchmarks { averageConversionRate averageResponseTimeHours topPerformerConversionRate }
    }
  }
}
"""
LEAD_AGENTS = """
query LeadAgents { workspace { leads(first: 100) { edges { node { id agent { id
  performance { leadsAssigned } } } } } } }
"""
CREATE = """
mutation Create($agent: ID!) {
  createLead(input: {name: "Agent Perf One", source: REFERRAL, agentId: $agent}) { id }
}
"""
CALL = """
mutation Call($id: ID!) { recordLeadEvent(input: {leadId: $id, type: CALL}) { id } }
"""
WIN = """
mutation Win($id: ID!) { updateLead(id: $id, input: {stage: WON, value: 123456}) { id stage } }
"""


# ---- the independent recomputation ------------------------------------------------------------


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _frame(rows: list[Any], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([dict(r) for r in rows], schema=schema, orient="row")


def _member(sql: Any, email: str) -> tuple[int, int, str]:
    row = sql(
        "SELECT m.workspace_id, m.user_id, m.role FROM membership m JOIN app_user u "
        "ON u.id = m.user_id WHERE u.email = $1 ORDER BY m.workspace_id LIMIT 1",
        email,
    )[0]
    return row["workspace_id"], row["user_id"], row["role"]


def agents_of(sql: Any, ws: int) -> pl.DataFrame:
    return _frame(
        sql("SELECT id, name, kind, user_id, owner_id FROM agent WHERE workspace_id = $1", ws),
        {
            "id": pl.Int64,
            "name": pl.Utf8,
            "kind": pl.Utf8,
            "user_id": pl.Int64,
            "owner_id": pl.Int64,
        },
    )


def visible_ids(sql: Any, email: str) -> set[int]:
    """Scope.agents by hand: ADMIN all, USER owned, AGENT self."""
    ws, uid, role = _member(sql, email)
    agents = agents_of(sql, ws)
    if role == "USER":
        agents = agents.filter(pl.col("owner_id") == uid)
    elif role == "AGENT":
        agents = agents.filter(pl.col("user_id") == uid)
    return set(agents["id"].to_list())


def _window_numbers(
    leads: pl.DataFrame, contacts: pl.DataFrame, start: datetime, end: datetime
) -> pl.DataFrame:
    """Per agent: the leads created in [start, end), as of `end`."""
    cohort = leads.filter((pl.col("created_at") >= start) & (pl.col("created_at") < end))
    won = pl.col("converted_at").is_not_null() & (pl.col("converted_at") < end)
    per_lead = cohort.group_by("agent_id").agg(
        pl.len().alias("assigned"),
        won.sum().alias("converted"),
        pl.col("value").filter(won).sum().alias("revenue"),
        pl.col("score").mean().alias("average_score"),
    )
    first = (
        contacts.filter(
            (pl.col("created_at") >= start)
            & (pl.col("created_at") < end)
            & (pl.col("occurred_at") >= pl.col("created_at"))
        )
        .group_by("lead_id", "agent_id")
        .agg(pl.col("occurred_at").min(), pl.col("created_at").first())
        .filter(pl.col("occurred_at") < end)
        .with_columns(
            ((pl.col("occurred_at") - pl.col("created_at")).dt.total_microseconds() / 3.6e9).alias(
                "hours"
            )
        )
        .group_by("agent_id")
        .agg(pl.len().alias("contacted"), pl.col("hours").mean().alias("response_hours"))
    )
    return per_lead.join(first, on="agent_id", how="full", coalesce=True)


def expected_stats(sql: Any, ws: int, start: datetime, end: datetime) -> dict[int, dict[str, Any]]:
    """Every agent of the workspace: current and previous window numbers, AI numbers, rank,
    percentile, trends. Keys: agent id."""
    previous_start = start - (end - start)
    leads = _frame(
        sql(
            "SELECT l.id, l.agent_id, l.created_at, l.converted_at, l.value, c.value AS score "
            f"FROM lead l {SCORED} "
            "WHERE l.workspace_id = $1 AND l.agent_id IS NOT NULL "
            "AND l.created_at >= $2 AND l.created_at < $3",
            ws,
            previous_start,
            end,
        ),
        {
            "id": pl.Int64,
            "agent_id": pl.Int64,
            "created_at": pl.Datetime("us", "UTC"),
            "converted_at": pl.Datetime("us", "UTC"),
            "value": pl.Int64,
            "score": pl.Int64,
        },
    )
    contacts = _frame(
        sql(
            "SELECT e.lead_id, e.agent_id, e.occurred_at, l.created_at FROM lead_event e "
            "JOIN lead l ON l.workspace_id = e.workspace_id AND l.id = e.lead_id "
            "WHERE e.workspace_id = $1 AND e.type = ANY($2::text[]) AND e.agent_id IS NOT NULL "
            "AND l.created_at >= $3 AND l.created_at < $4",
            ws,
            CONTACT,
            previous_start,
            end,
        ),
        {
            "lead_id": pl.Int64,
            "agent_id": pl.Int64,
            "occurred_at": pl.Datetime("us", "UTC"),
            "created_at": pl.Datetime("us", "UTC"),
        },
    )
    runs = _frame(
        sql(
            "SELECT agent_id, status, success, duration_seconds, credits, satisfaction "
            "FROM interaction WHERE workspace_id = $1 AND channel = 'AI_EXECUTION' "
            "AND started_at >= $2 AND started_at < $3",
            ws,
            start,
            end,
        ),
        {
            "agent_id": pl.Int64,
            "status": pl.Utf8,
            "success": pl.Boolean,
            "duration_seconds": pl.Int64,
            "credits": pl.Int64,
            "satisfaction": pl.Float64,
        },
    )
    current = {r["agent_id"]: r for r in _window_numbers(leads, contacts, start, end).to_dicts()}
    before = {
        r["agent_id"]: r for r in _window_numbers(leads, contacts, previous_start, start).to_dicts()
    }
    out: dict[int, dict[str, Any]] = {}
    for agent in agents_of(sql, ws).to_dicts():
        cur = current.get(agent["id"], {})
        prev = before.get(agent["id"], {})
        row: dict[str, Any] = {
            "kind": agent["kind"],
            "assigned": cur.get("assigned") or 0,
            "converted": cur.get("converted") or 0,
            "revenue": float(cur.get("revenue") or 0),
            "average_score": cur.get("average_score"),
            "contacted": cur.get("contacted") or 0,
            "response_hours": cur.get("response_hours"),
            "prev_assigned": prev.get("assigned") or 0,
            "prev_converted": prev.get("converted") or 0,
            "prev_revenue": float(prev.get("revenue") or 0),
            "prev_score": prev.get("average_score"),
            "prev_contacted": prev.get("contacted") or 0,
            "prev_response": prev.get("response_hours"),
        }
        row["rate"] = row["converted"] / row["assigned"] if row["assigned"] else 0.0
        row["prev_rate"] = (
            row["prev_converted"] / row["prev_assigned"] if row["prev_assigned"] else 0.0
        )
        if agent["kind"] == "AI":
            mine = runs.filter(pl.col("agent_id") == agent["id"])
            finished = mine.filter(pl.col("status").is_in(["COMPLETED", "FAILED"]))
            n = finished.height
            row["ai"] = {
                "executions": mine.height,
                "successRate": (finished["success"].fill_null(False).sum() / n) if n else 0.0,
                "errorRate": (finished.filter(pl.col("status") == "FAILED").height / n)
                if n
                else 0.0,
                "averageExecutionSeconds": mine["duration_seconds"].mean(),
                "creditsConsumed": int(mine["credits"].sum()),
                "satisfaction": mine["satisfaction"].mean(),
            }
        out[agent["id"]] = row
    for kind in ("HUMAN", "AI"):
        ranked = sorted(
            (i for i, r in out.items() if r["kind"] == kind and r["assigned"] > 0),
            key=lambda i: (-out[i]["rate"], -out[i]["converted"], i),
        )
        for position, i in enumerate(ranked, start=1):
            out[i]["rank"] = position
            out[i]["ranked"] = len(ranked)
            out[i]["percentile"] = round(100 * (len(ranked) - position) / len(ranked), 1)
    for r in out.values():
        r["trends"] = {
            "conversion": label(
                r["rate"] if r["assigned"] else None,
                r["prev_rate"] if r["prev_assigned"] else None,
                higher_is_better=True,
            ),
            "responseTime": label(r["response_hours"], r["prev_response"], higher_is_better=False),
            "leadQuality": label(r["average_score"], r["prev_score"], higher_is_better=True),
        }
    return out


def label(current: float | None, previous: float | None, *, higher_is_better: bool) -> str:
    if current is None or previous is None:
        return "STABLE"
    band = BAND * abs(previous)
    if current - previous > band:
        return "IMPROVING" if higher_is_better else "DECLINING"
    if previous - current > band:
        return "DECLINING" if higher_is_better else "IMPROVING"
    return "STABLE"


def assert_performance(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["leadsAssigned"] == want["assigned"]
    assert got["leadsConverted"] == want["converted"]
    assert got["conversionRate"] == pytest.approx(want["rate"])
    assert got["revenueGenerated"] == pytest.approx(want["revenue"])
    assert got["leadsContacted"] == want["contacted"]
    if want["response_hours"] is None:
        assert got["averageResponseTimeHours"] is None
    else:
        assert got["averageResponseTimeHours"] == pytest.approx(want["response_hours"], rel=1e-6)
    if want["average_score"] is None:
        assert got["averageLeadScore"] is None
    else:
        assert got["averageLeadScore"] == pytest.approx(want["average_score"])
    assert got["rank"] == want.get("rank")
    assert got["rankedAgents"] == want.get("ranked", got["rankedAgents"])
    assert got["percentile"] == (
        pytest.approx(want["percentile"]) if "percentile" in want else None
    )
    assert got["trends"] == want["trends"]
    if want["kind"] == "AI":
        for name, value in want["ai"].items():
            assert got[name] == (pytest.approx(value) if value is not None else None), name
    else:
        for name in ("executions", "successRate", "errorRate", "creditsConsumed", "satisfaction"):
            assert got[name] is None, name


def _ws(sql: Any, email: str) -> int:
    return _member(sql, email)[0]


# ---- performance ------------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["D7", "D30", "D90"])
def test_every_agents_numbers_match_a_recomputation(
    analytics_admin: Persona, analytics_sql: Any, period: str
) -> None:
    # given the admin of Acme
    # when every agent's performance is read
    agents = analytics_admin.execute(AGENTS, period=period)["workspace"]["agents"]
    # then each one's numbers, rank, percentile and trends match the raw rows
    first = agents[0]["performance"]
    want = expected_stats(
        analytics_sql,
        _ws(analytics_sql, "admin@acme.example"),
        _ts(first["windowStart"]),
        _ts(first["windowEnd"]),
    )
    assert {int(a["id"]) for a in agents} == set(want)
    assert any(w["assigned"] for w in want.values()), "the seed gives agents leads"
    assert any(w["kind"] == "AI" for w in want.values())
    for agent in agents:
        assert_performance(agent["performance"], want[int(agent["id"])])


def test_ranks_percentiles_and_insights_follow_the_documented_rules(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    agents = analytics_admin.execute(AGENTS, period="D30")["workspace"]["agents"]
    for kind in ("HUMAN", "AI"):
        ranked = sorted(
            (a["performance"] for a in agents if a["kind"] == kind and a["performance"]["rank"]),
            key=lambda p: p["rank"],
        )
        # ranks are 1..n by conversion rate, best first
        assert [p["rank"] for p in ranked] == list(range(1, len(ranked) + 1))
        rates = [p["conversionRate"] for p in ranked]
        assert rates == sorted(rates, reverse=True)
        if len(ranked) > 1:
            assert "Top performer in conversion rate" in ranked[0]["insights"]
    for a in agents:
        p = a["performance"]
        if p["leadsAssigned"] == 0:
            assert p["rank"] is None and "No leads assigned in this period" in p["insights"]
        label_text = {
            "IMPROVING": "Conversion rate improving on the previous period",
            "DECLINING": "Conversion rate declining on the previous period",
        }.get(p["trends"]["conversion"])
        if label_text:
            assert label_text in p["insights"]


def test_a_period_with_no_leads_gives_zeros_not_errors(analytics_admin: Persona) -> None:
    # H1: at most a handful of leads; whatever there is, nothing is NaN or an error
    agents = analytics_admin.execute(AGENTS, period="H1")["workspace"]["agents"]
    for a in agents:
        p = a["performance"]
        assert 0.0 <= p["conversionRate"] <= 1.0
        if p["leadsAssigned"] == 0:
            assert p["conversionRate"] == 0.0 and p["averageLeadScore"] is None


def test_empty_workspace_has_no_agents_and_an_empty_leaderboard(
    analytics_empty: Persona,
) -> None:
    assert analytics_empty.execute(AGENTS, period="D30")["workspace"]["agents"] == []
    board = analytics_empty.execute(LEADERBOARD, by="REVENUE", period="D30", limit=10)
    assert board["workspace"]["agentLeaderboard"]["entries"] == []
    assert board["workspace"]["agentLeaderboard"]["benchmarks"] == {
        "averageConversionRate": 0.0,
        "averageResponseTimeHours": None,
        "topPerformerConversionRate": 0.0,
    }


# ---- roles ------------------------------------------------------------------------------------


def test_an_agent_sees_only_themselves_with_workspace_wide_ranks(
    analytics_agent: Persona, analytics_admin: Persona, analytics_sql: Any
) -> None:
    own = visible_ids(analytics_sql, "agent@acme.example")
    agents = analytics_agent.execute(AGENTS, period="D30")["workspace"]["agents"]
    assert {int(a["id"]) for a in agents} == own and len(own) == 1
    # the rank is the one among every agent of the workspace (the admin's view)
    everyone = analytics_admin.execute(AGENTS, period="D30")["workspace"]["agents"]
    admin_view = {a["id"]: a["performance"] for a in everyone}

    def numbers(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in ("windowStart", "windowEnd")}

    assert numbers(agents[0]["performance"]) == numbers(admin_view[agents[0]["id"]])
    # the leaderboard shows their own entry only, at its workspace rank
    board = analytics_agent.execute(LEADERBOARD, by="CONVERSION_RATE", period="D30", limit=100)
    full = analytics_admin.execute(LEADERBOARD, by="CONVERSION_RATE", period="D30", limit=100)
    mine = board["workspace"]["agentLeaderboard"]
    assert {e["agent"]["id"] for e in mine["entries"]} <= {a["id"] for a in agents}
    assert mine["entries"] == [
        e for e in full["workspace"]["agentLeaderboard"]["entries"] if int(e["agent"]["id"]) in own
    ]
    assert mine["benchmarks"] == full["workspace"]["agentLeaderboard"]["benchmarks"]
    # another agent, asked for by id: NOT_FOUND
    other = next(a["id"] for a in everyone if int(a["id"]) not in own)
    error = analytics_agent.error(ONE_AGENT, id=other, period="D30")
    assert error["extensions"]["code"] == "NOT_FOUND"


def test_a_user_sees_their_own_agents_and_null_numbers_of_others(
    analytics_user: Persona, analytics_sql: Any
) -> None:
    own = visible_ids(analytics_sql, "user@acme.example")
    agents = analytics_user.execute(AGENTS, period="D30")["workspace"]["agents"]
    assert {int(a["id"]) for a in agents} == own
    assert all(a["performance"] is not None for a in agents)
    # a lead's agent the user does not own: visible as the lead's agent, without numbers
    leads = analytics_user.execute(LEAD_AGENTS)["workspace"]["leads"]["edges"]
    seen = [e["node"]["agent"] for e in leads if e["node"]["agent"]]
    assert seen
    for agent in seen:
        assert (agent["performance"] is None) == (int(agent["id"]) not in own)


def test_another_workspaces_agent_is_not_found(
    analytics_admin: Persona, analytics_globex: Persona
) -> None:
    globex_agent = analytics_globex.execute(AGENTS, period="D7")["workspace"]["agents"][0]["id"]
    error = analytics_admin.error(ONE_AGENT, id=globex_agent, period="D7")
    assert error["extensions"]["code"] == "NOT_FOUND"
    error = analytics_admin.error(ONE_AGENT, id="not-an-id", period="D7")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# ---- leaderboard ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["CONVERSION_RATE", "REVENUE", "RESPONSE_TIME"])
@pytest.mark.parametrize("kind", [None, "HUMAN", "AI"])
def test_leaderboard_order_change_and_benchmarks(
    analytics_admin: Persona, analytics_sql: Any, by: str, kind: str | None
) -> None:
    board = analytics_admin.execute(LEADERBOARD, by=by, period="D90", kind=kind, limit=100)[
        "workspace"
    ]["agentLeaderboard"]
    want = expected_stats(
        analytics_sql,
        _ws(analytics_sql, "admin@acme.example"),
        _ts(board["windowStart"]),
        _ts(board["windowEnd"]),
    )
    pool = {i: r for i, r in want.items() if kind is None or r["kind"] == kind}

    def order(prefix: str) -> list[int]:
        volume = "contacted" if by == "RESPONSE_TIME" else "converted"
        if by == "RESPONSE_TIME":
            eligible = [i for i, r in pool.items() if r[f"{prefix}contacted"] > 0]
            value = "response_hours" if not prefix else "prev_response"
            return sorted(eligible, key=lambda i: (pool[i][value], -pool[i][prefix + volume], i))
        eligible = [i for i, r in pool.items() if r[f"{prefix}assigned"] > 0]
        value = {"CONVERSION_RATE": "rate", "REVENUE": "revenue"}[by]
        return sorted(
            eligible, key=lambda i: (-pool[i][prefix + value], -pool[i][prefix + volume], i)
        )

    now, before = order(""), order("prev_")
    assert [int(e["agent"]["id"]) for e in board["entries"]] == now
    assert [e["rank"] for e in board["entries"]] == list(range(1, len(now) + 1))
    assert board["rankedAgents"] == len(now)
    for e in board["entries"]:
        i = int(e["agent"]["id"])
        value = {"CONVERSION_RATE": "rate", "REVENUE": "revenue", "RESPONSE_TIME": "response_hours"}
        assert e["value"] == pytest.approx(pool[i][value[by]])
        assert e["change"] == (before.index(i) + 1 - e["rank"] if i in before else None)
        if kind:
            assert e["agent"]["kind"] == kind
    ranked = [r for r in pool.values() if r["assigned"] > 0]
    rates = [r["rate"] for r in ranked]
    hours = [r["response_hours"] for r in pool.values() if r["response_hours"] is not None]
    assert board["benchmarks"]["averageConversionRate"] == pytest.approx(
        sum(rates) / len(rates) if rates else 0.0
    )
    assert board["benchmarks"]["topPerformerConversionRate"] == pytest.approx(max(rates, default=0))
    assert board["benchmarks"]["averageResponseTimeHours"] == (
        pytest.approx(sum(hours) / len(hours)) if hours else None
    )
    # limit cuts the same order
    top = analytics_admin.execute(LEADERBOARD, by=by, period="D90", kind=kind, limit=3)
    assert [int(e["agent"]["id"]) for e in top["workspace"]["agentLeaderboard"]["entries"]] == now[
        :3
    ]


@pytest.mark.parametrize("limit", [0, 101])
def test_leaderboard_limit_out_of_range_is_bad_user_input(
    analytics_admin: Persona, limit: int
) -> None:
    error = analytics_admin.error(LEADERBOARD, by="REVENUE", period="D30", limit=limit)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "limit" in error["extensions"]["details"]["fields"]


# ---- usage ------------------------------------------------------------------------------------


def _bucket(at: pl.Expr, granularity: str) -> pl.Expr:
    return {
        "HOUR": at.dt.truncate("1h"),
        "DAY": at.dt.truncate("1d"),
        "WEEK": at.dt.truncate("1w"),  # polars weeks start on Monday, like Postgres
        "MONTH": at.dt.truncate("1mo"),
    }[granularity]


def expected_usage(
    sql: Any, ws: int, agent_id: int, kind: str, granularity: str, points: list[dict[str, Any]]
) -> tuple[dict[datetime, dict[str, int]], list[int], list[str]]:
    """The agent's interactions (AI: AI_EXECUTION only) of the whole buckets the answer shows."""
    start = _ts(points[0]["timestamp"])
    last = _ts(points[-1]["timestamp"])
    end = {
        "HOUR": last + timedelta(hours=1),
        "DAY": last + timedelta(days=1),
        "WEEK": last + timedelta(weeks=1),
        "MONTH": (last + timedelta(days=32)).replace(day=1),
    }[granularity]
    rows = sql(
        "SELECT started_at, user_id, credits, status FROM interaction "
        "WHERE workspace_id = $1 AND agent_id = $2 AND started_at >= $3 AND started_at < $4 "
        "AND ($5 = 'HUMAN' OR channel = 'AI_EXECUTION')",
        ws,
        agent_id,
        start,
        end,
        kind,
    )
    frame = _frame(
        rows,
        {
            "started_at": pl.Datetime("us", "UTC"),
            "user_id": pl.Int64,
            "credits": pl.Int64,
            "status": pl.Utf8,
        },
    )
    buckets = (
        frame.with_columns(_bucket(pl.col("started_at"), granularity).alias("bucket"))
        .group_by("bucket")
        .agg(
            pl.len().alias("executions"),
            pl.col("user_id").drop_nulls().n_unique().alias("uniqueUsers"),
            pl.col("credits").sum().alias("credits"),
            (pl.col("status") == "FAILED").sum().alias("errors"),
        )
    )
    by_bucket = {
        r["bucket"]: {k: int(r[k]) for k in ("executions", "uniqueUsers", "credits", "errors")}
        for r in buckets.to_dicts()
    }
    hours = frame.group_by(pl.col("started_at").dt.hour().alias("h")).agg(pl.len().alias("n"))
    peak = [r["h"] for r in hours.sort(["n", "h"], descending=[True, False]).to_dicts()][:3]
    days = frame.group_by(pl.col("started_at").dt.weekday().alias("d")).agg(pl.len().alias("n"))
    busiest = [
        WEEKDAYS[r["d"] - 1] for r in days.sort(["n", "d"], descending=[True, False]).to_dicts()
    ][:2]
    return by_bucket, peak, busiest


def _busiest_agent(sql: Any, ws: int, kind: str) -> int:
    return int(
        sql(
            "SELECT i.agent_id FROM interaction i JOIN agent a ON a.workspace_id = i.workspace_id "
            "AND a.id = i.agent_id WHERE i.workspace_id = $1 AND a.kind = $2 "
            "AND i.started_at > now() - interval '7 days' "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            ws,
            kind,
        )[0]["agent_id"]
    )


@pytest.mark.parametrize(
    ("kind", "granularity", "period"),
    [
        ("AI", "HOUR", "D7"),
        ("HUMAN", "HOUR", "D7"),
        ("AI", "DAY", "D90"),
        ("HUMAN", "WEEK", "D90"),
        ("AI", "MONTH", "Y1"),
    ],  # fmt: skip
)
def test_usage_buckets_peak_hours_and_busiest_days(
    analytics_admin: Persona, analytics_sql: Any, kind: str, granularity: str, period: str
) -> None:
    ws = _ws(analytics_sql, "admin@acme.example")
    agent_id = _busiest_agent(analytics_sql, ws, kind)
    usage = analytics_admin.execute(
        USAGE, id=str(agent_id), granularity=granularity, period=period
    )["workspace"]["agent"]["usage"]
    points = usage["points"]
    want, peak, busiest = expected_usage(analytics_sql, ws, agent_id, kind, granularity, points)
    # zero-filled, consecutive buckets
    stamps = [_ts(p["timestamp"]) for p in points]
    assert stamps == sorted(set(stamps))
    assert sum(p["executions"] for p in points) == sum(w["executions"] for w in want.values()) > 0
    for p in points:
        expected = want.get(
            _ts(p["timestamp"]), {"executions": 0, "uniqueUsers": 0, "credits": 0, "errors": 0}
        )
        assert {k: p[k] for k in expected} == expected, p["timestamp"]
    assert usage["peakHours"] == peak
    assert usage["busiestDays"] == busiest


def test_usage_over_an_explicit_range(analytics_admin: Persona, analytics_sql: Any) -> None:
    ws = _ws(analytics_sql, "admin@acme.example")
    agent_id = _busiest_agent(analytics_sql, ws, "AI")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=3)
    usage = analytics_admin.execute(
        USAGE,
        id=str(agent_id),
        granularity="HOUR",
        period="D7",
        range={"start": start.isoformat(), "end": end.isoformat()},
    )["workspace"]["agent"]["usage"]
    assert len(usage["points"]) == 72
    assert _ts(usage["points"][0]["timestamp"]) == start
    want, peak, busiest = expected_usage(analytics_sql, ws, agent_id, "AI", "HOUR", usage["points"])
    assert sum(p["executions"] for p in usage["points"]) == sum(
        w["executions"] for w in want.values()
    )
    assert usage["peakHours"] == peak and usage["busiestDays"] == busiest


@pytest.mark.parametrize(
    ("granularity", "period", "range_days"),
    [("HOUR", "Y1", None), ("HOUR", "D90", None), ("HOUR", "D7", -1), ("DAY", "D7", 1500)],
)
def test_usage_with_too_many_buckets_or_an_empty_range_is_bad_user_input(
    analytics_admin: Persona,
    analytics_sql: Any,
    granularity: str,
    period: str,
    range_days: int | None,
) -> None:
    ws = _ws(analytics_sql, "admin@acme.example")
    agent_id = _busiest_agent(analytics_sql, ws, "AI")
    variables: dict[str, Any] = {"id": str(agent_id), "granularity": granularity, "period": period}
    if range_days is not None:
        end = datetime.now(UTC)
        variables["range"] = {
            "start": (end - timedelta(days=range_days)).isoformat(),
            "end": end.isoformat(),
        }
    error = analytics_admin.error(USAGE, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(error["extensions"]["details"]["fields"]) & {"granularity", "range"}


def test_usage_of_every_ai_agent_and_none_for_others(
    analytics_admin: Persona, analytics_user: Persona, analytics_sql: Any
) -> None:
    agents = analytics_admin.execute(LIST_USAGE)["workspace"]["agents"]
    assert agents and all(len(a["usage"]["points"]) in (168, 169) for a in agents)
    # the user reads the usage of their own agents only
    own = visible_ids(analytics_sql, "user@acme.example")
    mine = analytics_user.execute(LIST_USAGE)["workspace"]["agents"]
    assert {int(a["id"]) for a in mine} <= own


# ---- writes move the numbers -------------------------------------------------------------------


def test_a_write_moves_the_numbers_on_the_next_read(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    ws = _ws(analytics_sql, "admin@acme.example")
    agent_id = _busiest_agent(analytics_sql, ws, "HUMAN")
    before = analytics_admin.execute(ONE_AGENT, id=str(agent_id), period="D7")
    perf = before["workspace"]["agent"]["performance"]
    # when a lead is created for the agent, called and won through gql
    lead = analytics_admin.execute(CREATE, agent=str(agent_id))["createLead"]["id"]
    after = analytics_admin.execute(ONE_AGENT, id=str(agent_id), period="D7")
    assert after["workspace"]["agent"]["performance"]["leadsAssigned"] == perf["leadsAssigned"] + 1
    analytics_admin.execute(CALL, id=lead)
    analytics_admin.execute(WIN, id=lead)
    now = analytics_admin.execute(ONE_AGENT, id=str(agent_id), period="D7")
    got = now["workspace"]["agent"]["performance"]
    assert got["leadsConverted"] == perf["leadsConverted"] + 1
    assert got["leadsContacted"] == perf["leadsContacted"] + 1
    assert got["revenueGenerated"] == pytest.approx(perf["revenueGenerated"] + 123456)
    want = expected_stats(analytics_sql, ws, _ts(got["windowStart"]), _ts(got["windowEnd"]))
    assert_performance(got, want[agent_id])


# ---- no N+1 -------------------------------------------------------------------------------------


def test_agents_performance_is_a_fixed_number_of_statements(stats_database_url: str) -> None:  # noqa: F811
    app = create_app(settings_for(stats_database_url, run_workers=False))
    with ServerThread(app) as server:
        admin = login(server.url, "admin@acme.example")
        for _ in range(3):  # warm the pool: opening connections runs set-up statements
            admin.execute(AGENTS, period="D30")
        counts = {}
        for kind in ("AI", None):
            server.services.cache.invalidate(1)  # a cold compute, as after a write
            server.services.cache.invalidate(admin_ws(admin))
            asyncio.run(_reset(stats_database_url))
            agents = admin.execute(AGENTS, period="D30", kind=kind)["workspace"]["agents"]
            assert agents
            counts[kind] = (len(agents), asyncio.run(_statements_since_reset(stats_database_url)))
    # viewer, agent list, and the four statements of the one computation, for 1 or 50 agents
    assert counts["AI"][0] < counts[None][0]
    assert counts["AI"][1] == counts[None][1] <= 6, counts


def admin_ws(admin: Persona) -> int:
    data = admin.execute("{ workspace { id } }")
    return int(data["workspace"]["id"])


def test_usage_rollups_follow_interaction_inserts_updates_and_deletes(
    analytics_admin: Persona, analytics_sql: Any
) -> None:
    # given an AI execution written straight to the table (the rollups' triggers must follow;
    # each read below uses a (granularity, period) no other test reads, so nothing is cached)
    ws = _ws(analytics_sql, "admin@acme.example")
    agent_id = _busiest_agent(analytics_sql, ws, "AI")
    user_id = _member(analytics_sql, "user@acme.example")[1]

    def check(granularity: str, period: str) -> None:
        usage = analytics_admin.execute(
            USAGE, id=str(agent_id), granularity=granularity, period=period
        )["workspace"]["agent"]["usage"]
        want, peak, busiest = expected_usage(
            analytics_sql, ws, agent_id, "AI", granularity, usage["points"]
        )
        for p in usage["points"]:
            expected = want.get(
                _ts(p["timestamp"]), {"executions": 0, "uniqueUsers": 0, "credits": 0, "errors": 0}
            )
            assert {k: p[k] for k in expected} == expected, (granularity, p["timestamp"])
        assert usage["peakHours"] == peak and usage["busiestDays"] == busiest

    run = analytics_sql(
        "INSERT INTO interaction (workspace_id, agent_id, user_id, channel, direction, status, "
        "started_at, duration_seconds, credits, success, error) VALUES ($1, $2, $3, "
        "'AI_EXECUTION', 'OUTBOUND', 'FAILED', now() - interval '1 hour', 5, 7, false, 'boom') "
        "RETURNING id",
        ws,
        agent_id,
        user_id,
    )[0]["id"]
    check("HOUR", "H24")
    analytics_sql(
        "UPDATE interaction SET status = 'COMPLETED', credits = 9, success = true, error = NULL "
        "WHERE workspace_id = $1 AND id = $2",
        ws,
        run,
    )
    check("DAY", "D7")
    analytics_sql("DELETE FROM interaction WHERE workspace_id = $1 AND id = $2", ws, run)
    check("WEEK", "D30")
