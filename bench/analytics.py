"""Benchmark: the analytics fields of issue #5 on the `large` seed (p95 at most 100 ms warm,
at most 1 s cold), each alone and all of them in one dashboard request.

    python bench/analytics.py [--runs 20] [--only leadInsights,conversionFunnel] [--role admin]

Needs the `large` bench database (`bench/seed_large.py`; DASHGRAPH_DATABASE_URL names it,
default postgresql://postgres@127.0.0.1:5432/dashgraph_bench). Serves the app in this process
on a loopback port, signs in as the demo admin of Acme (the biggest workspace), and for each
entry of QUERIES sends `{ workspace { <selection> } }`:

- cold: the workspace's analytics cache is emptied before each request (what the first read
  after any write of the workspace costs: the field's SQL and Python, Postgres buffers warm);
- warm: the same request again (served from the cache until the next change event).

Server-side time is measured around the ASGI app (request in, response out). Last, the
`dashboard` row selects every entry at once (the fields run concurrently).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import httpx
import uvicorn
from benchkit import Timed, free_port, percentile

from app.main import create_app
from app.settings import Settings

LOGINS = {
    "admin": "admin@acme.example",
    "user": "user@acme.example",
    "agent": "agent@acme.example",
}

# name -> a selection on Workspace, with literal arguments (the worst cases: long periods)
QUERIES: dict[str, str] = {
    "leadInsights": "leadInsights(period: Y1, limit: 100) { summary { totalLeads "
    "highValueLeads urgentLeads conversionRate averageScore } insights { leadId currentScore "
    "conversionProbability priority insights recommendations { type action priority } "
    "trends { scoreChange engagementChange lastActivity } } filters { applied counts { filter "
    "count } } lastUpdated }",
    "performance": "performance(period: D30) { summary { totalLeads conversionRate "
    "responseTimeHours } leadGeneration { daily growth } leadQuality { averageScore } "
    "conversion { bySource { key rate } byAgent { rate } } engagement { emailOpenRate } "
    "trends { conversionTrend { date rate } } alerts { metric current } }",
    "workflows": "workflows(first: 20) { summary { totalActive completedToday } workflows { "
    "name steps { name averageSeconds } runs { progress nextAction { type } } } performance { "
    "successRate bottlenecks { step } } }",
    "workflowPerformance": "workflowPerformance(period: D90) { overall { totalExecuted "
    "successRate } byType { type executed conversionImpact } efficiency { timeSavedHours } "
    "insights { title } }",
    "agentPerformance": "agents { performance(period: D30) { leadsAssigned conversionRate "
    "averageResponseTimeHours rank percentile trends { conversion } insights } }",
    "agentLeaderboard": "agentLeaderboard(by: REVENUE, period: D90) { entries { rank value "
    "change agent { id name } } benchmarks { averageConversionRate } }",
    "agentUsage": "agents(kind: AI) { usage(granularity: HOUR) { points { executions } "
    "peakHours busiestDays } }",
    "conversionFunnel": "conversionFunnel(period: D90) { funnel { stages { name count "
    "percentage conversionRate averageTimeDays bottleneck } overallConversionRate } insights { "
    "stage potentialImprovement } segmentation { bySource { key count conversionRate } "
    "byBudget { band count } } }",
    "scoringTrends": "scoringTrends(period: D90, groupBy: DAY) { trends { date averageScore "
    "highValueCount scoreDistribution { excellent } topImprovers { scoreIncrease reason } } "
    "insights { overallTrend averageImprovement } }",
}


async def timed_request(
    client: httpx.AsyncClient, timed: Timed, document: str
) -> tuple[float, dict[str, Any]]:
    before = len(timed.samples)
    reply = await client.post("/graphql", json={"query": document})
    body = reply.json()
    if "errors" in body:
        raise RuntimeError(f"{document[:80]}...: {body['errors']}")
    return timed.samples[before], body


async def measure(
    client: httpx.AsyncClient, timed: Timed, app: Any, workspace_id: int, document: str, runs: int
) -> dict[str, float]:
    cache = app.state.services.cache
    cold, warm = [], []
    for _ in range(runs):
        cache.invalidate(workspace_id)
        ms, _ = await timed_request(client, timed, document)
        cold.append(ms)
        ms, _ = await timed_request(client, timed, document)
        warm.append(ms)
    return {
        "cold_p50": percentile(cold, 0.5),
        "cold_p95": percentile(cold, 0.95),
        "warm_p50": percentile(warm, 0.5),
        "warm_p95": percentile(warm, 0.95),
    }


async def main(url: str, runs: int, only: list[str], role: str) -> None:
    settings = Settings(
        database_url=url,
        jwt_secret="bench-jwt-secret-0123456789abcdefghij",
        secret_key="bench-secret-key-0123456789abcdefghij",
        run_workers=False,
        rate_limit_query="1000000/minute",
        rate_limit_mutation="1000000/minute",
    )
    app = create_app(settings)
    timed = Timed(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(timed, host="127.0.0.1", port=port, log_level="warning"))
    running = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            login = f'mutation {{ login(email: "{LOGINS[role]}", password: "demo") {{ token }} }}'
            token = (await client.post("/graphql", json={"query": login})).json()
            client.headers["Authorization"] = f"Bearer {token['data']['login']['token']}"
            _, body = await timed_request(client, timed, "{ workspace { id } }")
            workspace_id = int(body["data"]["workspace"]["id"])
            names = [n for n in QUERIES if not only or n in only]
            print(f"{'field':<28}{'cold p50':>10}{'cold p95':>10}{'warm p50':>10}{'warm p95':>10}")
            for name in names:
                document = f"{{ workspace {{ {QUERIES[name]} }} }}"
                await timed_request(client, timed, document)  # Postgres buffers, plans
                result = await measure(client, timed, app, workspace_id, document, runs)
                print(f"{name:<28}" + "".join(f"{v:>10.1f}" for v in result.values()))
            if len(names) > 1:
                together = " ".join(f"{n}: {QUERIES[n]}" for n in names)
                document = f"{{ workspace {{ {together} }} }}"
                await timed_request(client, timed, document)
                result = await measure(client, timed, app, workspace_id, document, runs)
                print(
                    f"{'dashboard (all at once)':<28}"
                    + "".join(f"{v:>10.1f}" for v in result.values())
                )
    finally:
        server.should_exit = True
        await running


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", default="", help="comma-separated QUERIES names")
    parser.add_argument("--role", choices=sorted(LOGINS), default="admin")
    args = parser.parse_args()
    url = os.environ.get(
        "DASHGRAPH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dashgraph_bench"
    )
    only = [n for n in args.only.split(",") if n]
    asyncio.run(main(url, args.runs, only, args.role))
