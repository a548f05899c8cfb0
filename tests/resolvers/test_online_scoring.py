"""Online scoring end to end through gql: Lead.score misses, process-cache and stored hits, a
lead change invalidating, A/B routing, PREDICTION_TIMEOUT, the fallback model, statements per
page, and scoreLeads with a filter (and its refusals)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

from app.main import create_app
from ml.score_cache import clear_caches
from tests.client import Persona, login
from tests.conftest import ServerThread, StatementCounter, fetch, seeded_database, settings_for
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job
from tests.resolvers.test_scoring import expected_probabilities

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1

LEAD = """
query Lead($id: ID!) {
  lead(id: $id) {
    id
    score { value probability confidence modelId modelVersion scoredAt predictionTimeMs cached
            fallback }
  }
}
"""
PAGE = """
query Page($first: Int!) {
  workspace { leads(first: $first) { edges { node {
    id score { value probability modelId modelVersion cached }
  } } } }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: UpdateLeadInput!) { updateLead(id: $id, input: $input) { id } }
"""
SCORE_LEADS = """
mutation Score($ids: [ID!], $filter: LeadFilter, $model: ID) {
  scoreLeads(leadIds: $ids, filter: $filter, model: $model) { id kind status }
}
"""


@pytest.fixture(scope="module")
def online_database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_online_scoring", "small", now=NOW)


@pytest.fixture(scope="module")
def online_server(online_database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(online_database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(online_server: ServerThread) -> Persona:
    return login(online_server.url, "admin@acme.example")


@pytest.fixture(scope="module")
def trained(admin: Persona) -> dict[str, Any]:
    """A first model, promoted; its scoring of every lead has finished."""
    job = admin.execute(RETRAIN, input=FAST)["retrainModel"]
    done = wait_for_job(admin, job["id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done
    result: dict[str, Any] = done["result"]
    assert result["promoted"] is True
    scored = wait_for_job(admin, result["scoreJobId"], timeout=60)
    assert scored["status"] == "SUCCEEDED", scored
    return result


def scalar(url: str, query: str, *args: Any) -> Any:
    return fetch(url, query, *args)[0][0]


def open_leads(url: str, limit: int) -> list[int]:
    rows = fetch(
        url,
        "SELECT id FROM lead WHERE workspace_id = $1 AND stage NOT IN ('WON', 'LOST')"
        " ORDER BY id LIMIT $2",
        ACME,
        limit,
    )
    return [int(r["id"]) for r in rows]


def touch(url: str, ids: list[int]) -> None:
    """Given leads whose data 'changed' (stored scores are older now) and an empty process
    cache: their next read is a miss."""
    fetch(
        url,
        "UPDATE lead SET updated_at = clock_timestamp() WHERE workspace_id = $1"
        " AND id = ANY($2::bigint[])",
        ACME,
        ids,
    )
    clear_caches()


def stored_rows(url: str, lead_id: int) -> list[Any]:
    return fetch(
        url,
        "SELECT model_id, model_version, value, probability, confidence, scored_at FROM lead_score"
        " WHERE workspace_id = $1 AND lead_id = $2 ORDER BY scored_at DESC, id DESC",
        ACME,
        lead_id,
    )


def wait_until(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def set_config(url: str, **values: Any) -> None:
    """The workspace's ml_config row (defaults elsewhere), written directly."""
    fetch(url, "DELETE FROM ml_config WHERE workspace_id = $1", ACME)
    defaults: dict[str, Any] = {
        "fallback_model_id": None,
        "max_batch_size": 1000,
        "timeout_ms": 30_000,
        "cache_enabled": True,
        "cache_ttl_seconds": 3600,
        "cache_max_size": 10_000,
        "auto_retrain": True,
        "retrain_threshold": 0.05,
        "auto_promote": True,
        "max_training_time_ms": 7_200_000,
        "validation_split": 0.2,
        "drift_detection": True,
        "alert_accuracy_drop": 0.05,
        "alert_latency_increase_ms": 100.0,
        "alert_drift_psi": 0.25,
    }
    row = {**defaults, **values}
    columns = ", ".join(["workspace_id", "updated_at", *row])
    marks = ", ".join(f"${i}" for i in range(3, len(row) + 3))
    fetch(
        url,
        f"INSERT INTO ml_config ({columns}) VALUES ($1, $2, {marks})",
        ACME,
        datetime.now(UTC),
        *row.values(),
    )


def reset_config(url: str) -> None:
    fetch(url, "DELETE FROM ml_config WHERE workspace_id = $1", ACME)


def bucket(lead_id: int) -> int:
    """The A/B bucket, recomputed: a 64-bit multiplicative (Fibonacci) hash mod 100."""
    return ((lead_id * 11400714819323198485) % 2**64) % 100


def test_miss_then_cached_then_a_change_invalidates(
    trained: dict[str, Any], admin: Persona, online_database: str
) -> None:
    lead_id = open_leads(online_database, 1)[0]
    touch(online_database, [lead_id])
    first = admin.execute(LEAD, id=str(lead_id))["lead"]["score"]
    assert first["cached"] is False and first["fallback"] is False
    assert first["modelId"] == trained["modelId"]
    assert first["modelVersion"] == str(trained["version"])
    assert first["predictionTimeMs"] > 0
    expected = expected_probabilities(online_database, trained["modelId"], [lead_id])[lead_id]
    assert first["probability"] == pytest.approx(expected, abs=1e-9)
    assert first["value"] == int(np.clip(round(100 * expected), 1, 99))
    assert first["confidence"] == pytest.approx(2 * abs(expected - 0.5))

    # the second read is the process cache: same score, same time of scoring
    second = admin.execute(LEAD, id=str(lead_id))["lead"]["score"]
    assert second["cached"] is True
    for name in ("value", "probability", "modelVersion", "scoredAt"):
        assert second[name] == first[name]

    # the miss reached lead_score (written behind the read) and the current score
    rows = wait_until(
        lambda: [
            r
            for r in stored_rows(online_database, lead_id)
            if r["scored_at"] == datetime.fromisoformat(first["scoredAt"])
        ]
    )
    assert rows[0]["model_id"] == int(trained["modelId"])
    assert rows[0]["probability"] == pytest.approx(expected, abs=1e-12)
    assert (
        scalar(online_database, "SELECT value FROM lead_current_score WHERE lead_id = $1", lead_id)
        == first["value"]
    )

    # another process (an empty cache) finds the stored score
    clear_caches()
    third = admin.execute(LEAD, id=str(lead_id))["lead"]["score"]
    assert third["cached"] is True and third["scoredAt"] == first["scoredAt"]

    # a change of the lead's data: predicted again, from the new data
    budget = int(
        scalar(online_database, "SELECT coalesce(budget, 0) FROM lead WHERE id = $1", lead_id)
    )
    admin.execute(UPDATE, id=str(lead_id), input={"budget": budget * 4 + 2_000_000})
    fourth = admin.execute(LEAD, id=str(lead_id))["lead"]["score"]
    assert fourth["cached"] is False
    assert fourth["scoredAt"] > first["scoredAt"]
    changed = expected_probabilities(online_database, trained["modelId"], [lead_id])[lead_id]
    assert fourth["probability"] == pytest.approx(changed, abs=1e-9)


def test_a_page_of_misses_matches_the_models_own_predictions(
    trained: dict[str, Any], admin: Persona, online_database: str
) -> None:
    touch(
        online_database,
        [
            int(r["id"])
            for r in fetch(online_database, "SELECT id FROM lead WHERE workspace_id = $1", ACME)
        ],
    )
    edges = admin.execute(PAGE, first=40)["workspace"]["leads"]["edges"]
    ids = [int(e["node"]["id"]) for e in edges]
    expected = expected_probabilities(online_database, trained["modelId"], ids)
    for edge in edges:
        score = edge["node"]["score"]
        assert score["cached"] is False
        assert score["probability"] == pytest.approx(expected[int(edge["node"]["id"])], abs=1e-9)


def test_ab_split_routes_leads_to_the_challenger(
    trained: dict[str, Any], admin: Persona, online_database: str
) -> None:
    # given a challenger serving 50 % (a copy of the champion's artifact under a new version)
    challenger = int(
        scalar(
            online_database,
            "INSERT INTO ml_model (workspace_id, name, version, status, type, algorithm,"
            " alias, traffic_percent, deployed_at, metrics, hyperparameters, feature_importance,"
            " reference, training_sizes, artifact, created_at)"
            " SELECT workspace_id, name, version + 100, 'ACTIVE', type, algorithm,"
            " 'challenger', 50, now(), metrics, hyperparameters, feature_importance, reference,"
            " training_sizes, artifact, now() FROM ml_model WHERE id = $1 RETURNING id",
            int(trained["modelId"]),
        )
    )
    try:
        edges = admin.execute(PAGE, first=60)["workspace"]["leads"]["edges"]
        to_challenger = 0
        for edge in edges:
            lead_id, score = int(edge["node"]["id"]), edge["node"]["score"]
            if bucket(lead_id) < 50:
                to_challenger += 1
                assert score["modelId"] == str(challenger), lead_id
                assert score["modelVersion"] == str(trained["version"] + 100)
                assert score["cached"] is False  # nothing stored of this version yet
            else:
                assert score["modelId"] == trained["modelId"], lead_id
        assert 0 < to_challenger < len(edges)
        # the same lead always goes to the same version
        again = admin.execute(PAGE, first=60)["workspace"]["leads"]["edges"]
        assert [e["node"]["score"]["modelId"] for e in again] == [
            e["node"]["score"]["modelId"] for e in edges
        ]
    finally:
        fetch(
            online_database,
            "UPDATE ml_model SET alias = NULL, traffic_percent = NULL,"
            " status = 'RETIRED' WHERE id = $1",
            challenger,
        )
        clear_caches()


def test_timeout_is_prediction_timeout_and_writes_nothing(
    trained: dict[str, Any], admin: Persona, online_database: str
) -> None:
    lead_id = open_leads(online_database, 3)[2]
    touch(online_database, [lead_id])
    time.sleep(1.2)  # earlier misses flushed
    before = len(stored_rows(online_database, lead_id))
    timeouts_before = scalar(
        online_database, "SELECT coalesce(sum(timeouts), 0) FROM ml_prediction_stat"
    )
    set_config(online_database, timeout_ms=0)  # 0 ms: every predict is past it
    try:
        error = admin.error(LEAD, id=str(lead_id))
    finally:
        reset_config(online_database)
    assert error["extensions"]["code"] == "PREDICTION_TIMEOUT"
    assert error["extensions"]["details"]["timeoutMs"] == 0
    assert error["path"] == ["lead", "score"]
    # nothing cached: the next read (default timeout) predicts
    assert admin.execute(LEAD, id=str(lead_id))["lead"]["score"]["cached"] is False
    # one row: the later successful read; the timed-out one wrote nothing
    wait_until(lambda: len(stored_rows(online_database, lead_id)) > before)
    time.sleep(1.2)  # another flush: still one
    assert len(stored_rows(online_database, lead_id)) == before + 1
    # and the timeout was counted
    wait_until(
        lambda: (
            scalar(online_database, "SELECT coalesce(sum(timeouts), 0) FROM ml_prediction_stat")
            == timeouts_before + 1
        )
    )


def test_fallback_model_scores_when_the_serving_version_cannot_load(
    trained: dict[str, Any], admin: Persona, online_database: str
) -> None:
    champion = int(trained["modelId"])
    broken = int(
        scalar(
            online_database,
            "INSERT INTO ml_model (workspace_id, name, version, status, type, algorithm,"
            " metrics, hyperparameters, feature_importance, reference, training_sizes, artifact,"
            " created_at) SELECT workspace_id, name, version + 200, 'CANDIDATE', type, algorithm,"
            " metrics, hyperparameters, feature_importance, reference, training_sizes,"
            " '\\x00baad'::bytea, now() FROM ml_model WHERE id = $1 RETURNING id",
            champion,
        )
    )
    lead_id = open_leads(online_database, 4)[3]
    touch(online_database, [lead_id])
    fetch(online_database, "UPDATE ml_model SET alias = NULL WHERE id = $1", champion)
    fetch(
        online_database,
        "UPDATE ml_model SET alias = 'champion', status = 'ACTIVE' WHERE id = $1",
        broken,
    )
    try:
        # without a fallback the field fails (masked), with one it answers and says so
        assert admin.error(LEAD, id=str(lead_id))["path"] == ["lead", "score"]
        set_config(online_database, fallback_model_id=champion)
        score = admin.execute(LEAD, id=str(lead_id))["lead"]["score"]
        assert score["fallback"] is True and score["cached"] is False
        assert score["modelId"] == str(champion)
        assert score["modelVersion"] == str(trained["version"])
        expected = expected_probabilities(online_database, str(champion), [lead_id])[lead_id]
        assert score["probability"] == pytest.approx(expected, abs=1e-9)
    finally:
        reset_config(online_database)
        fetch(
            online_database,
            "UPDATE ml_model SET alias = NULL, status = 'RETIRED' WHERE id = $1",
            broken,
        )
        fetch(online_database, "UPDATE ml_model SET alias = 'champion' WHERE id = $1", champion)
        clear_caches()
    # the broken version's failures were counted as errors
    wait_until(
        lambda: (
            scalar(
                online_database,
                "SELECT coalesce(sum(errors), 0) FROM ml_prediction_stat WHERE model_id = $1",
                broken,
            )
            >= 2
        )
    )


def _request_statements(counter: StatementCounter) -> list[str]:
    # the write-behind flusher shares the pool: its statements are not the request's
    background = (
        "INSERT INTO lead_score",
        "UPDATE lead_current_score",
        "INSERT INTO ml_prediction",
    )
    return [s for s in counter.statements if not s.strip().startswith(background)]


def test_statements_per_page_do_not_grow_with_the_page(
    trained: dict[str, Any], admin: Persona, online_server: ServerThread, online_database: str
) -> None:
    engine = online_server.services.db.engine.sync_engine
    all_ids = [
        int(r["id"])
        for r in fetch(online_database, "SELECT id FROM lead WHERE workspace_id = $1", ACME)
    ]
    counts: dict[tuple[int, str], int] = {}
    for first in (5, 50):
        for state in ("miss", "hit"):
            if state == "miss":
                touch(online_database, all_ids)
            counter = StatementCounter()
            event.listen(engine, "before_cursor_execute", counter)
            try:
                edges = admin.execute(PAGE, first=first)["workspace"]["leads"]["edges"]
            finally:
                event.remove(engine, "before_cursor_execute", counter)
            assert len(edges) == first
            assert all(e["node"]["score"]["cached"] is (state == "hit") for e in edges)
            counts[(first, state)] = len(_request_statements(counter))
    assert counts[(5, "miss")] == counts[(50, "miss")], counts
    assert counts[(5, "hit")] == counts[(50, "hit")], counts
    # a miss costs the stored-score lookup and one feature query on top of a hit's reads
    assert counts[(50, "miss")] == counts[(50, "hit")] + 2, counts


def test_no_model_means_a_null_score(online_server: ServerThread, online_database: str) -> None:
    globex = login(online_server.url, "admin@globex.example")
    edges = globex.execute(PAGE, first=3)["workspace"]["leads"]["edges"]
    assert edges and all(e["node"]["score"] is None for e in edges)


def test_score_leads_with_a_filter_scores_exactly_the_filtered_leads(
    trained: dict[str, Any], admin: Persona, online_database: str
) -> None:
    time.sleep(1.2)  # online misses of earlier tests are flushed
    wanted = {
        int(r["id"])
        for r in fetch(
            online_database,
            "SELECT id FROM lead WHERE workspace_id = $1 AND source = 'REFERRAL'"
            " AND stage IN ('NEW', 'CONTACTED')",
            ACME,
        )
    }
    assert wanted
    start = scalar(online_database, "SELECT clock_timestamp()")
    job = admin.execute(
        SCORE_LEADS, filter={"sources": ["REFERRAL"], "stages": ["NEW", "CONTACTED"]}
    )["scoreLeads"]
    done = wait_for_job(admin, job["id"])
    assert done["status"] == "SUCCEEDED", done
    rows = fetch(
        online_database,
        "SELECT lead_id, value, confidence FROM lead_score WHERE workspace_id = $1"
        " AND scored_at >= $2 AND model_id = $3",
        ACME,
        start,
        int(trained["modelId"]),
    )
    assert {int(r["lead_id"]) for r in rows} == wanted and len(rows) == len(wanted)
    result = done["result"]
    assert result["total"] == result["successful"] == len(wanted) and result["failed"] == 0
    assert result["averageScore"] == pytest.approx(np.mean([r["value"] for r in rows]))
    assert result["averageConfidence"] == pytest.approx(np.mean([r["confidence"] for r in rows]))


def test_score_leads_refusals_queue_nothing(
    trained: dict[str, Any], admin: Persona, online_server: ServerThread, online_database: str
) -> None:
    ids = [str(i) for i in open_leads(online_database, 3)]
    jobs_before = scalar(online_database, "SELECT count(*) FROM job")

    both = admin.error(SCORE_LEADS, ids=ids, filter={"sources": ["REFERRAL"]})
    assert both["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(both["extensions"]["details"]["fields"]) == {"leadIds", "filter"}

    bad_filter = admin.error(SCORE_LEADS, filter={"minScore": 500})
    assert bad_filter["extensions"]["code"] == "BAD_USER_INPUT"
    assert "filter.minScore" in bad_filter["extensions"]["details"]["fields"]

    set_config(online_database, max_batch_size=2)
    try:
        too_many = admin.error(SCORE_LEADS, ids=ids)
    finally:
        reset_config(online_database)
    assert too_many["extensions"]["code"] == "BAD_USER_INPUT"
    assert too_many["extensions"]["details"]["maxBatchSize"] == 2
    assert "leadIds" in too_many["extensions"]["details"]["fields"]

    agent = login(online_server.url, "agent@acme.example")
    assert agent.error(SCORE_LEADS, filter={})["extensions"]["code"] == "FORBIDDEN"
    assert scalar(online_database, "SELECT count(*) FROM job") == jobs_before


def test_foreign_model_is_model_not_found(
    trained: dict[str, Any], online_server: ServerThread, online_database: str
) -> None:
    globex = login(online_server.url, "admin@globex.example")
    error = globex.error(SCORE_LEADS, filter={}, model=trained["modelId"])
    assert error["extensions"]["code"] == "MODEL_NOT_FOUND"
    assert json.dumps(error).count(trained["modelId"]) >= 1


def test_batch_scoring_has_its_own_rate_limit(online_database: str) -> None:
    settings = settings_for(online_database, run_workers=False, rate_limit_batch_scoring="2/minute")
    with ServerThread(create_app(settings)) as limited:
        admin = login(limited.url, "admin@acme.example")
        both = {"ids": ["1"], "filter": {}}  # refused input still counts as a request
        for _ in range(2):
            assert admin.error(SCORE_LEADS, **both)["extensions"]["code"] == "BAD_USER_INPUT"
        error = admin.error(SCORE_LEADS, **both)
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["details"]["retryAfter"] >= 1
        # reads are not counted against it
        assert "lead" in admin.execute(LEAD, id=str(open_leads(online_database, 1)[0]))
