"""Registry operations end to end through gql: createModel, deployModel (A/B split, promotion,
rollback), compareModels, mlConfig / updateMlConfig, auto-promotion, tuning, time limit.

One module database (seeded `small`, fixed NOW); the tests build on each other in file order:
a deliberately weak first champion, then versions that beat it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from gql.graphql_request import GraphQLRequest

from app.main import create_app
from ml import registry
from ml.features import FEATURES
from ml.monitoring import BOUNDS_MS
from models.db import Database
from models.jobs import JobPriority, claim, enqueue
from models.ml_models import MlConfig, MlModel, ab_bucket
from models.scope import Scope
from models.workspaces import Role
from tests.client import Persona, login
from tests.conftest import (
    ServerThread,
    fetch,
    on_database,
    record_predictions,
    seeded_database,
    settings_for,
)
from tests.resolvers.test_ml_models import count, wait_for_job
from tests.resolvers.test_scoring import expected_probabilities
from tests.resolvers.test_subscriptions import subscribed

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1

MODEL_FIELDS = """
  id name version status type description alias trafficPercent deployedAt abEndsAt
  abTestRunning hyperparameters
  metrics { accuracy precision recall f1Score auc threshold liftTopDecile }
  splitMetrics {
    train { accuracy precision recall f1Score auc threshold }
    validation { accuracy precision recall f1Score auc threshold }
    test { accuracy precision recall f1Score auc threshold liftTopDecile }
  }
  trainingData {
    totalSamples trainSamples validationSamples testSamples featureCount conversions
  }
"""
MODELS = f"""
query Models($status: ModelStatus, $type: ModelType) {{
  models(status: $status, type: $type) {{ {MODEL_FIELDS} }}
}}
"""
MODEL = f"query Model($id: ID!) {{ model(id: $id) {{ {MODEL_FIELDS} }} }}"
RETRAIN = """
mutation Retrain($id: ID, $input: RetrainInput) {
  retrainModel(id: $id, input: $input) { id kind status priority }
}
"""
CREATE = """
mutation Create($input: CreateModelInput!) {
  createModel(input: $input) { id kind status }
}
"""
DEPLOY = """
mutation Deploy($id: ID!, $abTest: AbTestInput, $rollbackTo: ID, $reason: String) {
  deployModel(id: $id, abTest: $abTest, rollbackTo: $rollbackTo, reason: $reason) {
    champion { id status alias }
    challenger { id status alias trafficPercent deployedAt abEndsAt abTestRunning }
  }
}
"""
DELETE = "mutation Delete($id: ID!) { deleteModel(id: $id) }"
SET_STATUS = """
mutation SetStatus($id: ID!, $status: ModelStatus!) {
  setModelStatus(id: $id, status: $status) { id status alias }
}
"""
COMPARE = """
query Compare($ids: [ID!]!, $metrics: [String!], $period: Period! = D30) {
  compareModels(ids: $ids, metrics: $metrics, period: $period) {
    models { id }
    metrics {
      metric higherIsBetter best difference winner { id }
      values { model { id } value differenceToBest }
    }
    winner { id name version }
    winnerMetricCount
    recommendation
    recommendations { type model { id } reason confidence }
  }
}
"""
CONFIG_FIELDS = """
  activeModel { id } fallbackModel { id }
  scoring { maxBatchSize timeoutMs cache { enabled ttlSeconds maxSize } }
  training { autoRetrain retrainThreshold autoPromote maxTrainingTimeMs validationSplit }
  monitoring { driftDetection alertThresholds { accuracyDrop latencyIncreaseMs driftPsi } }
  updatedAt
"""
CONFIG = f"query Config {{ mlConfig {{ {CONFIG_FIELDS} }} }}"
UPDATE_CONFIG = f"""
mutation Update($input: MlConfigInput!) {{ updateMlConfig(input: $input) {{ {CONFIG_FIELDS} }} }}
"""
PROGRESS = """
subscription Progress($id: ID!) {
  jobProgress(id: $id) {
    status progress stage details currentMetric bestMetric etaSeconds result
  }
}
"""
LEAD_SCORES = """
query Scores($after: String) {
  workspace {
    leads(first: 100, after: $after) {
      edges { node { id score { modelId } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

WEAK = {"iterations": 10, "depth": 1, "learningRate": 0.02, "reason": "a weak first champion"}
CONFIG_COLUMNS = (
    "max_batch_size, timeout_ms, cache_ttl_seconds, auto_promote, max_training_time_ms, "
    "alert_accuracy_drop, fallback_model_id"
)


@pytest.fixture(scope="module")
def database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_ml_registry", "small", now=NOW)


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: ServerThread) -> Persona:
    return login(server.url, "admin@acme.example")


@pytest.fixture(scope="module")
def user(server: ServerThread) -> Persona:
    return login(server.url, "user@acme.example")


@pytest.fixture(scope="module")
def globex(server: ServerThread) -> Persona:
    return login(server.url, "admin@globex.example")


def registry_rows(url: str) -> list[tuple[Any, ...]]:
    """What a deployment may change, for 'nothing changed' checks."""
    rows = fetch(
        url,
        "SELECT id, status, alias, traffic_percent, deployed_at, ab_ends_at FROM ml_model "
        "ORDER BY id",
    )
    return [tuple(r) for r in rows]


def stored_metrics(url: str, model_id: str) -> dict[str, Any]:
    raw = fetch(url, "SELECT metrics FROM ml_model WHERE id = $1", int(model_id))[0][0]
    return dict(json.loads(raw))


def code(error: dict[str, Any]) -> str:
    return str(error["extensions"]["code"])


def bad_fields(error: dict[str, Any]) -> set[str]:
    assert code(error) == "BAD_USER_INPUT", error
    return set(error["extensions"]["details"]["fields"])


def serving(url: str) -> tuple[MlModel | None, MlModel | None]:
    async def scenario(db: Database) -> tuple[MlModel | None, MlModel | None]:
        async with db.session() as session:
            return await registry.serving_models(session, ACME)

    return on_database(url, scenario)


@pytest.fixture(scope="module")
def champion_v1(admin: Persona) -> dict[str, Any]:
    """Given no model, a weak first version: it becomes the champion (nothing to beat)."""
    job = admin.execute(RETRAIN, input=WEAK)["retrainModel"]
    done = wait_for_job(admin, job["id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["promoted"] is True
    return admin.execute(MODEL, id=done["result"]["modelId"])["model"]


# --- ML config ---------------------------------------------------------------------------


def test_any_member_reads_the_default_config(champion_v1: dict[str, Any], user: Persona) -> None:
    config = user.execute(CONFIG)["mlConfig"]
    defaults = MlConfig(workspace_id=ACME)
    assert config["activeModel"] == {"id": champion_v1["id"]}
    assert config["fallbackModel"] is None and config["updatedAt"] is None
    assert config["scoring"] == {
        "maxBatchSize": defaults.max_batch_size,
        "timeoutMs": defaults.timeout_ms,
        "cache": {
            "enabled": defaults.cache_enabled,
            "ttlSeconds": defaults.cache_ttl_seconds,
            "maxSize": defaults.cache_max_size,
        },
    }
    assert config["training"]["autoPromote"] is True
    assert config["monitoring"]["alertThresholds"]["driftPsi"] == defaults.alert_drift_psi


def test_update_config_changes_only_the_given_fields_and_is_audited(
    champion_v1: dict[str, Any], admin: Persona, user: Persona, database: str
) -> None:
    before = user.execute(CONFIG)["mlConfig"]
    updated = admin.execute(
        UPDATE_CONFIG,
        input={
            "fallbackModel": champion_v1["id"],
            "scoring": {"maxBatchSize": 1500, "timeoutMs": 45000},
            "monitoring": {"alertThresholds": {"accuracyDrop": 0.03}},
        },
    )["updateMlConfig"]
    assert updated["fallbackModel"] == {"id": champion_v1["id"]}
    assert updated["scoring"]["maxBatchSize"] == 1500
    assert updated["scoring"]["timeoutMs"] == 45000
    assert updated["scoring"]["cache"] == before["scoring"]["cache"]
    assert updated["monitoring"]["alertThresholds"] == {
        **before["monitoring"]["alertThresholds"],
        "accuracyDrop": 0.03,
    }
    assert updated["training"] == before["training"]
    assert updated["updatedAt"] is not None
    row = fetch(database, f"SELECT {CONFIG_COLUMNS} FROM ml_config WHERE workspace_id = 1")[0]
    assert (row["max_batch_size"], row["timeout_ms"], row["alert_accuracy_drop"]) == (
        1500,
        45000,
        0.03,
    )
    assert row["fallback_model_id"] == int(champion_v1["id"])
    assert user.execute(CONFIG)["mlConfig"] == updated  # what everyone reads now
    audit = fetch(
        database,
        "SELECT details FROM audit_log WHERE action = 'ml_config.updated' ORDER BY id DESC",
    )
    changes = json.loads(audit[0]["details"])["changes"]
    assert changes["scoring.timeoutMs"] == {"from": before["scoring"]["timeoutMs"], "to": 45000}
    assert set(changes) == {
        "fallbackModel",
        "scoring.maxBatchSize",
        "scoring.timeoutMs",
        "monitoring.alertThresholds.accuracyDrop",
    }


def test_bad_config_is_refused_naming_each_field_and_changes_nothing(
    champion_v1: dict[str, Any], admin: Persona, user: Persona, globex: Persona, database: str
) -> None:
    admin.execute(UPDATE_CONFIG, input={"scoring": {"cache": {"ttlSeconds": 600}}})
    before = fetch(database, f"SELECT {CONFIG_COLUMNS} FROM ml_config")
    error = admin.error(
        UPDATE_CONFIG,
        input={
            "scoring": {"timeoutMs": 10, "maxBatchSize": 0, "cache": {"ttlSeconds": 120}},
            "training": {"validationSplit": 0.9, "maxTrainingTimeMs": 5},
            "monitoring": {"alertThresholds": {"driftPsi": 0}},
        },
    )
    assert bad_fields(error) == {
        "scoring.timeoutMs",
        "scoring.maxBatchSize",
        "training.validationSplit",
        "training.maxTrainingTimeMs",
        "monitoring.alertThresholds.driftPsi",
    }
    error = admin.error(UPDATE_CONFIG, input={"training": {"autoPromote": None}})
    assert bad_fields(error) == {"training.autoPromote"}
    assert code(admin.error(UPDATE_CONFIG, input={"fallbackModel": "987654"})) == (
        "MODEL_NOT_FOUND"
    )
    # another workspace's admin cannot point its fallback at this workspace's model
    assert code(globex.error(UPDATE_CONFIG, input={"fallbackModel": champion_v1["id"]})) == (
        "MODEL_NOT_FOUND"
    )
    forbidden = user.error(UPDATE_CONFIG, input={"scoring": {"timeoutMs": 1000}})
    assert code(forbidden) == "FORBIDDEN"
    assert fetch(database, f"SELECT {CONFIG_COLUMNS} FROM ml_config") == before
    assert before[0]["cache_ttl_seconds"] == 600
    # Globex reads its own (default) config, not Acme's
    assert globex.execute(CONFIG)["mlConfig"]["scoring"]["timeoutMs"] == 30_000


# --- createModel and auto-promotion ----------------------------------------------------------


def test_create_model_refusals_queue_nothing(
    champion_v1: dict[str, Any], admin: Persona, user: Persona, database: str
) -> None:
    jobs_before = count(database, "job")
    good = {"name": "Lead Scoring v3", "hyperparameters": {"iterations": 30}}
    error = admin.error(CREATE, input={**good, "algorithm": "neural_network"})
    assert bad_fields(error) == {"algorithm"}
    error = admin.error(CREATE, input={**good, "name": champion_v1["name"]})
    assert bad_fields(error) == {"name"}
    error = admin.error(
        CREATE,
        input={
            **good,
            "hyperparameters": {"iterations": 5, "l2LeafReg": -1, "earlyStoppingRounds": 0},
        },
    )
    assert bad_fields(error) == {"iterations", "l2LeafReg", "earlyStoppingRounds"}
    error = admin.error(CREATE, input={**good, "validationSplit": 0.6})
    assert bad_fields(error) == {"validationSplit"}
    assert code(user.error(CREATE, input=good)) == "FORBIDDEN"
    assert count(database, "job") == jobs_before


@pytest.fixture(scope="module")
def created(champion_v1: dict[str, Any], admin: Persona) -> dict[str, Any]:
    """With auto-promotion off, a new model (much stronger than the weak champion)."""
    admin.execute(UPDATE_CONFIG, input={"training": {"autoPromote": False}})
    job = admin.execute(
        CREATE,
        input={
            "name": "Lead Scoring v3",
            "description": "Deeper trees",
            "type": "CLASSIFICATION",
            "algorithm": "catboost",
            "hyperparameters": {
                "iterations": 80,
                "depth": 4,
                "learningRate": 0.1,
                "l2LeafReg": 5,
                # a patience longer than the run: recorded, never reached
                "earlyStoppingRounds": 200,
            },
        },
    )["createModel"]
    assert job["kind"] == registry.RETRAIN_KIND
    done = wait_for_job(admin, job["id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["promoted"] is False and done["result"]["autoPromote"] is False
    return admin.execute(MODEL, id=done["result"]["modelId"])["model"]


def test_created_model_is_version_one_and_stays_candidate_although_better(
    champion_v1: dict[str, Any], created: dict[str, Any], admin: Persona
) -> None:
    assert (created["name"], created["version"]) == ("Lead Scoring v3", 1)
    assert (created["type"], created["description"]) == ("CLASSIFICATION", "Deeper trees")
    assert created["hyperparameters"]["l2LeafReg"] == 5
    assert created["hyperparameters"]["earlyStoppingRounds"] == 200
    assert created["hyperparameters"]["depth"] == 4
    # it beats the champion on test AUC, yet auto-promotion is off: it stays a candidate
    assert created["metrics"]["auc"] > champion_v1["metrics"]["auc"]
    assert (created["status"], created["alias"]) == ("CANDIDATE", None)
    champion = admin.execute(MODEL, id=champion_v1["id"])["model"]
    assert (champion["status"], champion["alias"]) == ("ACTIVE", "champion")
    by_type = admin.execute(MODELS, type="CLASSIFICATION")["models"]
    assert [m["id"] for m in by_type] == [created["id"]]
    assert champion_v1["id"] in {m["id"] for m in admin.execute(MODELS, type="SCORING")["models"]}
    assert admin.execute(MODELS, type="REGRESSION")["models"] == []
    scoring_candidates = admin.execute(MODELS, status="CANDIDATE", type="SCORING")["models"]
    assert created["id"] not in {m["id"] for m in scoring_candidates}
    # the same name again, now that it exists
    error = admin.error(CREATE, input={"name": "Lead Scoring v3"})
    assert bad_fields(error) == {"name"}


SCORES = """
query Scores($id: ID!, $model: ID) {
  lead(id: $id) {
    serving: score { probability modelVersion }
    chosen: score(model: $model) { value probability modelVersion }
  }
}
"""


def test_a_lead_scored_by_a_chosen_version_is_not_stored(
    champion_v1: dict[str, Any], created: dict[str, Any], admin: Persona, database: str
) -> None:
    lead_id = fetch(database, "SELECT min(id) FROM lead WHERE workspace_id = 1")[0][0]
    # when a lead is scored by the candidate version, next to its serving score
    got = admin.execute(SCORES, id=str(lead_id), model=created["id"])["lead"]
    # then each is its version's own prediction
    assert got["chosen"]["probability"] == pytest.approx(
        expected_probabilities(database, created["id"], [lead_id])[lead_id], abs=1e-9
    )
    assert got["serving"]["probability"] == pytest.approx(
        expected_probabilities(database, champion_v1["id"], [lead_id])[lead_id], abs=1e-9
    )
    assert got["chosen"]["value"] == int(np.clip(round(100 * got["chosen"]["probability"]), 1, 99))
    # and the candidate's score is not in the lead's history (the flusher runs every second)
    time.sleep(1.5)
    stored = fetch(
        database,
        "SELECT count(*) FROM lead_score WHERE workspace_id = 1 AND lead_id = $1 AND model_id = $2",
        lead_id,
        int(created["id"]),
    )[0][0]
    assert stored == 0
    # unknown versions are not found; one still training cannot score
    assert code(admin.error(SCORES, id=str(lead_id), model="987654")) == "MODEL_NOT_FOUND"
    training_id = fetch(
        database,
        "INSERT INTO ml_model (workspace_id, name, version, status, type, algorithm, metrics, "
        "hyperparameters, feature_importance, reference, training_sizes, created_at) "
        "VALUES (1, 'still-training', 1, 'TRAINING', 'SCORING', 'catboost', '{}', '{}', '{}', "
        "'{}', '{}', now()) RETURNING id",
    )[0][0]
    try:
        error = admin.error(SCORES, id=str(lead_id), model=str(training_id))
        assert bad_fields(error) == {"model"}
    finally:
        fetch(database, "DELETE FROM ml_model WHERE id = $1", training_id)


def test_model_details_per_split_and_training_data(created: dict[str, Any], database: str) -> None:
    stored = stored_metrics(database, created["id"])
    splits = created["splitMetrics"]
    for split in ("train", "validation", "test"):
        assert splits[split]["accuracy"] == pytest.approx(stored[split]["accuracy"])
        assert splits[split]["f1Score"] == pytest.approx(stored[split]["f1_score"])
    # one decision threshold, chosen on validation, for every split; below a coin flip
    thresholds = {splits[s]["threshold"] for s in ("train", "validation", "test")}
    assert len(thresholds) == 1 and 0 < thresholds.pop() < 0.5
    assert splits["test"] == {k: created["metrics"][k] for k in splits["test"]}
    assert created["metrics"]["recall"] > 0.2 and created["metrics"]["liftTopDecile"] > 1
    labelled = fetch(
        database,
        "SELECT count(*) AS n, count(*) FILTER (WHERE stage = 'WON') AS won FROM lead "
        "WHERE workspace_id = 1 AND stage IN ('WON', 'LOST') "
        "AND created_at <= now() - interval '180 days'",
    )[0]
    data = created["trainingData"]
    assert data["totalSamples"] == labelled["n"]
    assert data["conversions"] == labelled["won"]
    held_out = round(labelled["n"] * 0.2)
    assert data["validationSamples"] == data["testSamples"] == held_out
    assert data["trainSamples"] == labelled["n"] - 2 * held_out
    assert data["featureCount"] == len(FEATURES)


# --- compareModels ------------------------------------------------------------------------


def test_compare_models_per_metric_winner_difference_and_recommendation(
    champion_v1: dict[str, Any], created: dict[str, Any], user: Persona, database: str
) -> None:
    ids = [champion_v1["id"], created["id"]]
    keys = {"auc": "auc", "f1Score": "f1_score", "liftTopDecile": "lift_top_decile"}
    report = user.execute(COMPARE, ids=ids, metrics=list(keys))["compareModels"]
    stored = {i: stored_metrics(database, i)["test"] for i in ids}
    wins = dict.fromkeys(ids, 0)
    for row, (slug, key) in zip(report["metrics"], keys.items(), strict=True):
        values = {i: stored[i][key] for i in ids}
        best_id = max(ids, key=lambda i: values[i])
        other = next(i for i in ids if i != best_id)
        wins[best_id] += 1
        assert row["metric"] == slug and row["higherIsBetter"] is True
        assert [v["model"]["id"] for v in row["values"]] == ids
        assert [v["value"] for v in row["values"]] == pytest.approx([values[i] for i in ids])
        assert row["winner"] == {"id": best_id}
        assert row["best"] == pytest.approx(values[best_id])
        assert row["difference"] == pytest.approx(values[best_id] - values[other])
        diffs = {v["model"]["id"]: v["differenceToBest"] for v in row["values"]}
        assert diffs[best_id] == 0 and diffs[other] == pytest.approx(
            values[other] - values[best_id]
        )
    overall = max(ids, key=lambda i: (wins[i], stored[i]["auc"]))
    assert report["winner"]["id"] == overall
    assert report["winnerMetricCount"] == wins[overall]
    winner = report["winner"]
    sentence = report["recommendation"]
    assert f"{winner['name']} v{winner['version']}" in sentence
    assert f"{stored[overall]['auc']:.3f}" in sentence
    assert ("Keep" in sentence) is (overall == champion_v1["id"])
    # the same advice as a typed recommendation: the champion is kept, or the other version
    # (a candidate) A/B tested over it; confident as the share of metrics it wins
    [advice] = report["recommendations"]
    assert advice["model"]["id"] == overall and advice["reason"] == sentence
    assert advice["type"] == ("KEEP" if overall == champion_v1["id"] else "AB_TEST")
    assert advice["confidence"] == pytest.approx(wins[overall] / len(keys))


def histogram_p50(buckets: list[int]) -> float | None:
    """The median of a latency histogram (upper bounds BOUNDS_MS, then +inf), interpolated
    within its bucket: the documented rule of `MlModel.performance` and compareModels."""
    total = sum(buckets)
    if not total:
        return None
    rank, below = total / 2, 0
    for i, n in enumerate(buckets):
        if n and below + n >= rank:
            if i == len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            low = 0.0 if i == 0 else float(BOUNDS_MS[i - 1])
            return low + (float(BOUNDS_MS[i]) - low) * (rank - below) / n
        below += n
    return None


def test_compare_models_latency_is_the_median_of_their_predictions_in_the_period(
    champion_v1: dict[str, Any], created: dict[str, Any], user: Persona, database: str
) -> None:
    ids = [champion_v1["id"], created["id"]]
    ws = fetch(database, "SELECT workspace_id FROM ml_model WHERE id = $1", int(ids[0]))[0][0]
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    def record(model_id: str, ago: timedelta, bucket: int, calls: int) -> None:
        record_predictions(database, ws, int(model_id), now - ago, bucket=bucket, calls=calls)

    def recomputed(days: int) -> dict[str, float | None]:
        rows = fetch(
            database,
            "SELECT model_id, latency_buckets FROM ml_prediction_stat WHERE workspace_id = $1 "
            "AND model_id = ANY($2::bigint[]) AND minute >= $3",
            ws,
            [int(i) for i in ids],
            now - timedelta(days=days),
        )
        sums = {i: [0] * (len(BOUNDS_MS) + 1) for i in ids}
        for row in rows:
            total = sums[str(row["model_id"])]
            for i, calls in enumerate(row["latency_buckets"]):
                total[i] += calls
        return {i: histogram_p50(b) for i, b in sums.items()}

    # given fast predictions of the champion and slower ones of the other version two days ago,
    # and a burst of very slow ones of the champion ten days ago
    record(ids[0], timedelta(days=2, minutes=7), 2, 40)
    record(ids[1], timedelta(days=2, minutes=7), 5, 30)
    record(ids[0], timedelta(days=10, minutes=7), 10, 500)
    for period, days in (("D7", 7), ("D30", 30)):
        # when they are compared on latency over the period
        report = user.execute(COMPARE, ids=ids, metrics=["latency", "auc"], period=period)
        row = report["compareModels"]["metrics"][0]
        want = recomputed(days)
        # then each value is the median of the version's predictions in it, lower is better
        assert row["metric"] == "latency" and row["higherIsBetter"] is False
        got = {v["model"]["id"]: v["value"] for v in row["values"]}
        assert got == pytest.approx(want)
        best, other = sorted(ids, key=lambda i: want[i])
        assert row["winner"] == {"id": best}
        assert row["difference"] == pytest.approx(want[other] - want[best])
    # the old burst counts in D30 only: there the champion is the slower one
    assert recomputed(7)[ids[0]] < recomputed(7)[ids[1]] < recomputed(30)[ids[0]]


def test_compare_models_refusals(
    champion_v1: dict[str, Any], created: dict[str, Any], admin: Persona, globex: Persona
) -> None:
    ids = [champion_v1["id"], created["id"]]
    assert bad_fields(admin.error(COMPARE, ids=ids[:1])) == {"ids"}
    assert bad_fields(admin.error(COMPARE, ids=[ids[0], ids[0]])) == {"ids"}
    assert bad_fields(admin.error(COMPARE, ids=[str(i) for i in range(1, 12)])) == {"ids"}
    assert bad_fields(admin.error(COMPARE, ids=ids, metrics=["auc", "speed"])) == {"metrics"}
    assert bad_fields(admin.error(COMPARE, ids=ids, metrics=[])) == {"metrics"}
    assert code(admin.error(COMPARE, ids=[ids[0], "987654"])) == "MODEL_NOT_FOUND"
    assert code(globex.error(COMPARE, ids=ids)) == "MODEL_NOT_FOUND"


# --- retraining: tuning, priority, progress details, time limit -----------------------------


@pytest.fixture(scope="module")
def tuned(
    champion_v1: dict[str, Any], created: dict[str, Any], server: ServerThread, admin: Persona
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A HIGH-priority tuned retrain of the champion, its progress as a subscriber saw it."""

    async def scenario() -> list[dict[str, Any]]:
        job = (
            await asyncio.to_thread(
                admin.execute,
                RETRAIN,
                id=champion_v1["id"],
                input={
                    "iterations": 40,
                    "depth": 4,
                    "learningRate": 0.1,
                    "hyperparameterTuning": True,
                    "priority": "HIGH",
                    "reason": "tuning",
                },
            )
        )["retrainModel"]
        assert job["priority"] == "HIGH"
        seen: list[dict[str, Any]] = []
        async with subscribed(server, admin) as session:
            stream = session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": job["id"]}))
            async for event in stream:
                seen.append(event["jobProgress"])
                if event["jobProgress"]["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    break
            await stream.aclose()
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 180))
    assert seen[-1]["status"] == "SUCCEEDED", seen[-1]
    model = admin.execute(MODEL, id=seen[-1]["result"]["modelId"])["model"]
    return model, seen


def test_tuning_records_the_chosen_parameters(
    tuned: tuple[dict[str, Any], list[dict[str, Any]]], champion_v1: dict[str, Any]
) -> None:
    model, _ = tuned
    assert (model["name"], model["version"]) == (champion_v1["name"], 2)
    tuning = model["hyperparameters"]["tuning"]
    trials = tuning["trials"]
    assert len(trials) == 9
    assert {(t["depth"], t["learningRate"]) for t in trials} == {
        (d, r) for d in (2, 4, 6) for r in (0.05, 0.1, 0.2)
    }
    best = max(trials, key=lambda t: t["validationAuc"])
    assert tuning["chosen"] == {"depth": best["depth"], "learningRate": best["learningRate"]}
    assert model["hyperparameters"]["depth"] == best["depth"]
    assert model["hyperparameters"]["learningRate"] == best["learningRate"]
    assert model["hyperparameters"]["hyperparameterTuning"] is True
    assert model["splitMetrics"]["validation"]["auc"] == pytest.approx(best["validationAuc"])
    # auto-promotion is off: whatever its AUC, it waits as a candidate
    assert model["status"] == "CANDIDATE"


def test_training_progress_shows_current_and_best_metric_and_eta(
    tuned: tuple[dict[str, Any], list[dict[str, Any]]], database: str
) -> None:
    _, seen = tuned
    tuning = [e for e in seen if e["status"] == "RUNNING" and e["stage"] == "tuning"]
    assert len(tuning) >= 2, seen
    for event in tuning:
        assert 0.5 < event["currentMetric"] <= event["bestMetric"] < 1
        assert event["etaSeconds"] is not None and event["etaSeconds"] >= 0
        details = event["details"]
        assert details["metric"] == "validation AUC" and details["candidates"] == 9
        assert 1 <= details["candidate"] <= 9
        assert details["iterations"] == 9 * 40
        assert details["current"] == event["currentMetric"]
    best = [e["bestMetric"] for e in tuning]
    assert best == sorted(best)  # the best so far never gets worse
    progress = [e["progress"] for e in seen if e["status"] == "RUNNING"]
    assert progress == sorted(progress)
    priority = fetch(
        database, "SELECT priority FROM job WHERE kind = 'ml.retrain' ORDER BY id DESC LIMIT 1"
    )[0][0]
    assert priority == 1


def test_higher_priority_jobs_are_claimed_first(database: str) -> None:
    async def scenario(db: Database) -> list[str]:
        scope = Scope(ACME, 1, Role.ADMIN)
        async with db.transaction() as session:
            for priority in (JobPriority.LOW, JobPriority.NORMAL, JobPriority.HIGH):
                await enqueue(session, scope, "test.noop", {"p": str(priority)}, priority=priority)
        claimed = []
        for _ in range(3):
            async with db.transaction() as session:
                job = await claim(session, "test-worker", ["test.noop"], timedelta(seconds=30))
                assert job is not None
                claimed.append(job.payload["p"])
        return claimed

    assert on_database(database, scenario) == ["HIGH", "NORMAL", "LOW"]


def test_a_training_over_the_configured_time_fails_and_registers_nothing(
    created: dict[str, Any], admin: Persona, database: str
) -> None:
    admin.execute(UPDATE_CONFIG, input={"training": {"maxTrainingTimeMs": 1000}})
    try:
        models_before = count(database, "ml_model")
        job = admin.execute(RETRAIN, input={"iterations": 5000, "depth": 8})["retrainModel"]
        done = wait_for_job(admin, job["id"])
    finally:
        admin.execute(UPDATE_CONFIG, input={"training": {"maxTrainingTimeMs": 7_200_000}})
    assert done["status"] == "FAILED", done
    assert done["error"].startswith("MODEL_TRAINING_FAILED")
    assert done["errorCode"] == "MODEL_TRAINING_FAILED"
    assert done["errorDetails"]["maxTrainingTimeMs"] == 1000
    assert done["errorDetails"]["elapsedMs"] >= 1000
    assert count(database, "ml_model") == models_before


# --- deployModel ---------------------------------------------------------------------------


def test_bad_deployments_are_refused_and_change_nothing(
    champion_v1: dict[str, Any],
    created: dict[str, Any],
    admin: Persona,
    user: Persona,
    globex: Persona,
    database: str,
) -> None:
    training_id = fetch(
        database,
        "INSERT INTO ml_model (workspace_id, name, version, status, type, algorithm, metrics, "
        "hyperparameters, feature_importance, reference, training_sizes, created_at) "
        "VALUES (1, 'in-training', 1, 'TRAINING', 'SCORING', 'catboost', '{}', '{}', '{}', "
        "'{}', '{}', now()) RETURNING id",
    )[0][0]
    before = registry_rows(database)
    ab = {"trafficPercent": 20, "durationHours": 24}
    cases = [
        ({"id": created["id"], "abTest": {**ab, "trafficPercent": 0}}, {"abTest.trafficPercent"}),
        ({"id": created["id"], "abTest": {**ab, "trafficPercent": 100}}, {"abTest.trafficPercent"}),
        ({"id": created["id"], "abTest": {**ab, "durationHours": 0}}, {"abTest.durationHours"}),
        ({"id": created["id"], "abTest": {**ab, "durationHours": 5000}}, {"abTest.durationHours"}),
        ({"id": created["id"], "abTest": {**ab, "duration": "2d"}}, {"abTest.duration"}),  # both
        ({"id": created["id"], "abTest": {"trafficPercent": 20}}, {"abTest.duration"}),  # neither
        (
            {"id": created["id"], "abTest": {"trafficPercent": 20, "duration": "2 weeks"}},
            {"abTest.duration"},
        ),
        (
            {"id": created["id"], "abTest": {"trafficPercent": 20, "duration": "91d"}},
            {"abTest.duration"},
        ),
        ({"id": champion_v1["id"], "abTest": ab}, {"id"}),  # the champion as its own challenger
        ({"id": str(training_id)}, {"id"}),
        ({"id": str(training_id), "abTest": ab}, {"id"}),
        ({"id": created["id"], "rollbackTo": champion_v1["id"]}, {"id"}),  # not deployed
        ({"id": champion_v1["id"], "rollbackTo": champion_v1["id"]}, {"rollbackTo"}),
        ({"id": champion_v1["id"], "rollbackTo": str(training_id)}, {"rollbackTo"}),
        ({"id": created["id"], "abTest": ab, "rollbackTo": champion_v1["id"]}, {"rollbackTo"}),
    ]
    for variables, fields in cases:
        assert bad_fields(admin.error(DEPLOY, **variables)) == fields, variables
    assert code(admin.error(DEPLOY, id="987654")) == "MODEL_NOT_FOUND"
    assert code(admin.error(DEPLOY, id=champion_v1["id"], rollbackTo="987654")) == (
        "MODEL_NOT_FOUND"
    )
    assert code(globex.error(DEPLOY, id=created["id"])) == "MODEL_NOT_FOUND"
    assert code(user.error(DEPLOY, id=created["id"], abTest=ab)) == "FORBIDDEN"
    assert registry_rows(database) == before
    fetch(database, "DELETE FROM ml_model WHERE id = $1", training_id)


def leads_of(url: str) -> list[int]:
    return [r[0] for r in fetch(url, "SELECT id FROM lead WHERE workspace_id = 1 ORDER BY id")]


def test_an_ab_test_sends_about_p_percent_of_leads_to_the_challenger(
    tuned: tuple[dict[str, Any], list[dict[str, Any]]],
    champion_v1: dict[str, Any],
    admin: Persona,
    database: str,
) -> None:
    challenger_id = tuned[0]["id"]
    # (the test's length as the seed writes it)
    deployed = admin.execute(
        DEPLOY, id=challenger_id, abTest={"trafficPercent": 30, "duration": "2d"}
    )["deployModel"]
    length = fetch(
        database, "SELECT ab_ends_at - deployed_at FROM ml_model WHERE id = $1", int(challenger_id)
    )[0][0]
    assert length == timedelta(hours=48)
    assert deployed["champion"] == {
        "id": champion_v1["id"],
        "status": "ACTIVE",
        "alias": "champion",
    }
    challenger = deployed["challenger"]
    assert (challenger["id"], challenger["status"], challenger["alias"]) == (
        challenger_id,
        "ACTIVE",
        "challenger",
    )
    assert challenger["trafficPercent"] == 30 and challenger["abTestRunning"] is True
    started = datetime.fromisoformat(challenger["deployedAt"])
    assert datetime.fromisoformat(challenger["abEndsAt"]) - started == timedelta(hours=48)

    champ, running = serving(database)
    assert champ is not None and running is not None
    assert (str(champ.id), str(running.id)) == (champion_v1["id"], challenger_id)
    lead_ids = leads_of(database)
    routed = {lead: registry.route(lead, champ, running) for lead in lead_ids}
    to_challenger = {lead for lead, model in routed.items() if model is running}
    share = len(to_challenger) / len(lead_ids)
    # binomial: 30 % of a few thousand leads, within ~5 standard deviations
    sd = math.sqrt(0.3 * 0.7 / len(lead_ids))
    assert abs(share - 0.3) < 5 * sd, share
    # the same lead always to the same model: again, in another order, with reloaded versions
    champ2, running2 = serving(database)
    for lead in reversed(lead_ids):
        again = registry.route(lead, champ2, running2)
        assert again is not None and again.id == routed[lead].id
    # and through the API: each lead's score comes from the version routing picked
    seen: dict[int, str] = {}
    after = None
    while len(seen) < 300:
        page = admin.execute(LEAD_SCORES, after=after)["workspace"]["leads"]
        for edge in page["edges"]:
            score = edge["node"]["score"]
            if score is not None:
                seen[int(edge["node"]["id"])] = score["modelId"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) >= 100
    for lead, model_id in seen.items():
        expected = challenger_id if ab_bucket(lead) < 30 else champion_v1["id"]
        assert model_id == expected, lead
    # the challenger is ACTIVE: it cannot be deleted while it serves
    assert bad_fields(admin.error(DELETE, id=challenger_id)) == {"id"}
    audit = fetch(
        database,
        "SELECT details FROM audit_log WHERE action = 'ml_model.ab_test' AND target_id = $1",
        challenger_id,
    )
    assert json.loads(audit[0]["details"])["trafficPercent"] == 30


def test_deploying_the_challenger_promotes_it_and_ends_the_test(
    tuned: tuple[dict[str, Any], list[dict[str, Any]]],
    champion_v1: dict[str, Any],
    admin: Persona,
    database: str,
) -> None:
    challenger_id = tuned[0]["id"]
    deployed = admin.execute(DEPLOY, id=challenger_id, reason="won the A/B test")["deployModel"]
    assert deployed["champion"] == {"id": challenger_id, "status": "ACTIVE", "alias": "champion"}
    assert deployed["challenger"] is None
    old = admin.execute(MODEL, id=champion_v1["id"])["model"]
    assert (old["status"], old["alias"]) == ("RETIRED", None)  # kept for a rollback
    champ, running = serving(database)
    assert champ is not None and str(champ.id) == challenger_id and running is None
    config = admin.execute(CONFIG)["mlConfig"]
    assert config["activeModel"] == {"id": challenger_id}


def test_rollback_moves_the_champion_alias_back_and_ends_any_test(
    tuned: tuple[dict[str, Any], list[dict[str, Any]]],
    champion_v1: dict[str, Any],
    created: dict[str, Any],
    admin: Persona,
    database: str,
) -> None:
    current = tuned[0]["id"]
    admin.execute(DEPLOY, id=created["id"], abTest={"trafficPercent": 10, "durationHours": 1})
    assert serving(database)[1] is not None
    rolled = admin.execute(DEPLOY, id=current, rollbackTo=champion_v1["id"])["deployModel"]
    assert rolled == {
        "champion": {"id": champion_v1["id"], "status": "ACTIVE", "alias": "champion"},
        "challenger": None,
    }
    statuses = {m["id"]: (m["status"], m["alias"]) for m in admin.execute(MODELS)["models"]}
    assert statuses[current] == ("RETIRED", None)
    assert statuses[created["id"]] == ("RETIRED", None)  # the ended challenger
    ended = admin.execute(MODEL, id=created["id"])["model"]
    assert ended["abTestRunning"] is False and ended["trafficPercent"] == 10
    assert datetime.fromisoformat(ended["abEndsAt"]) <= datetime.now(UTC)
    champ, running = serving(database)
    assert champ is not None and str(champ.id) == champion_v1["id"] and running is None
    assert [m["id"] for m in admin.execute(MODELS, status="ACTIVE")["models"]] == [
        champion_v1["id"]
    ]
    actions = [
        r[0]
        for r in fetch(
            database,
            "SELECT action FROM audit_log WHERE target_type = 'ml_model' ORDER BY id DESC LIMIT 6",
        )
    ]
    assert "ml_model.rollback" in actions
    # retiring a running challenger by status ends its test too
    admin.execute(DEPLOY, id=created["id"], abTest={"trafficPercent": 10, "durationHours": 1})
    retired = admin.execute(SET_STATUS, id=created["id"], status="RETIRED")["setModelStatus"]
    assert retired == {"id": created["id"], "status": "RETIRED", "alias": None}
    assert serving(database)[1] is None
    # and a retired version can be deleted, which the champion cannot
    assert admin.execute(DELETE, id=created["id"]) == {"deleteModel": created["id"]}
    assert bad_fields(admin.error(DELETE, id=champion_v1["id"])) == {"id"}
