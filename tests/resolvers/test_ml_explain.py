"""Explanations, feature importance, conversion predictions, feature metadata and drift end to
end through gql, each number recomputed here from the model's bytes and raw rows."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
from catboost import CatBoostClassifier  # type: ignore[import-untyped]
from scipy.stats import rankdata  # type: ignore[import-untyped]
from sqlalchemy import event

from app.main import create_app
from ml.features import FEATURES, feature_frame
from models.db import Database
from models.ml_models import ab_bucket
from tests.client import Persona, login
from tests.conftest import ServerThread, fetch, seeded_database, settings_for
from tests.resolvers.test_ml_models import FAST, RETRAIN, wait_for_job

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACME = 1

EXPLAIN_PAGE = """
query Explain($first: Int!) {
  workspace {
    leads(first: $first, sort: {field: CREATED_AT, direction: ASC}) {
      edges { node { id explanation {
        modelId modelVersion expectedValue probability
        contributions { feature value shap }
        topPositive { feature value shap } topNegative { feature value shap }
        decisionFactors
      } } }
    }
  }
}
"""
LEAD_EXPLANATION = """
query Lead($id: ID!) { lead(id: $id) { id explanation { modelVersion expectedValue } } }
"""
IMPORTANCE = """
query Importance($id: ID!, $leads: [ID!]) {
  model(id: $id) {
    featureImportance(leadIds: $leads) { feature importance shapMean local { leadId shap share } }
  }
}
"""
PREDICT = """
query Predict($ids: [ID!]!, $timeframe: ConversionTimeframe!) {
  predictConversion(leadIds: $ids, timeframe: $timeframe) {
    leadId modelId modelVersion probability confidence estimatedValue
    expectedDaysToConversion probabilityWithinTimeframe keyFactors factors { feature shap }
  }
}
"""
CREATE_LEAD = """
mutation Create($input: CreateLeadInput!) { createLead(input: $input) { id } }
"""
FEATURES_QUERY = """
query Features {
  features {
    name type description importance missingRate leads distinctValues
    range { min max mean std skewness }
    categories { value count share }
    distribution { low high count share }
  }
}
"""
DRIFT = """
query Drift($id: ID!, $window: Int!) {
  model(id: $id) {
    trainingSamples
    drift(windowDays: $window) {
      windowDays windowStart windowEnd referenceRows currentRows overallDrift meanDrift band
      referenceRebuilt
      features { feature type psi band referenceMissingRate currentMissingRate trending }
      conceptDrift { testAuc recentAuc decay score confidence samples conversions since }
      recommendations { type priority reason suggestedAction }
    }
  }
}
"""


@pytest.fixture(scope="module")
def database(admin_database_url: str) -> str:
    return seeded_database(admin_database_url, "dashgraph_explain_gql", "small", now=NOW)


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(settings_for(database))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: ServerThread) -> Persona:
    return login(server.url, "admin@acme.example")


@pytest.fixture(scope="module")
def globex(server: ServerThread) -> Persona:
    return login(server.url, "admin@globex.example")


@pytest.fixture(scope="module")
def model_id(admin: Persona) -> str:
    """Given seeded leads, the admin trains the first model; it becomes the champion."""
    job = admin.execute(RETRAIN, input=FAST)["retrainModel"]
    done = wait_for_job(admin, job["id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["promoted"] is True
    # the promotion's scoring of every lead: done before anything here counts statements
    scored = wait_for_job(admin, done["result"]["scoreJobId"], timeout=120)
    assert scored["status"] == "SUCCEEDED", scored
    return str(done["result"]["modelId"])


def classifier(url: str, model_id: str) -> CatBoostClassifier:
    blob = bytes(fetch(url, "SELECT artifact FROM ml_model WHERE id = $1", int(model_id))[0][0])
    model = CatBoostClassifier()
    model.load_model(blob=blob)
    return model


def frame_of(url: str, lead_ids: list[int]) -> pl.DataFrame:
    async def go() -> pl.DataFrame:
        db = Database(url, pool_size=1)
        try:
            return await feature_frame(db, ACME, lead_ids=lead_ids)
        finally:
            await db.dispose()

    return asyncio.run(go())


def probabilities(url: str, model_id: str, lead_ids: list[int]) -> dict[int, float]:
    """The model's own predictions, from its cbm bytes read with SQL."""
    frame = frame_of(url, lead_ids)
    p = classifier(url, model_id).predict_proba(frame.select(FEATURES))[:, 1]
    return dict(zip(frame["lead_id"].to_list(), map(float, p), strict=True))


def explained_page(admin: Persona, first: int) -> list[dict[str, Any]]:
    edges = admin.execute(EXPLAIN_PAGE, first=first)["workspace"]["leads"]["edges"]
    return [e["node"] for e in edges]


def test_explanation_shap_adds_up_to_the_models_log_odds(
    model_id: str, admin: Persona, database: str
) -> None:
    nodes = explained_page(admin, 40)
    ids = [int(n["id"]) for n in nodes]
    expected = probabilities(database, model_id, ids)
    version = fetch(database, "SELECT version FROM ml_model WHERE id = $1", int(model_id))[0][0]
    for node in nodes:
        e = node["explanation"]
        p = expected[int(node["id"])]
        assert (e["modelId"], e["modelVersion"]) == (model_id, str(version))
        assert [c["feature"] for c in e["contributions"]] == list(FEATURES)
        total = e["expectedValue"] + sum(c["shap"] for c in e["contributions"])
        assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
        assert e["probability"] == pytest.approx(p, abs=1e-9)
        shaps = sorted(c["shap"] for c in e["contributions"])
        assert [c["shap"] for c in e["topPositive"]] == [s for s in reversed(shaps) if s > 0][:3]
        assert [c["shap"] for c in e["topNegative"]] == [s for s in shaps if s < 0][:3]
        assert len(e["decisionFactors"]) == len(e["topPositive"]) + len(e["topNegative"])


def test_explanation_values_and_sentences_come_from_the_lead(
    model_id: str, admin: Persona, database: str
) -> None:
    nodes = explained_page(admin, 20)
    rows = {
        r["id"]: r
        for r in fetch(
            database,
            "SELECT id, budget FROM lead WHERE id = ANY($1::bigint[])",
            [int(n["id"]) for n in nodes],
        )
    }
    for node in nodes:
        e = node["explanation"]
        budget = rows[int(node["id"])]["budget"]
        value = next(c["value"] for c in e["contributions"] if c["feature"] == "log_budget")
        assert value == ("not known" if budget is None else f"{budget:,}")
        strongest = max(e["topPositive"] + e["topNegative"], key=lambda c: abs(c["shap"]))
        assert strongest["value"] in e["decisionFactors"][0]
        verb = "raises" if strongest["shap"] > 0 else "lowers"
        assert verb in e["decisionFactors"][0]


def test_explaining_a_page_is_batched(model_id: str, admin: Persona, server: ServerThread) -> None:
    explained_page(admin, 2)  # warm: the model is loaded once per process

    def statements(first: int) -> int:
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            # the feature and model reads (the job workers poll on the same engine)
            if "lead_event" in statement or "ml_model" in statement:
                seen.append(statement)

        engine = server.services.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            nodes = explained_page(admin, first)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert all(n["explanation"] is not None for n in nodes)
        return len(seen)

    assert statements(40) == statements(2) > 0


def test_a_workspace_without_a_model_explains_nothing(globex: Persona, database: str) -> None:
    lead = fetch(database, "SELECT min(id) FROM lead WHERE workspace_id <> $1", ACME)[0][0]
    ws = fetch(database, "SELECT workspace_id FROM lead WHERE id = $1", lead)[0][0]
    if fetch(database, "SELECT count(*) FROM ml_model WHERE workspace_id = $1", ws)[0][0]:
        pytest.skip("this workspace has a model")
    assert globex.execute(LEAD_EXPLANATION, id=str(lead))["lead"]["explanation"] is None


def test_feature_importance_local_values_are_the_explanations_shap(
    model_id: str, admin: Persona
) -> None:
    nodes = explained_page(admin, 8)
    ids = [n["id"] for n in nodes]
    found = admin.execute(IMPORTANCE, id=model_id, leads=ids)["model"]["featureImportance"]
    plain = admin.execute(IMPORTANCE, id=model_id, leads=None)["model"]["featureImportance"]
    # global part unchanged, largest first, with or without leads
    assert [(f["feature"], f["importance"]) for f in found] == [
        (f["feature"], f["importance"]) for f in plain
    ]
    assert [f["importance"] for f in plain] == sorted(
        (f["importance"] for f in plain), reverse=True
    )
    assert all(f["shapMean"] is None and f["local"] == [] for f in plain)
    shap = {
        (n["id"], c["feature"]): c["shap"] for n in nodes for c in n["explanation"]["contributions"]
    }
    for f in found:
        assert [x["leadId"] for x in f["local"]] == ids
        for x in f["local"]:
            assert x["shap"] == pytest.approx(shap[(x["leadId"], f["feature"])], abs=1e-12)
        mean_abs = np.mean([abs(shap[(i, f["feature"])]) for i in ids])
        assert f["shapMean"] == pytest.approx(mean_abs)
    for lead in ids:
        shares = [x["share"] for f in found for x in f["local"] if x["leadId"] == lead]
        assert sum(shares) == pytest.approx(1.0)


def test_feature_importance_refusals(
    model_id: str, admin: Persona, globex: Persona, database: str
) -> None:
    foreign = fetch(database, "SELECT min(id) FROM lead WHERE workspace_id <> $1", ACME)[0][0]
    own = fetch(database, "SELECT min(id) FROM lead WHERE workspace_id = $1", ACME)[0][0]
    error = admin.error(IMPORTANCE, id=model_id, leads=[str(own), str(foreign)])
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["details"]["leadIds"] == [str(foreign)]
    error = admin.error(IMPORTANCE, id=model_id, leads=[str(own + i) for i in range(101)])
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "leadIds" in error["extensions"]["details"]["fields"]
    assert admin.error(IMPORTANCE, id="987654")["extensions"]["code"] == "MODEL_NOT_FOUND"
    # another workspace's model is not found either
    assert globex.error(IMPORTANCE, id=model_id)["extensions"]["code"] == "MODEL_NOT_FOUND"


def expected_prediction(
    lead: Any, won: list[Any], p: float, timeframe: int, now: datetime
) -> dict[str, Any]:
    """The documented rules, recomputed from raw rows."""
    if lead["value"] is not None:
        value = float(lead["value"])
    else:
        ratios = [w["value"] / w["budget"] for w in won if w["budget"] and w["value"] is not None]
        value = lead["budget"] * float(np.median(ratios))
    same = [float(w["days"]) for w in won if w["timeline"] == lead["timeline"]]
    days = np.array(same if len(same) >= 30 else [float(w["days"]) for w in won])
    age = max((now - lead["created_at"]).total_seconds() / 86400, 0.0)
    open_then = days[days > age]
    if open_then.size:
        expected_days = float(np.median(open_then)) - age
        share = float((open_then <= age + timeframe).mean())
    else:
        expected_days, share = None, 0.0
    return {"value": value, "days": expected_days, "within": p * share}


def test_predict_conversion_is_recomputed_from_raw_rows(
    model_id: str, admin: Persona, database: str
) -> None:
    priced = admin.execute(
        CREATE_LEAD,
        input={
            "name": "Priced",
            "source": "REFERRAL",
            "budget": 750_000,
            "value": 700_000,
            "timeline": "WITHIN_3_MONTHS",
            "propertyType": "CONDO",
            "location": "Seattle",
        },
    )["createLead"]["id"]
    budget_only = admin.execute(
        CREATE_LEAD,
        input={
            "name": "Budget only",
            "source": "WEBSITE",
            "budget": 420_000,
            "timeline": "IMMEDIATE",
        },
    )["createLead"]["id"]
    seeded = fetch(
        database,
        "SELECT id FROM lead WHERE workspace_id = $1 ORDER BY created_at DESC LIMIT 3 OFFSET 40",
        ACME,
    )
    ids = [priced, budget_only, *[str(r["id"]) for r in seeded]]
    for timeframe, days in (("DAYS_30", 30), ("DAYS_90", 90)):
        found = admin.execute(PREDICT, ids=ids, timeframe=timeframe)["predictConversion"]
        now = fetch(database, "SELECT now()")[0][0]
        leads = {
            str(r["id"]): r
            for r in fetch(
                database,
                "SELECT id, value, budget, timeline, created_at FROM lead "
                "WHERE id = ANY($1::bigint[])",
                [int(i) for i in ids],
            )
        }
        won = fetch(
            database,
            "SELECT timeline, value, budget, "
            "extract(epoch FROM converted_at - created_at) / 86400.0 AS days FROM lead "
            "WHERE workspace_id = $1 AND stage = 'WON' AND converted_at >= created_at",
            ACME,
        )
        p = probabilities(database, model_id, [int(i) for i in ids])
        assert [f["leadId"] for f in found] == ids
        for f in found:
            lead = leads[f["leadId"]]
            expected = expected_prediction(lead, won, p[int(f["leadId"])], days, now)
            assert f["modelId"] == model_id
            assert f["probability"] == pytest.approx(p[int(f["leadId"])], abs=1e-9)
            assert f["confidence"] == pytest.approx(2 * abs(f["probability"] - 0.5))
            assert f["estimatedValue"] == pytest.approx(expected["value"])
            if expected["days"] is None:
                assert f["expectedDaysToConversion"] is None
            else:
                assert f["expectedDaysToConversion"] == pytest.approx(expected["days"], abs=0.01)
            assert f["probabilityWithinTimeframe"] == pytest.approx(expected["within"], abs=1e-3)
            assert 0 <= f["probabilityWithinTimeframe"] <= f["probability"]
            assert 1 <= len(f["keyFactors"]) <= 6
            assert len(f["factors"]) == len(f["keyFactors"])
    priced_row = next(f for f in found if f["leadId"] == priced)
    assert priced_row["estimatedValue"] == 700_000
    assert any("Budget 750,000" in k for k in priced_row["keyFactors"]) or all(
        "Budget" not in k for k in priced_row["keyFactors"]
    )
    fresh = next(f for f in found if f["leadId"] == budget_only)
    assert fresh["expectedDaysToConversion"] is not None  # a new lead: every won lead counts


def test_predict_conversion_refusals(model_id: str, admin: Persona, database: str) -> None:
    foreign = fetch(database, "SELECT min(id) FROM lead WHERE workspace_id <> $1", ACME)[0][0]
    error = admin.error(PREDICT, ids=[str(foreign)], timeframe="DAYS_30")
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["details"]["leadIds"] == [str(foreign)]
    error = admin.error(PREDICT, ids=[str(i) for i in range(1, 102)], timeframe="DAYS_30")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "leadIds" in error["extensions"]["details"]["fields"]
    assert admin.error(PREDICT, ids=[], timeframe="DAYS_60")["extensions"]["code"] == (
        "BAD_USER_INPUT"
    )


def test_features_are_computed_from_the_workspace_leads(
    model_id: str, admin: Persona, database: str
) -> None:
    features = {f["name"]: f for f in admin.execute(FEATURES_QUERY)["features"]}
    assert list(features) == list(FEATURES)
    importance = {
        f["feature"]: f["importance"]
        for f in admin.execute(IMPORTANCE, id=model_id)["model"]["featureImportance"]
    }
    assert {n: f["importance"] for n, f in features.items()} == pytest.approx(importance)
    total, missing_budget, low, high = fetch(
        database,
        "SELECT count(*), count(*) FILTER (WHERE budget IS NULL), min(budget), max(budget) "
        "FROM lead WHERE workspace_id = $1",
        ACME,
    )[0]
    budget = features["log_budget"]
    assert budget["type"] == "NUMERIC" and budget["leads"] == total
    assert budget["missingRate"] == pytest.approx(missing_budget / total)
    assert budget["range"]["min"] == pytest.approx(math.log1p(low))
    assert budget["range"]["max"] == pytest.approx(math.log1p(high))
    logs = np.log1p(
        np.array(
            [
                r[0]
                for r in fetch(
                    database,
                    "SELECT budget FROM lead WHERE workspace_id = $1 AND budget IS NOT NULL",
                    ACME,
                )
            ],
            dtype=np.float64,
        )
    )
    deviation = logs - logs.mean()
    skew = (deviation**3).mean() / (deviation**2).mean() ** 1.5
    assert budget["range"]["skewness"] == pytest.approx(skew, rel=1e-6)
    assert sum(b["count"] for b in budget["distribution"]) == total - missing_budget
    assert budget["distribution"][0]["low"] == pytest.approx(math.log1p(low))
    timeline = features["timeline"]
    assert timeline["type"] == "CATEGORICAL" and timeline["range"] is None
    shares = {
        (r["timeline"] or "missing"): r["n"] / total
        for r in fetch(
            database,
            "SELECT timeline, count(*) AS n FROM lead WHERE workspace_id = $1 GROUP BY 1",
            ACME,
        )
    }
    assert {c["value"]: c["share"] for c in timeline["categories"]} == pytest.approx(shares)
    assert timeline["distinctValues"] == len(shares)
    assert timeline["missingRate"] == pytest.approx(shares.get("missing", 0.0))
    assert all(f["description"] for f in features.values())


@pytest.fixture(scope="module")
def shifted_copies(model_id: str, database: str) -> int:
    """Given recent leads drawn like the training data in everything but budget (copies of
    every 4th training lead, budget times 5, created 15 to 43 days ago, with their first
    14 days of activity shifted along), the number of copies."""
    fetch(
        database,
        """
        WITH src AS (
          SELECT l.*, now() - interval '15 days' - interval '3 hours'
                 - (row_number() OVER (ORDER BY l.id) % 29) * interval '1 day' AS new_created
          FROM lead l
          WHERE l.workspace_id = $1 AND l.stage IN ('WON', 'LOST')
            AND l.created_at <= now() - interval '180 days' AND l.id % 4 = 0
        )
        INSERT INTO lead (workspace_id, name, source, budget, timeline, property_type, location,
                          stage, value, agent_id, owner_id, do_not_call, created_at, updated_at)
        SELECT workspace_id, 'drift copy of ' || id, source, budget * 5, timeline,
               property_type, location, 'CONTACTED', value, agent_id, owner_id, false,
               new_created, new_created
        FROM src
        """,
        ACME,
    )
    fetch(
        database,
        """
        INSERT INTO lead_event (workspace_id, lead_id, type, occurred_at, agent_id)
        SELECT e.workspace_id, c.id, e.type, e.occurred_at + (c.created_at - s.created_at),
               e.agent_id
        FROM lead c
        JOIN lead s ON s.workspace_id = c.workspace_id AND c.name = 'drift copy of ' || s.id
        JOIN lead_event e ON e.workspace_id = s.workspace_id AND e.lead_id = s.id
        WHERE c.workspace_id = $1 AND c.name LIKE 'drift copy of %'
          AND e.type <> 'STAGE_CHANGE' AND e.occurred_at <= s.created_at + interval '14 days'
        """,
        ACME,
    )
    return int(
        fetch(
            database,
            "SELECT count(*) FROM lead WHERE workspace_id = $1 AND name LIKE 'drift copy of %'",
            ACME,
        )[0][0]
    )


def test_a_shifted_budget_is_major_drift_while_the_rest_stays_stable(
    shifted_copies: int, model_id: str, admin: Persona
) -> None:
    model = admin.execute(DRIFT, id=model_id, window=30)["model"]
    report = model["drift"]
    assert report["currentRows"] == shifted_copies > 500
    assert report["referenceRows"] == model["trainingSamples"]
    assert report["referenceRebuilt"] is False  # stored when the version was registered
    psi = {f["feature"]: f for f in report["features"]}
    assert psi["log_budget"]["psi"] > 0.25 and psi["log_budget"]["band"] == "MAJOR"
    untouched = {k: v["psi"] for k, v in psi.items() if k != "log_budget" and not v["trending"]}
    assert len(untouched) == len(FEATURES) - 3
    assert all(v < 0.1 for v in untouched.values()), untouched
    # the agent's record to date grows between training and now whatever else happens
    trending = {k for k, v in psi.items() if v["trending"]}
    assert trending == {"agent_closed_before", "agent_win_rate"}
    assert report["overallDrift"] == psi["log_budget"]["psi"] and report["band"] == "MAJOR"
    # the version's performance tells the same drift (the seed's driftScore)
    score = admin.execute(
        "query Score($id: ID!) { model(id: $id) { performance { driftScore } } }", id=model_id
    )["model"]["performance"]["driftScore"]
    assert score == pytest.approx(report["overallDrift"])
    assert report["meanDrift"] == pytest.approx(
        np.mean([psi["log_budget"]["psi"], *untouched.values()])
    )
    retrain = [r for r in report["recommendations"] if r["type"] == "RETRAINING"]
    assert len(retrain) == 1 and "log_budget" in retrain[0]["reason"]
    assert all("agent_" not in r["reason"] for r in report["recommendations"])
    assert psi["log_budget"]["currentMissingRate"] == pytest.approx(
        psi["log_budget"]["referenceMissingRate"], abs=0.03
    )


def test_a_version_without_a_reference_gets_it_rebuilt_from_its_training_leads(
    shifted_copies: int, model_id: str, admin: Persona, database: str
) -> None:
    stored = admin.execute(DRIFT, id=model_id, window=30)["model"]["drift"]
    fetch(database, "UPDATE ml_model SET reference = '{}' WHERE id = $1", int(model_id))
    rebuilt = admin.execute(DRIFT, id=model_id, window=30)["model"]["drift"]
    assert rebuilt["referenceRebuilt"] is True
    assert rebuilt["referenceRows"] == stored["referenceRows"]
    assert {f["feature"]: f["psi"] for f in rebuilt["features"]} == pytest.approx(
        {f["feature"]: f["psi"] for f in stored["features"]}, abs=1e-9
    )
    # stored once: the next read uses it
    again = admin.execute(DRIFT, id=model_id, window=30)["model"]["drift"]
    assert again["referenceRebuilt"] is False


def test_drift_refusals(model_id: str, admin: Persona, globex: Persona) -> None:
    error = admin.error(DRIFT, id=model_id, window=0)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "windowDays" in error["extensions"]["details"]["fields"]
    assert admin.error(DRIFT, id="987654", window=30)["extensions"]["code"] == "MODEL_NOT_FOUND"
    assert globex.error(DRIFT, id=model_id, window=30)["extensions"]["code"] == "MODEL_NOT_FOUND"


def test_concept_drift_is_the_auc_on_outcomes_known_since_training(
    shifted_copies: int, model_id: str, admin: Persona, database: str
) -> None:
    # an older version: pretend it was trained 90 days earlier, so 90 days of leads have
    # become labelled since
    fetch(
        database,
        "UPDATE ml_model SET trained_at = trained_at - interval '90 days' WHERE id = $1",
        int(model_id),
    )
    report = admin.execute(DRIFT, id=model_id, window=30)["model"]["drift"]
    concept = report["conceptDrift"]
    rows = fetch(
        database,
        "SELECT l.id, l.stage = 'WON' AS won FROM lead l, ml_model m "
        "WHERE m.id = $2 AND l.workspace_id = $1 AND l.stage IN ('WON', 'LOST') "
        "AND l.created_at > m.trained_at - interval '180 days' "
        "AND l.created_at <= now() - interval '180 days' ORDER BY l.id",
        ACME,
        int(model_id),
    )
    assert concept["samples"] == len(rows) > 100
    labels = np.array([r["won"] for r in rows])
    assert concept["conversions"] == int(labels.sum()) > 0
    p = probabilities(database, model_id, [r["id"] for r in rows])
    ranks = rankdata([p[r["id"]] for r in rows])
    positives, negatives = int(labels.sum()), int((~labels).sum())
    auc = (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    assert concept["recentAuc"] == pytest.approx(auc, abs=1e-9)
    test_auc = fetch(
        database,
        "SELECT (metrics -> 'test' ->> 'auc')::float FROM ml_model WHERE id = $1",
        int(model_id),
    )[0][0]
    assert concept["testAuc"] == pytest.approx(test_auc)
    assert concept["decay"] == concept["score"] == pytest.approx(test_auc - auc)
    assert concept["confidence"] == pytest.approx(1 - 1 / math.sqrt(len(rows)))
    decayed = [r for r in report["recommendations"] if "recent outcomes" in r["reason"]]
    assert bool(decayed) == (test_auc - auc > 0.05)  # the ML config's default alert drop


def test_each_lead_is_explained_by_the_version_serving_it(
    model_id: str, admin: Persona, database: str
) -> None:
    """Given a second version running an A/B test on half the leads, each explanation comes
    from the version `ab_bucket(lead_id)` routes the lead to."""
    job = admin.execute(RETRAIN, input={"iterations": 40, "depth": 3})["retrainModel"]
    done = wait_for_job(admin, job["id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done
    second = str(done["result"]["modelId"])
    champion = str(
        fetch(
            database,
            "SELECT id FROM ml_model WHERE workspace_id = $1 AND alias = 'champion'",
            ACME,
        )[0][0]
    )
    challenger = second if champion != second else model_id
    fetch(
        database,
        "UPDATE ml_model SET alias = 'challenger', traffic_percent = 50, ab_ends_at = NULL "
        "WHERE id = $1",
        int(challenger),
    )
    nodes = explained_page(admin, 60)
    ids = [int(n["id"]) for n in nodes]
    expected = {
        champion: probabilities(database, champion, ids),
        challenger: probabilities(database, challenger, ids),
    }
    served = {champion: 0, challenger: 0}
    for node in nodes:
        lead_id = int(node["id"])
        e = node["explanation"]
        routed = challenger if ab_bucket(lead_id) < 50 else champion
        assert e["modelId"] == routed
        served[routed] += 1
        p = expected[routed][lead_id]
        total = e["expectedValue"] + sum(c["shap"] for c in e["contributions"])
        assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
    assert served[champion] > 10 and served[challenger] > 10
