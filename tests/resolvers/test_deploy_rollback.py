"""deployModel's validationResults (minimum test metrics) and rollbackPlan (a monitored champion
rolled back by the server's ML check when it alerts) end to end through gql, with outcomes that
prove the new champion wrong recorded through gql too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.main import create_app
from ml.performance import TRUSTED_OUTCOMES
from tests.client import Persona, login
from tests.conftest import ServerThread, fetch, seeded_database, settings_for
from tests.resolvers.test_auto_retrain import lose_predicted_winners
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job
from tests.resolvers.test_ml_registry import UPDATE_CONFIG

ACME = 1
CHECK_SECONDS = 0.3
DEPLOY = """
mutation Deploy($id: ID!, $results: ValidationResultsInput, $plan: RollbackPlanInput,
                $abTest: AbTestInput) {
  deployModel(id: $id, validationResults: $results, rollbackPlan: $plan, abTest: $abTest) {
    champion { id rollbackPlan { previousModelId monitorUntil monitoring } }
  }
}
"""
MODEL = """
query Model($id: ID!) {
  model(id: $id) { id status alias metrics { accuracy auc } rollbackPlan { previousModelId } }
}
"""
SCORE = "mutation Score($model: ID) { scoreLeads(model: $model) { id } }"


@pytest.fixture(scope="module")
def database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_deploy_rollback", "small")


@pytest.fixture(scope="module")
def admin(database: str) -> Iterator[Persona]:
    settings = settings_for(database, ml_check_seconds=CHECK_SECONDS)
    with ServerThread(create_app(settings)) as running:
        yield login(running.url, "admin@acme.example")


@pytest.fixture(scope="module")
def versions(admin: Persona) -> tuple[str, str]:
    """Given no automatic retrain: a first version (the champion) and, with autoPromote off, a
    second one (a CANDIDATE)."""
    admin.execute(UPDATE_CONFIG, input={"training": {"autoRetrain": False}})
    ids = []
    for params in (FAST, {**FAST, "iterations": 60, "depth": 3}):
        if ids:
            admin.execute(UPDATE_CONFIG, input={"training": {"autoPromote": False}})
        done = wait_for_job(admin, admin.execute(RETRAIN, input=params)["retrainModel"]["id"])
        assert done["status"] == "SUCCEEDED", done
        ids.append(done["result"]["modelId"])
    first, second = ids
    assert admin.execute(MODEL, id=first)["model"]["alias"] == "champion"
    assert admin.execute(MODEL, id=second)["model"]["status"] == "CANDIDATE"
    return first, second


def code_and_fields(error: dict[str, Any]) -> tuple[str, set[str]]:
    details = error["extensions"].get("details") or {}
    return error["extensions"]["code"], set(details.get("fields", {}))


def test_validation_results_are_minimums_of_the_test_metrics(
    versions: tuple[str, str], admin: Persona
) -> None:
    first, second = versions
    metrics = admin.execute(MODEL, id=second)["model"]["metrics"]
    # a minimum above what the version measured refuses the deployment, naming the metric
    error = admin.error(DEPLOY, id=second, results={"auc": 0.999, "accuracy": 0.0})
    assert code_and_fields(error) == ("BAD_USER_INPUT", {"validationResults.auc"})
    assert (
        f"{metrics['auc']:.4f}" in error["extensions"]["details"]["fields"]["validationResults.auc"]
    )
    assert admin.execute(MODEL, id=first)["model"]["alias"] == "champion"  # nothing changed
    error = admin.error(DEPLOY, id=second, results={"recall": 1.5})
    assert code_and_fields(error) == ("BAD_USER_INPUT", {"validationResults.recall"})


def test_a_rollback_plan_is_refused_where_it_cannot_apply(
    versions: tuple[str, str], admin: Persona
) -> None:
    first, second = versions
    cases = [
        ({"monitoringPeriod": "soon"}, None, {"rollbackPlan.monitoringPeriod"}),
        ({"monitoringPeriod": "24h"}, {"trafficPercent": 10, "duration": "7d"}, {"rollbackPlan"}),
        (
            {"monitoringPeriod": "24h", "previousModel": second},
            None,
            {"rollbackPlan.previousModel"},
        ),
    ]
    for plan, ab_test, fields in cases:
        error = admin.error(DEPLOY, id=second, plan=plan, abTest=ab_test)
        assert code_and_fields(error) == ("BAD_USER_INPUT", fields), (plan, error)
    error = admin.error(
        DEPLOY, id=second, plan={"monitoringPeriod": "1h", "previousModel": "999999"}
    )
    assert error["extensions"]["code"] == "MODEL_NOT_FOUND"
    assert admin.execute(MODEL, id=first)["model"]["alias"] == "champion"


def test_a_monitored_champion_that_alerts_is_rolled_back(
    versions: tuple[str, str], admin: Persona, database: str
) -> None:
    first, second = versions
    metrics = admin.execute(MODEL, id=second)["model"]["metrics"]
    # given the second version deployed with validation results it meets and a rollback plan
    deployed = admin.execute(
        DEPLOY,
        id=second,
        results={"auc": metrics["auc"] - 0.01},
        plan={"monitoringPeriod": "24h"},
    )["deployModel"]["champion"]
    assert deployed["id"] == second
    plan = deployed["rollbackPlan"]
    assert plan["previousModelId"] == first and plan["monitoring"] is True
    # and every lead scored by it, and no alert yet: it stays the champion through checks
    scored = wait_for_job(admin, admin.execute(SCORE, model=second)["scoreLeads"]["id"])
    assert scored["status"] == "SUCCEEDED", scored
    time.sleep(4 * CHECK_SECONDS)
    assert admin.execute(MODEL, id=second)["model"]["alias"] == "champion"
    # when leads it predicted to convert are lost, past the accuracy-drop threshold
    lose_predicted_winners(admin, database, int(second), TRUSTED_OUTCOMES + 10)
    # then the next check moves the champion back to the first version
    deadline = time.monotonic() + 30
    while admin.execute(MODEL, id=first)["model"]["alias"] != "champion":
        assert time.monotonic() < deadline, "not rolled back"
        time.sleep(CHECK_SECONDS / 2)
    rolled = admin.execute(MODEL, id=second)["model"]
    assert rolled["status"] == "RETIRED" and rolled["alias"] is None
    assert rolled["rollbackPlan"] is None
    audit = fetch(
        database,
        "SELECT details FROM audit_log WHERE workspace_id = $1 AND action = 'ml_model.rollback' "
        "AND target_id = $2",
        ACME,
        first,
    )
    assert len(audit) == 1
    assert '"automatic": true' in audit[0]["details"] and "ACCURACY_DROP" in audit[0]["details"]
