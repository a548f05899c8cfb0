"""Automatic retraining (ML config training.autoRetrain / retrainThreshold) end to end: a server
that checks every few tenths of a second, a champion trained and scored through gql, and
outcomes that prove it wrong recorded through gql too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from app.main import create_app
from ml.auto_retrain import MIN_OUTCOMES
from ml.drift import detected_at
from tests.client import Persona, login
from tests.conftest import ServerThread, fetch, seeded_database, settings_for
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job
from tests.resolvers.test_ml_registry import UPDATE_CONFIG

ACME = 1
CHECK_SECONDS = 0.3
CLOSE = """
mutation Close($id: ID!) { updateLead(id: $id, input: {stage: LOST}) { id stage } }
"""
DEPLOY = "mutation Deploy($id: ID!) { deployModel(id: $id) { champion { id } } }"
CONCEPT = "query Concept($id: ID!) { model(id: $id) { drift { conceptDrift { detectedAt } } } }"
PERFORMANCE = """
query Performance($id: ID!) {
  model(id: $id) { performance(period: D7) { evaluatedCount accuracy alerts { type value } } }
}
"""


@pytest.fixture(scope="module")
def database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_auto_retrain", "small")


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[ServerThread]:
    settings = settings_for(database, ml_check_seconds=CHECK_SECONDS)
    with ServerThread(create_app(settings)) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: ServerThread) -> Persona:
    return login(server.url, "admin@acme.example")


def auto_jobs(database: str) -> list[dict[str, Any]]:
    rows = fetch(
        database,
        "SELECT id, status, payload->>'autoFor' AS auto_for, payload->>'rule' AS rule, "
        "payload->>'reason' AS reason FROM job WHERE workspace_id = $1 AND kind = 'ml.retrain' "
        "AND payload ? 'autoFor' ORDER BY id",
        ACME,
    )
    return [dict(r) for r in rows]


def lose_predicted_winners(admin: Persona, database: str, model_id: int, count: int) -> None:
    """Close as LOST, through the API, `count` open leads the version predicted to convert
    (its stored probability at or above its decision threshold)."""
    doomed = fetch(
        database,
        "SELECT l.id FROM lead l JOIN lead_score s ON s.workspace_id = l.workspace_id "
        "AND s.lead_id = l.id AND s.model_id = $2 JOIN ml_model m ON m.id = s.model_id "
        "WHERE l.workspace_id = $1 AND l.stage NOT IN ('WON', 'LOST') "
        "AND s.probability >= (m.metrics->'test'->>'threshold')::float ORDER BY l.id LIMIT $3",
        ACME,
        model_id,
        count,
    )
    assert len(doomed) == count
    for row in doomed:
        assert admin.execute(CLOSE, id=str(row["id"]))["updateLead"]["stage"] == "LOST"


@pytest.fixture(scope="module")
def champion(admin: Persona, database: str) -> dict[str, Any]:
    """Given autoRetrain and driftDetection off, a first model trained (promoted) and every
    lead scored."""
    admin.execute(
        UPDATE_CONFIG,
        input={"training": {"autoRetrain": False}, "monitoring": {"driftDetection": False}},
    )
    done = wait_for_job(admin, admin.execute(RETRAIN, input=FAST)["retrainModel"]["id"])
    assert done["status"] == "SUCCEEDED", done
    scored = wait_for_job(admin, done["result"]["scoreJobId"])
    assert scored["status"] == "SUCCEEDED", scored
    row = fetch(
        database,
        "SELECT id, (metrics->'test'->>'accuracy')::float AS accuracy FROM ml_model WHERE id = $1",
        int(done["result"]["modelId"]),
    )[0]
    return dict(row)


def test_a_champion_proved_wrong_is_retrained_once_when_auto_retrain_is_on(
    champion: dict[str, Any], admin: Persona, database: str
) -> None:
    # given open leads the champion predicted to convert, closed as LOST through the API
    lose_predicted_winners(admin, database, champion["id"], MIN_OUTCOMES + 10)
    performance = admin.execute(PERFORMANCE, id=str(champion["id"]))["model"]["performance"]
    assert performance["evaluatedCount"] >= MIN_OUTCOMES + 10
    drop = champion["accuracy"] - performance["accuracy"]
    assert drop > 0.05
    # while autoRetrain is off, checks come and go and queue nothing
    time.sleep(6 * CHECK_SECONDS)
    assert auto_jobs(database) == []

    # when it is turned on, the next check queues one retrain of the champion, which runs
    admin.execute(UPDATE_CONFIG, input={"training": {"autoRetrain": True}})
    deadline = time.monotonic() + 30
    while not (found := auto_jobs(database)) and time.monotonic() < deadline:
        time.sleep(CHECK_SECONDS / 2)
    assert len(found) == 1, found
    job = found[0]
    assert job["auto_for"] == str(champion["id"]) and job["rule"] == "ACCURACY_DROP"
    assert job["reason"].startswith("auto: accuracy")
    done = wait_for_job(admin, str(job["id"]))
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["version"] == 2
    # then it is audited with the drop `MlModel.performance` shows
    audit = fetch(
        database,
        "SELECT details FROM audit_log WHERE workspace_id = $1 "
        "AND action = 'ml_model.auto_retrain' AND target_id = $2",
        ACME,
        str(champion["id"]),
    )
    assert len(audit) == 1
    assert f'"jobId": "{job["id"]}"' in audit[0]["details"]
    # and however many checks follow, it is not queued again
    time.sleep(6 * CHECK_SECONDS)
    assert len(auto_jobs(database)) == 1


def test_drift_beyond_the_threshold_retrains_a_champion_when_drift_detection_is_on(
    champion: dict[str, Any], admin: Persona, database: str
) -> None:
    # given the second version deployed as champion (no outcomes since: no accuracy to judge)
    second = fetch(
        database,
        "SELECT id FROM ml_model WHERE workspace_id = $1 AND version = 2",
        ACME,
    )[0]["id"]
    deployed = admin.execute(DEPLOY, id=str(second))["deployModel"]["champion"]
    assert deployed["id"] == str(second)
    time.sleep(4 * CHECK_SECONDS)  # driftDetection is off: no rule holds
    assert [j["auto_for"] for j in auto_jobs(database)] == [str(champion["id"])]
    # when drift detection is on with a PSI threshold any feature's drift passes
    admin.execute(
        UPDATE_CONFIG,
        input={"monitoring": {"driftDetection": True, "alertThresholds": {"driftPsi": 1e-6}}},
    )
    deadline = time.monotonic() + 30
    while len(found := auto_jobs(database)) < 2 and time.monotonic() < deadline:
        time.sleep(CHECK_SECONDS / 2)
    # then the new champion gets its own retrain, for drift
    assert len(found) == 2, found
    assert found[1]["auto_for"] == str(second) and found[1]["rule"] == "DRIFT"
    assert "PSI" in found[1]["reason"]
    # and the measurement it acted on is the DRIFT alert of the version's performance
    check = fetch(
        database,
        "SELECT max_psi, feature, current_rows FROM ml_drift_check WHERE model_id = $1 "
        "ORDER BY checked_at DESC LIMIT 1",
        second,
    )[0]
    assert check["current_rows"] > 0 and check["max_psi"] > 0
    alerts = admin.execute(PERFORMANCE, id=str(second))["model"]["performance"]["alerts"]
    drift = [a for a in alerts if a["type"] == "DRIFT"]
    assert len(drift) == 1 and drift[0]["value"] == pytest.approx(check["max_psi"])
    # and conceptDrift.detectedAt reads the stored measurements' concept decay
    checks = fetch(
        database,
        "SELECT checked_at, concept_decay FROM ml_drift_check WHERE model_id = $1 "
        "ORDER BY checked_at DESC",
        second,
    )
    concept = admin.execute(CONCEPT, id=str(second))["model"]["drift"]["conceptDrift"]
    want = detected_at([(r["checked_at"], r["concept_decay"]) for r in checks], 0.05)
    found_at = concept["detectedAt"]
    assert (None if found_at is None else datetime.fromisoformat(found_at)) == want
