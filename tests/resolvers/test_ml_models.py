"""The model registry and retraining end to end through gql: jobs, progress, promotion, refusals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import catboost  # type: ignore[import-untyped]
import pytest
from gql.graphql_request import GraphQLRequest

from app.main import create_app
from tests.app.test_cli import run_train
from tests.client import Persona, login
from tests.conftest import ServerThread, fetch, seeded_database, settings_for
from tests.resolvers.test_subscriptions import subscribed

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

RETRAIN = """
mutation Retrain($id: ID, $input: RetrainInput) {
  retrainModel(id: $id, input: $input) { id kind status }
}
"""
JOB = """
query Job($id: ID!) {
  job(id: $id) { id status progress stage error errorCode errorDetails result }
}
"""
PROGRESS = """
subscription Progress($id: ID!) { jobProgress(id: $id) { status progress stage result } }
"""
CANCEL = "mutation Cancel($id: ID!) { cancelJob(id: $id) { status } }"
MODELS = """
query Models($status: ModelStatus) {
  models(status: $status) {
    id name version status algorithm framework alias trainingSamples createdAt trainedAt
    metrics { accuracy precision recall f1Score auc }
    featureImportance { feature importance }
  }
}
"""
MODEL = "query Model($id: ID!) { model(id: $id) { id version status alias metrics { auc } } }"
SET_STATUS = """
mutation SetStatus($id: ID!, $status: ModelStatus!, $reason: String) {
  setModelStatus(id: $id, status: $status, reason: $reason) { id status alias }
}
"""
DELETE = "mutation Delete($id: ID!) { deleteModel(id: $id) }"
CREATE = "mutation Create($input: CreateModelInput!) { createModel(input: $input) { id } }"

FAST = {"iterations": 100, "depth": 4, "learningRate": 0.1}


@pytest.fixture(scope="module")
def ml_database(admin_database_url: str) -> str:
    """A database of this module's own, seeded `small` (enough labelled leads to train)."""
    return seeded_database(admin_database_url, "dashgraph_ml_gql", "small", now=NOW)


@pytest.fixture(scope="module")
def ml_server(ml_database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(ml_database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(ml_server: ServerThread) -> Persona:
    return login(ml_server.url, "admin@acme.example")


@pytest.fixture(scope="module")
def user(ml_server: ServerThread) -> Persona:
    return login(ml_server.url, "user@acme.example")


@pytest.fixture(scope="module")
def globex(ml_server: ServerThread) -> Persona:
    return login(ml_server.url, "admin@globex.example")


def count(url: str, table: str) -> int:
    return int(fetch(url, f"SELECT count(*) FROM {table}")[0][0])


def wait_for_job(persona: Persona, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = persona.execute(JOB, id=job_id)["job"]
        if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def models_by_id(persona: Persona) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in persona.execute(MODELS)["models"]}


@pytest.fixture(scope="module")
def first_run(ml_server: ServerThread, admin: Persona) -> list[dict[str, Any]]:
    """Given no model yet, when the admin retrains, the job's progress as a subscriber saw it."""

    async def scenario() -> list[dict[str, Any]]:
        job = (
            await asyncio.to_thread(
                # long enough (~1 s) for several of the training's progress reports (0.25 s)
                admin.execute,
                RETRAIN,
                input={**FAST, "iterations": 600, "reason": "first"},
            )
        )["retrainModel"]
        assert job["kind"] == "ml.retrain"
        seen: list[dict[str, Any]] = []
        async with subscribed(ml_server, admin) as session:
            stream = session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": job["id"]}))
            async for event in stream:
                seen.append(event["jobProgress"])
                if event["jobProgress"]["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    break
            await stream.aclose()
        return seen

    return asyncio.run(asyncio.wait_for(scenario(), 90))


def test_retrain_streams_progress_and_succeeds(first_run: list[dict[str, Any]]) -> None:
    running = [e for e in first_run if e["status"] == "RUNNING"]
    progress = [e["progress"] for e in running]
    assert progress == sorted(progress) and len(set(progress)) >= 2, first_run
    training = {e["progress"] for e in running if e["stage"] == "training"}
    assert len(training) >= 2, first_run  # live per-iteration progress, not only the stages
    last = first_run[-1]
    assert last["status"] == "SUCCEEDED", last
    assert last["progress"] == 1.0
    assert last["result"]["promoted"] is True  # no champion before
    assert last["result"]["modelId"] and last["result"]["version"] == 1


def test_the_first_version_is_the_active_champion(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    result = first_run[-1]["result"]
    model = models_by_id(admin)[result["modelId"]]
    assert (model["status"], model["alias"]) == ("ACTIVE", "champion")
    assert model["algorithm"] == "catboost"
    assert model["framework"] == f"catboost {catboost.__version__}"
    assert 0.65 <= model["metrics"]["auc"] <= 0.95, model["metrics"]
    assert model["metrics"] == pytest.approx(result["metrics"])
    importance = [f["importance"] for f in model["featureImportance"]]
    assert importance == sorted(importance, reverse=True)
    assert sum(importance) == pytest.approx(100, abs=0.1)
    # the leads it learned from: closed (WON/LOST) ones created at least 180 days ago
    labelled = fetch(
        ml_database,
        "SELECT count(*) FROM lead WHERE workspace_id = 1 AND stage IN ('WON', 'LOST') "
        "AND created_at <= now() - interval '180 days'",
    )[0][0]
    assert model["trainingSamples"] == labelled


def test_a_second_retrain_is_promoted_only_if_it_beats_the_champion(
    first_run: list[dict[str, Any]], admin: Persona
) -> None:
    champion_id = first_run[-1]["result"]["modelId"]
    champion_auc = first_run[-1]["result"]["metrics"]["auc"]
    job = admin.execute(RETRAIN, id=champion_id, input={"iterations": 40, "depth": 2})
    done = wait_for_job(admin, job["retrainModel"]["id"])
    assert done["status"] == "SUCCEEDED", done
    result = done["result"]
    assert result["version"] == 2
    models = models_by_id(admin)
    beats = result["metrics"]["auc"] > champion_auc
    assert result["promoted"] is beats
    assert models[result["modelId"]]["status"] == ("ACTIVE" if beats else "CANDIDATE")
    assert models[champion_id]["status"] == ("RETIRED" if beats else "ACTIVE")
    assert [m["status"] for m in models.values()].count("ACTIVE") == 1


def test_set_status_promotes_and_is_audited(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    models = admin.execute(MODELS)["models"]
    other = next(m for m in models if m["status"] != "ACTIVE")
    active = next(m for m in models if m["status"] == "ACTIVE")
    promoted = admin.execute(SET_STATUS, id=other["id"], status="ACTIVE", reason="rollback")
    expected = {"id": other["id"], "status": "ACTIVE", "alias": "champion"}
    assert promoted["setModelStatus"] == expected
    assert admin.execute(MODEL, id=active["id"])["model"]["status"] == "RETIRED"
    audit = fetch(
        ml_database,
        "SELECT details FROM audit_log WHERE target_type = 'ml_model' AND target_id = $1 "
        "AND action = 'ml_model.status' ORDER BY id DESC LIMIT 1",
        other["id"],
    )
    assert '"rollback"' in audit[0]["details"]


def test_bad_hyperparameters_are_refused_before_anything_is_queued(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    jobs_before = count(ml_database, "job")
    error = admin.error(RETRAIN, input={"iterations": 5, "learningRate": 0, "validationSplit": 0.9})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(error["extensions"]["details"]["fields"]) == {
        "iterations",
        "learningRate",
        "validationSplit",
    }
    assert count(ml_database, "job") == jobs_before


def test_unknown_models_are_model_not_found(admin: Persona) -> None:
    for document, variables in (
        (MODEL, {"id": "987654"}),
        (RETRAIN, {"id": "987654"}),
        (SET_STATUS, {"id": "987654", "status": "RETIRED"}),
        (DELETE, {"id": "987654"}),
    ):
        assert admin.error(document, **variables)["extensions"]["code"] == "MODEL_NOT_FOUND"


def test_only_admins_manage_models(first_run: list[dict[str, Any]], user: Persona) -> None:
    model_id = first_run[-1]["result"]["modelId"]
    assert user.error(RETRAIN, id=model_id)["extensions"]["code"] == "FORBIDDEN"
    assert user.error(DELETE, id=model_id)["extensions"]["code"] == "FORBIDDEN"
    assert user.error(SET_STATUS, id=model_id, status="RETIRED")["extensions"]["code"] == (
        "FORBIDDEN"
    )
    assert model_id in {m["id"] for m in user.execute(MODELS)["models"]}  # reading is fine


def test_the_active_model_cannot_be_deleted_but_others_can(
    first_run: list[dict[str, Any]], admin: Persona
) -> None:
    models = admin.execute(MODELS)["models"]
    active = next(m for m in models if m["status"] == "ACTIVE")
    error = admin.error(DELETE, id=active["id"])
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert admin.execute(MODEL, id=active["id"])["model"]["status"] == "ACTIVE"
    retired = next(m for m in models if m["status"] != "ACTIVE")
    assert admin.execute(DELETE, id=retired["id"]) == {"deleteModel": retired["id"]}
    assert admin.error(MODEL, id=retired["id"])["extensions"]["code"] == "MODEL_NOT_FOUND"


def test_another_workspace_sees_no_model(first_run: list[dict[str, Any]], globex: Persona) -> None:
    model_id = first_run[-1]["result"]["modelId"]
    for document, variables in (
        (MODEL, {"id": model_id}),
        (RETRAIN, {"id": model_id}),
        (SET_STATUS, {"id": model_id, "status": "RETIRED"}),
        (DELETE, {"id": model_id}),
    ):
        assert globex.error(document, **variables)["extensions"]["code"] == "MODEL_NOT_FOUND"
    assert globex.execute(MODELS)["models"] == []


def test_a_cancelled_training_registers_nothing(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    models_before = count(ml_database, "ml_model")
    active_before = [m["id"] for m in admin.execute(MODELS, status="ACTIVE")["models"]]
    job_id = admin.execute(RETRAIN, input={"iterations": 5000, "depth": 6})["retrainModel"]["id"]
    deadline = time.monotonic() + 30
    while admin.execute(JOB, id=job_id)["job"]["stage"] != "training":
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    assert admin.execute(CANCEL, id=job_id)["cancelJob"]["status"] == "RUNNING"
    done = wait_for_job(admin, job_id, timeout=20)
    assert done["status"] == "CANCELLED", done
    assert done["result"] is None
    assert count(ml_database, "ml_model") == models_before
    assert [m["id"] for m in admin.execute(MODELS, status="ACTIVE")["models"]] == active_before


def test_a_workspace_with_too_few_outcomes_is_refused_at_once(
    analytics_empty: Persona, analytics_sql: Any
) -> None:
    # given a workspace with no closed leads: training requests are refused before any job
    jobs_before = analytics_sql("SELECT count(*) FROM job")[0][0]
    create = """
    mutation Create($input: CreateModelInput!) { createModel(input: $input) { id } }
    """
    for document, variables in (
        (RETRAIN, {}),
        (create, {"input": {"name": "First", "type": "CLASSIFICATION", "algorithm": "catboost"}}),
    ):
        error = analytics_empty.error(document, **variables)
        # then MODEL_TRAINING_FAILED says how many labelled leads and conversions it needs
        assert error["extensions"]["code"] == "MODEL_TRAINING_FAILED", error
        details = error["extensions"]["details"]
        assert (details["minSamples"], details["actualSamples"]) == (1000, 0)
        assert (details["minConversions"], details["actualConversions"]) == (120, 0)
    assert analytics_sql("SELECT count(*) FROM job")[0][0] == jobs_before


TRAINING_DATA = """
query Model($id: ID!) {
  model(id: $id) {
    trainingSamples
    trainingData { totalSamples conversions dataSource { createdFrom createdBefore } }
  }
}
"""


def labelled_leads(url: str) -> list[Any]:
    """Acme's leads a training learns from (an outcome, old enough), oldest first."""
    return fetch(
        url,
        "SELECT created_at, stage FROM lead WHERE workspace_id = 1 AND stage IN ('WON', 'LOST') "
        "AND created_at <= now() - interval '180 days' ORDER BY created_at",
    )


def test_a_data_source_picks_the_leads_a_version_learns_from(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    labelled = labelled_leads(ml_database)
    # given a window that leaves out the oldest fifth of the labelled leads
    start = labelled[len(labelled) // 5]["created_at"]
    inside = [r for r in labelled if r["created_at"] >= start]
    source = {"createdFrom": start.isoformat()}
    job = admin.execute(RETRAIN, input={**FAST, "iterations": 40, "dataSource": source})
    done = wait_for_job(admin, job["retrainModel"]["id"])
    assert done["status"] == "SUCCEEDED", done
    # then the version learned from those leads only, and says which
    model = admin.execute(TRAINING_DATA, id=done["result"]["modelId"])["model"]
    data = model["trainingData"]
    assert model["trainingSamples"] == data["totalSamples"] == len(inside) < len(labelled)
    assert data["conversions"] == sum(r["stage"] == "WON" for r in inside)
    assert datetime.fromisoformat(data["dataSource"]["createdFrom"]) == start
    assert data["dataSource"]["createdBefore"] is None


def test_a_data_source_too_small_or_backwards_is_refused_at_once(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    labelled = labelled_leads(ml_database)
    jobs_before = count(ml_database, "job")
    # a window of the 100 oldest labelled leads: too few to learn from
    early = {"createdBefore": labelled[100]["created_at"].isoformat()}
    error = admin.error(RETRAIN, input={**FAST, "dataSource": early})
    assert error["extensions"]["code"] == "MODEL_TRAINING_FAILED"
    assert error["extensions"]["details"]["actualSamples"] == 100
    # a window that ends before it starts names the field
    backwards = {
        "createdFrom": labelled[200]["created_at"].isoformat(),
        "createdBefore": labelled[100]["created_at"].isoformat(),
    }
    create = {"name": "Windowed", "dataSource": backwards}
    for document, variables in (
        (RETRAIN, {"input": {"dataSource": backwards}}),
        (CREATE, {"input": create}),
    ):
        error = admin.error(document, **variables)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert set(error["extensions"]["details"]["fields"]) == {"dataSource.createdBefore"}
    assert count(ml_database, "job") == jobs_before


def test_dashgraph_train_takes_a_data_source_too(
    first_run: list[dict[str, Any]], admin: Persona, ml_database: str
) -> None:
    """`dashgraph train --created-from/--created-before` as retrainModel's dataSource (the
    last test of the module: the version it registers may become champion)."""
    labelled = labelled_leads(ml_database)
    start = labelled[len(labelled) // 4]["created_at"]
    inside = [r for r in labelled if r["created_at"] >= start]
    done = run_train(
        ml_database,
        "--workspace",
        "acme",
        "--iterations",
        "30",
        "--created-from",
        start.isoformat(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    newest = fetch(ml_database, "SELECT id FROM ml_model WHERE workspace_id = 1 ORDER BY id DESC")
    model = admin.execute(TRAINING_DATA, id=str(newest[0]["id"]))["model"]
    assert model["trainingData"]["totalSamples"] == len(inside) < len(labelled)
    assert datetime.fromisoformat(model["trainingData"]["dataSource"]["createdFrom"]) == start
    # backwards: refused before any database work, naming the field
    backwards = run_train(
        ml_database, "--created-from", "2026-02-01", "--created-before", "2026-01-01"
    )
    assert backwards.returncode == 1 and "dataSource.createdBefore" in backwards.stderr
