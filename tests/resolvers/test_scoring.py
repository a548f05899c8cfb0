"""Batch scoring end to end through gql: scoreLeads jobs, Lead.score, COPY'd history, refusals,
and the leadScoreChanged subscription."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from catboost import CatBoostClassifier  # type: ignore[import-untyped]
from gql.graphql_request import GraphQLRequest

from app.main import create_app
from ml.features import FEATURES, feature_frame
from models.db import Database
from models.jobs import PRIORITY_RANK, JobPriority
from tests.client import Persona, login
from tests.conftest import ServerThread, fetch, seeded_database, settings_for
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job
from tests.resolvers.test_subscriptions import subscribed

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1

SCORE_LEADS = """
mutation Score($ids: [ID!], $model: ID, $priority: JobPriority! = NORMAL) {
  scoreLeads(leadIds: $ids, model: $model, priority: $priority) { id kind status priority }
}
"""
LEAD = """
query Lead($id: ID!) {
  lead(id: $id) { id score { value probability confidence modelVersion scoredAt } }
}
"""
SUBSCRIBE = """
subscription Score($id: ID!) {
  leadScoreChanged(leadId: $id) { id score { value probability modelVersion scoredAt } }
}
"""


@pytest.fixture(scope="module")
def scoring_database(admin_database_url: str) -> str:
    """A database of this module's own, seeded `small` (enough labelled leads to train)."""
    return seeded_database(admin_database_url, "dashgraph_scoring_gql", "small", now=NOW)


@pytest.fixture(scope="module")
def scoring_server(scoring_database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(scoring_database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(scoring_server: ServerThread) -> Persona:
    return login(scoring_server.url, "admin@acme.example")


@pytest.fixture(scope="module")
def user(scoring_server: ServerThread) -> Persona:
    return login(scoring_server.url, "user@acme.example")


def scalar(url: str, query: str, *args: Any) -> Any:
    return fetch(url, query, *args)[0][0]


@pytest.fixture(scope="module")
def trained(admin: Persona) -> dict[str, Any]:
    """Given seeded leads, a first model is trained and promoted; its automatic scoring of
    every lead has finished. The retrain job's result."""
    job = admin.execute(RETRAIN, input=FAST)["retrainModel"]
    done = wait_for_job(admin, job["id"], timeout=90)
    assert done["status"] == "SUCCEEDED", done
    result: dict[str, Any] = done["result"]
    assert result["promoted"] is True
    scored = wait_for_job(admin, result["scoreJobId"], timeout=60)
    assert scored["status"] == "SUCCEEDED", scored
    return result


def acme_leads(url: str, limit: int | None = None) -> list[int]:
    rows = fetch(
        url,
        "SELECT id FROM lead WHERE workspace_id = $1 ORDER BY id"
        + ("" if limit is None else f" LIMIT {limit}"),
        ACME,
    )
    return [int(r["id"]) for r in rows]


def expected_probabilities(url: str, model_id: str, lead_ids: list[int]) -> dict[int, float]:
    """The model's own predictions, recomputed here from its cbm bytes read with SQL."""
    blob = bytes(scalar(url, "SELECT artifact FROM ml_model WHERE id = $1", int(model_id)))
    model = CatBoostClassifier()
    model.load_model(blob=blob)

    async def frame() -> Any:
        db = Database(url, pool_size=1)
        try:
            return await feature_frame(db, ACME, lead_ids=lead_ids)
        finally:
            await db.dispose()

    features = asyncio.run(frame())
    probabilities = model.predict_proba(features.select(FEATURES))[:, 1]
    return dict(zip(features["lead_id"].to_list(), map(float, probabilities), strict=True))


def test_promotion_scores_every_lead(trained: dict[str, Any], scoring_database: str) -> None:
    leads = len(acme_leads(scoring_database))
    assert leads > 0
    scored = scalar(
        scoring_database,
        "SELECT count(DISTINCT lead_id) FROM lead_score WHERE workspace_id = $1 AND model_id = $2",
        ACME,
        int(trained["modelId"]),
    )
    assert scored == leads
    unscored = scalar(
        scoring_database,
        "SELECT count(*) FROM lead_current_score WHERE workspace_id = $1 AND value IS NULL",
        ACME,
    )
    assert unscored == 0


BY_SCORE = """
query Leads($filter: LeadFilter, $direction: SortDirection!, $after: String) {
  workspace { leads(filter: $filter, sort: {field: SCORE, direction: $direction}, first: 40,
                    after: $after) {
    edges { node { id } } pageInfo { hasNextPage endCursor } totalCount } }
}
"""


def test_the_lead_list_sorts_and_filters_by_the_current_score(
    trained: dict[str, Any], admin: Persona, scoring_database: str
) -> None:
    """The list's SCORE order and score filters read each lead's current score (its own table,
    migration 0023), page by page through cursors, as SQL over that table has them."""
    rows = fetch(
        scoring_database,
        "SELECT lead_id, value FROM lead_current_score WHERE workspace_id = $1",
        ACME,
    )
    for direction, bounds in (("DESC", {"minScore": 5, "maxScore": 90}), ("ASC", {})):
        low, high = bounds.get("minScore", 0), bounds.get("maxScore", 100)
        inside = [(r["value"], r["lead_id"]) for r in rows if low <= r["value"] <= high]
        expected = [i for _, i in sorted(inside, reverse=direction == "DESC")]
        assert len(expected) > 80  # more than two pages
        seen: list[int] = []
        after = None
        while True:
            page = admin.execute(BY_SCORE, filter=bounds, direction=direction, after=after)
            leads = page["workspace"]["leads"]
            assert leads["totalCount"] == len(expected)
            seen += [int(e["node"]["id"]) for e in leads["edges"]]
            if not leads["pageInfo"]["hasNextPage"]:
                break
            after = leads["pageInfo"]["endCursor"]
        assert seen == expected


def test_score_leads_matches_the_models_own_prediction(
    trained: dict[str, Any], admin: Persona, scoring_database: str
) -> None:
    ids = acme_leads(scoring_database, 50)
    job = admin.execute(SCORE_LEADS, ids=[str(i) for i in ids])["scoreLeads"]
    assert job["kind"] == "ml.score"
    done = wait_for_job(admin, job["id"])
    assert done["status"] == "SUCCEEDED", done
    result = done["result"]
    assert result["total"] == 50 and result["successful"] == 50 and result["failed"] == 0
    assert result["modelId"] == trained["modelId"]
    assert result["modelVersion"] == trained["version"]
    assert 1 <= result["averageScore"] <= 99 and 0 <= result["averageConfidence"] <= 1

    expected = expected_probabilities(scoring_database, trained["modelId"], ids)
    values: list[int] = []
    for lead_id in ids:
        score = admin.execute(LEAD, id=str(lead_id))["lead"]["score"]
        p = expected[lead_id]
        assert score["probability"] == pytest.approx(p, abs=1e-9)
        assert score["value"] == int(np.clip(round(100 * score["probability"]), 1, 99))
        assert score["confidence"] == pytest.approx(2 * abs(score["probability"] - 0.5))
        assert score["modelVersion"] == str(trained["version"])
        values.append(score["value"])
    # the job lists each lead's score, in the order asked
    assert [r["leadId"] for r in result["results"]] == [str(i) for i in ids]
    assert [r["score"] for r in result["results"]] == values
    assert all(r["error"] is None for r in result["results"])
    for r in result["results"]:
        p = expected[int(r["leadId"])]
        assert r["confidence"] == pytest.approx(2 * abs(p - 0.5))
    # the current score follows
    rows = fetch(
        scoring_database,
        "SELECT lead_id, value FROM lead_current_score "
        "WHERE workspace_id = $1 AND lead_id = ANY($2::bigint[])",
        ACME,
        ids,
    )
    current = {int(r["lead_id"]): r["value"] for r in rows}
    assert [current[i] for i in ids] == values
    assert result["averageScore"] == pytest.approx(sum(values) / len(values))


def test_scoring_all_leads_writes_one_row_per_lead(
    trained: dict[str, Any], admin: Persona, scoring_database: str
) -> None:
    leads = len(acme_leads(scoring_database))
    before = scalar(scoring_database, "SELECT count(*) FROM lead_score WHERE workspace_id = $1", 1)
    job = admin.execute(SCORE_LEADS, priority="HIGH")["scoreLeads"]
    # (a HIGH job: workers take it before the NORMAL and LOW ones)
    assert job["priority"] == "HIGH"
    stored = scalar(scoring_database, "SELECT priority FROM job WHERE id = $1", int(job["id"]))
    assert stored == PRIORITY_RANK[JobPriority.HIGH] > PRIORITY_RANK[JobPriority.NORMAL]
    done = wait_for_job(admin, job["id"], timeout=60)
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["total"] == leads == done["result"]["successful"]
    assert "results" not in done["result"]  # every lead: the summary only
    after = scalar(scoring_database, "SELECT count(*) FROM lead_score WHERE workspace_id = $1", 1)
    assert after - before == leads


def test_foreign_and_unseen_leads_are_not_found_and_nothing_is_queued(
    trained: dict[str, Any], admin: Persona, user: Persona, scoring_database: str
) -> None:
    foreign = int(
        scalar(scoring_database, "SELECT min(id) FROM lead WHERE workspace_id <> $1", ACME)
    )
    own = acme_leads(scoring_database, 3)
    jobs_before = scalar(scoring_database, "SELECT count(*) FROM job")
    error = admin.error(SCORE_LEADS, ids=[str(own[0]), str(foreign)])
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["details"]["leadIds"] == [str(foreign)]
    # a USER only scores the leads they own
    not_theirs = int(
        scalar(
            scoring_database,
            "SELECT min(l.id) FROM lead l WHERE l.workspace_id = $1 AND l.owner_id IS DISTINCT"
            " FROM (SELECT id FROM app_user WHERE email = 'user@acme.example')",
            ACME,
        )
    )
    error = user.error(SCORE_LEADS, ids=[str(not_theirs)])
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["details"]["leadIds"] == [str(not_theirs)]
    assert scalar(scoring_database, "SELECT count(*) FROM job") == jobs_before


def test_too_many_ids_and_unknown_models_are_refused(
    trained: dict[str, Any], admin: Persona, scoring_database: str
) -> None:
    jobs_before = scalar(scoring_database, "SELECT count(*) FROM job")
    error = admin.error(SCORE_LEADS, ids=[str(i) for i in range(1, 10_002)])
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "leadIds" in error["extensions"]["details"]["fields"]
    ids = [str(i) for i in acme_leads(scoring_database, 1)]
    error = admin.error(SCORE_LEADS, ids=ids, model="987654")
    assert error["extensions"]["code"] == "MODEL_NOT_FOUND"
    assert scalar(scoring_database, "SELECT count(*) FROM job") == jobs_before


def test_lead_score_changed_receives_the_new_score(
    trained: dict[str, Any], admin: Persona, scoring_server: ServerThread, scoring_database: str
) -> None:
    lead_id = str(acme_leads(scoring_database, 1)[0])

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with subscribed(scoring_server, admin) as session:
            stream = session.subscribe(GraphQLRequest(SUBSCRIBE, variable_values={"id": lead_id}))
            first = (await anext(stream))["leadScoreChanged"]
            job = (await asyncio.to_thread(admin.execute, SCORE_LEADS, ids=[lead_id]))["scoreLeads"]
            second = (await asyncio.wait_for(anext(stream), 30))["leadScoreChanged"]
            await stream.aclose()
        done = await asyncio.to_thread(wait_for_job, admin, job["id"])
        return first, second, done

    first, second, done = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert done["status"] == "SUCCEEDED"
    assert first["score"] is not None  # scored after the promotion
    assert second["id"] == lead_id
    assert second["score"]["scoredAt"] > first["score"]["scoredAt"]
    assert second["score"]["modelVersion"] == str(trained["version"])
    assert second["score"]["probability"] == pytest.approx(first["score"]["probability"])
