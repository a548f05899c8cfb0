"""MlModel.performance through gql: counts, error and timeout rates, latency percentiles and
throughput recomputed here from the `ml_prediction_stat` rows, and accuracy / AUC recomputed
from the outcomes and stored scores this test reads itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.main import create_app
from ml.score_cache import clear_caches
from tests.client import Persona, login
from tests.conftest import ServerThread, fetch, seeded_database, settings_for
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job
from tests.resolvers.test_online_scoring import reset_config, set_config, touch

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1
# the histogram's bucket bounds (ms), as documented in the schema; the last bucket is +inf
BOUNDS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

PERFORMANCE = """
query Performance($id: ID!, $period: Period!) {
  model(id: $id) {
    performance(period: $period) {
      period since until predictionCount errorRate timeoutRate averageLatencyMs
      p50LatencyMs p95LatencyMs p99LatencyMs throughput accuracy auc evaluatedCount
      accuracySince threshold daily { day predictionCount errorRate averageLatencyMs }
      previousP95LatencyMs alerts { type severity value threshold message timestamp }
    }
  }
}
"""
LEAD = "query Lead($id: ID!) { lead(id: $id) { id score { value cached } } }"
PAGE = """
query Page($first: Int!) {
  workspace { leads(first: $first) { edges { node { id score { value } } } } }
}
"""
RECORD = """
mutation Record($input: LeadEventInput!) { recordLeadEvent(input: $input) { id occurredAt } }
"""


@pytest.fixture(scope="module")
def perf_database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_model_performance", "small", now=NOW)


@pytest.fixture(scope="module")
def perf_server(perf_database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(perf_database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(perf_server: ServerThread) -> Persona:
    return login(perf_server.url, "admin@acme.example")


def scalar(url: str, query: str, *args: Any) -> Any:
    return fetch(url, query, *args)[0][0]


def stat_totals(url: str, model_id: int) -> Any:
    return fetch(
        url,
        "SELECT coalesce(sum(count), 0) AS count, coalesce(sum(errors), 0) AS errors,"
        " coalesce(sum(timeouts), 0) AS timeouts FROM ml_prediction_stat"
        " WHERE workspace_id = $1 AND model_id = $2",
        ACME,
        model_id,
    )[0]


@pytest.fixture(scope="module")
def traffic(admin: Persona, perf_database: str) -> dict[str, Any]:
    """Given a promoted model that batch-scored every lead, then online traffic: a page of 30
    misses (one predict call), 5 single misses, one timeout; then 12 outcomes recorded, and
    one outcome on a lead scored only after it. Returns what the test knows of it."""
    job = admin.execute(RETRAIN, input=FAST)["retrainModel"]
    done = wait_for_job(admin, job["id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done
    model_id = int(done["result"]["modelId"])
    assert wait_for_job(admin, done["result"]["scoreJobId"])["status"] == "SUCCEEDED"
    leads = int(scalar(perf_database, "SELECT count(*) FROM lead WHERE workspace_id = $1", ACME))

    page_ids = [
        int(e["node"]["id"]) for e in admin.execute(PAGE, first=30)["workspace"]["leads"]["edges"]
    ]
    touch(perf_database, page_ids)
    admin.execute(PAGE, first=30)
    open_ids = [
        int(r["id"])
        for r in fetch(
            perf_database,
            "SELECT id FROM lead WHERE workspace_id = $1 AND stage NOT IN ('WON', 'LOST')"
            " AND id <> ALL($2::bigint[]) ORDER BY id LIMIT 19",
            ACME,
            page_ids,
        )
    ]
    singles, outcome_ids, late = open_ids[:5], open_ids[5:17], open_ids[17]
    for lead_id in singles:
        touch(perf_database, [lead_id])
        assert admin.execute(LEAD, id=str(lead_id))["lead"]["score"]["cached"] is False
    timed_out = open_ids[18]
    touch(perf_database, [timed_out])
    set_config(perf_database, timeout_ms=0)
    try:
        assert admin.error(LEAD, id=str(timed_out))["extensions"]["code"] == "PREDICTION_TIMEOUT"
    finally:
        reset_config(perf_database)

    # outcomes: half won, half lost
    for i, lead_id in enumerate(outcome_ids):
        stage = "WON" if i % 2 == 0 else "LOST"
        admin.execute(
            RECORD, input={"leadId": str(lead_id), "type": "STAGE_CHANGE", "toStage": stage}
        )
    # a lead whose only score of this model comes after its outcome is not evaluated
    fetch(perf_database, "DELETE FROM lead_score WHERE lead_id = $1", late)
    admin.execute(RECORD, input={"leadId": str(late), "type": "STAGE_CHANGE", "toStage": "WON"})
    clear_caches()
    assert admin.execute(LEAD, id=str(late))["lead"]["score"]["cached"] is False

    expected_count = leads + 30 + 5 + 1 + 1
    deadline = time.monotonic() + 15
    while stat_totals(perf_database, model_id)["count"] < expected_count:
        assert time.monotonic() < deadline, stat_totals(perf_database, model_id)
        time.sleep(0.2)
    time.sleep(1.5)  # the late lead's online score is flushed too
    return {"modelId": model_id, "count": expected_count, "outcomes": outcome_ids, "late": late}


def quantile(buckets: list[int], q: float) -> float | None:
    """Linear interpolation inside the bucket holding rank q * total (0 below the first)."""
    total = sum(buckets)
    if not total:
        return None
    rank, below = q * total, 0
    for i, n in enumerate(buckets):
        if n and below + n >= rank:
            if i == len(BOUNDS):
                return float(BOUNDS[-1])
            low = 0.0 if i == 0 else BOUNDS[i - 1]
            return low + (BOUNDS[i] - low) * (rank - below) / n
        below += n
    return float(BOUNDS[-1])


def rank_auc(won: list[bool], p: list[float]) -> float | None:
    pos = [x for x, w in zip(p, won, strict=True) if w]
    neg = [x for x, w in zip(p, won, strict=True) if not w]
    if not pos or not neg:
        return None
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def test_counts_and_latency_match_the_stat_rows(
    traffic: dict[str, Any], admin: Persona, perf_database: str
) -> None:
    perf = admin.execute(PERFORMANCE, id=str(traffic["modelId"]), period="H24")["model"][
        "performance"
    ]
    since = datetime.fromisoformat(perf["since"])
    rows = fetch(
        perf_database,
        "SELECT count, errors, timeouts, latency_sum_ms, latency_buckets FROM ml_prediction_stat"
        " WHERE workspace_id = $1 AND model_id = $2"
        " AND minute >= date_trunc('minute', $3::timestamptz)",
        ACME,
        traffic["modelId"],
        since,
    )
    count = sum(r["count"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    timeouts = sum(r["timeouts"] for r in rows)
    buckets = [sum(col) for col in zip(*(r["latency_buckets"] for r in rows), strict=True)]
    latency_sum = sum(r["latency_sum_ms"] for r in rows)

    # the batch job (one record per batch), 30 + 5 + 1 online misses, the timed-out lead
    assert count == perf["predictionCount"] == traffic["count"]
    assert errors == timeouts == 1
    assert perf["errorRate"] == pytest.approx(errors / count)
    assert perf["timeoutRate"] == pytest.approx(timeouts / count)
    # predict calls: the job's batches, the page, 5 + 1 singles (the timeout has no latency)
    assert sum(buckets) >= 1 + 5 + 1 + 1
    assert perf["averageLatencyMs"] == pytest.approx(latency_sum / sum(buckets))
    for name, q in (("p50LatencyMs", 0.5), ("p95LatencyMs", 0.95), ("p99LatencyMs", 0.99)):
        assert perf[name] == pytest.approx(quantile(buckets, q)), name
    assert perf["p50LatencyMs"] <= perf["p95LatencyMs"] <= perf["p99LatencyMs"]
    assert perf["throughput"] == pytest.approx(count / (24 * 60))
    assert sum(d["predictionCount"] for d in perf["daily"]) == count

    # an hour holds it all as well, at 60 times the rate per minute
    hour = admin.execute(PERFORMANCE, id=str(traffic["modelId"]), period="H1")["model"][
        "performance"
    ]
    assert hour["predictionCount"] == count
    assert hour["throughput"] == pytest.approx(count / 60)


def test_accuracy_on_outcomes_known_since_deployment(
    traffic: dict[str, Any], admin: Persona, perf_database: str
) -> None:
    perf = admin.execute(PERFORMANCE, id=str(traffic["modelId"]), period="D7")["model"][
        "performance"
    ]
    threshold = scalar(
        perf_database,
        "SELECT coalesce((metrics->'test'->>'threshold')::float8, 0.5) FROM ml_model WHERE id = $1",
        traffic["modelId"],
    )
    assert perf["threshold"] == pytest.approx(threshold)
    # each outcome lead: its last stage change, and this model's newest score before it
    rows = fetch(
        perf_database,
        "SELECT DISTINCT ON (e.lead_id) e.lead_id, e.to_stage, s.probability"
        " FROM lead_event e JOIN lead_score s ON s.lead_id = e.lead_id AND s.model_id = $2"
        "  AND s.scored_at < e.occurred_at"
        " WHERE e.workspace_id = $1 AND e.type = 'STAGE_CHANGE' AND e.lead_id = ANY($3::bigint[])"
        " ORDER BY e.lead_id, s.scored_at DESC",
        ACME,
        traffic["modelId"],
        [*traffic["outcomes"], traffic["late"]],
    )
    assert {int(r["lead_id"]) for r in rows} == set(traffic["outcomes"])  # not the late one
    won = [r["to_stage"] == "WON" for r in rows]
    p = [float(r["probability"]) for r in rows]
    right = [(x >= threshold) == w for x, w in zip(p, won, strict=True)]
    assert perf["evaluatedCount"] == len(rows) == 12
    assert perf["accuracy"] == pytest.approx(sum(right) / len(right))
    assert perf["auc"] == pytest.approx(rank_auc(won, p))


def test_a_quiet_model_reports_nulls_not_zeros(
    traffic: dict[str, Any], admin: Persona, perf_database: str
) -> None:
    other = int(
        scalar(
            perf_database,
            "INSERT INTO ml_model (workspace_id, name, version, status, type, algorithm, metrics,"
            " hyperparameters, feature_importance, reference, training_sizes, created_at)"
            " VALUES ($1, 'quiet', 1, 'CANDIDATE', 'SCORING', 'catboost', '{}', '{}', '{}',"
            " '{}', '{}', now()) RETURNING id",
            ACME,
        )
    )
    perf = admin.execute(PERFORMANCE, id=str(other), period="D30")["model"]["performance"]
    assert perf["predictionCount"] == 0 and perf["throughput"] == 0
    assert perf["errorRate"] is None and perf["p50LatencyMs"] is None
    assert perf["accuracy"] is None and perf["auc"] is None and perf["evaluatedCount"] == 0
    assert perf["daily"] == []


def test_another_workspaces_model_is_not_found(
    traffic: dict[str, Any], perf_server: ServerThread
) -> None:
    globex = login(perf_server.url, "admin@globex.example")
    error = globex.error(PERFORMANCE, id=str(traffic["modelId"]), period="H24")
    assert error["extensions"]["code"] == "MODEL_NOT_FOUND"


def test_alerts_follow_the_ml_config_thresholds(
    traffic: dict[str, Any], admin: Persona, perf_database: str
) -> None:
    model_id = traffic["modelId"]
    # given a quiet day before: 10 fast calls 30 hours ago (all in the first bucket)
    fetch(
        perf_database,
        "INSERT INTO ml_prediction_stat (workspace_id, model_id, minute, count, errors, timeouts,"
        " latency_sum_ms, latency_buckets) VALUES ($1, $2,"
        " date_trunc('minute', now() - interval '30 hours'), 10, 0, 0, 2.5, $3::bigint[])",
        ACME,
        model_id,
        [10] + [0] * len(BOUNDS),
    )
    test_accuracy = float(
        scalar(
            perf_database,
            "SELECT (metrics->'test'->>'accuracy')::float8 FROM ml_model WHERE id = $1",
            model_id,
        )
    )
    set_config(perf_database, alert_accuracy_drop=0.0, alert_latency_increase_ms=0.0)
    try:
        perf = admin.execute(PERFORMANCE, id=str(model_id), period="H24")["model"]["performance"]
    finally:
        reset_config(perf_database)
    previous = quantile([10] + [0] * len(BOUNDS), 0.95)
    assert perf["previousP95LatencyMs"] == pytest.approx(previous)
    by_type = {a["type"]: a for a in perf["alerts"]}
    increase = perf["p95LatencyMs"] - previous
    assert increase > 0  # the job's batches and online calls are slower than 0.5 ms
    assert by_type["LATENCY_INCREASE"]["value"] == pytest.approx(increase)
    assert by_type["LATENCY_INCREASE"]["severity"] == "CRITICAL"  # beyond twice 0
    assert all(a["timestamp"] == perf["until"] for a in perf["alerts"])
    drop = test_accuracy - perf["accuracy"]
    assert ("ACCURACY_DROP" in by_type) is (drop > 0)
    if drop > 0:
        assert by_type["ACCURACY_DROP"]["value"] == pytest.approx(drop)

    # the default thresholds (5 points of accuracy, 100 ms of p95)
    default = admin.execute(PERFORMANCE, id=str(model_id), period="H24")["model"]["performance"]
    kinds = {a["type"] for a in default["alerts"]}
    assert ("LATENCY_INCREASE" in kinds) is (increase > 100)
    assert ("ACCURACY_DROP" in kinds) is (drop > 0.05)
    assert all(a["threshold"] in (0.05, 100.0) for a in default["alerts"])
