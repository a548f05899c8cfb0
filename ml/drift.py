"""Data drift (PSI per feature against the training reference) and concept drift.

Reference (stored in `ml_model.reference` when a version is registered): numeric features
get the training frame's inner decile edges and the share of rows per bin, categoricals the
share per value (`missing` is a value of its own), and each feature its missing rate.
PSI = sum over bins (cur - ref) * ln(cur / ref), an empty bin counting EPSILON; nulls of a
numeric feature are left out of its bins and tracked as the missing rate instead.
Bands (DESIGN.md): < 0.1 stable, 0.1-0.25 moderate, > 0.25 major.

TRENDING features summarise the agent's record up to the lead's creation: counts only grow
and win rates settle as the business ages, so a recent window always differs from training
data that is at least 180 days older (measured on the seeded data: PSI above 2 with nothing
changed). They are reported, flagged, and left out of the overall drift and the
recommendations, as drift monitors do with tenure-like features.

The current sample: leads created in the `window` days before now - 14 days, so that every
one has its full 14-day engagement window (younger leads would look less engaged only
because they are young). Concept drift: the model's AUC on the leads whose outcome became
known since training (labelled now, not labelled at training time) against its test AUC.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ml import registry
from ml.features import CATEGORICAL, LABEL_AGE, MISSING, NUMERIC, WINDOW, feature_frame
from ml.scoring import score_frame
from ml.train import auc
from models.db import Database
from models.errors import BadUserInput
from models.ml_models import MlDriftCheck, MlModel, ModelStatus, latest_check, load_config

STABLE, MAJOR = 0.1, 0.25
log = logging.getLogger(__name__)

EPSILON = 1e-4
DECILES = [q / 10 for q in range(1, 10)]
MAX_WINDOW_DAYS = 365
REFERENCE_VERSION = 1
TRENDING = frozenset({"agent_closed_before", "agent_win_rate"})
# a missing rate moving by more than this (share of leads) asks for a data-quality check
MISSING_CHANGE = 0.05


def band(psi: float | None) -> str | None:
    if psi is None:
        return None
    return "STABLE" if psi < STABLE else "MODERATE" if psi <= MAJOR else "MAJOR"


def _bins(edges: list[float], values: pl.Series) -> np.ndarray:
    """Share of the non-null `values` per bin: bin i holds edges[i-1] <= x < edges[i]."""
    present = values.drop_nulls().cast(pl.Float64)
    counts = np.zeros(len(edges) + 1)
    if present.len():
        index = pl.Series(edges, dtype=pl.Float64).search_sorted(present, side="right")
        counts += np.bincount(index.to_numpy(), minlength=len(edges) + 1)
        counts /= present.len()
    return counts


def build_reference(frame: pl.DataFrame) -> dict[str, Any]:
    """The drift reference of a (training) feature frame; JSON-ready."""
    n = frame.height
    numeric: dict[str, Any] = {}
    for name in NUMERIC:
        values = frame[name].cast(pl.Float64)
        present = values.drop_nulls()
        edges: list[float] = []
        if present.len():
            quantiles = [present.quantile(q, interpolation="linear") for q in DECILES]
            edges = sorted({float(q) for q in quantiles if q is not None})
        numeric[name] = {
            "edges": edges,
            "shares": _bins(edges, values).tolist(),
            "missing": values.null_count() / n if n else 0.0,
        }
    categorical: dict[str, Any] = {}
    for name in CATEGORICAL:
        categorical[name] = {
            "shares": _category_shares(frame[name]),
            "missing": float((frame[name] == MISSING).sum()) / n if n else 0.0,
        }
    return {"version": REFERENCE_VERSION, "rows": n, "numeric": numeric, "categorical": categorical}


def _category_shares(values: pl.Series) -> dict[str, float]:
    if values.len() == 0:
        return {}
    counts = values.value_counts()
    total = values.len()
    return {str(v): c / total for v, c in counts.iter_rows()}


def psi(reference: list[float], current: list[float]) -> float:
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        r, c = max(r, EPSILON), max(c, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    kind: str  # NUMERIC or CATEGORICAL
    psi: float | None  # None: no current rows with a value
    reference_missing: float
    current_missing: float | None

    @property
    def band(self) -> str | None:
        return band(self.psi)

    @property
    def trending(self) -> bool:
        return self.feature in TRENDING


def feature_drift(reference: dict[str, Any], frame: pl.DataFrame) -> list[FeatureDrift]:
    """PSI of every referenced feature, `frame` (the current sample) against `reference`."""
    n = frame.height
    found = []
    for name, ref in reference["numeric"].items():
        values = frame[name].cast(pl.Float64)
        present = n - values.null_count()
        value = psi(ref["shares"], _bins(ref["edges"], values).tolist()) if present else None
        current_missing = values.null_count() / n if n else None
        found.append(FeatureDrift(name, "NUMERIC", value, ref["missing"], current_missing))
    for name, ref in reference["categorical"].items():
        current = _category_shares(frame[name])
        keys = sorted(set(ref["shares"]) | set(current))
        value = (
            psi([ref["shares"].get(k, 0.0) for k in keys], [current.get(k, 0.0) for k in keys])
            if n
            else None
        )
        current_missing = current.get(MISSING, 0.0) if n else None
        found.append(FeatureDrift(name, "CATEGORICAL", value, ref["missing"], current_missing))
    return found


@dataclass(frozen=True, slots=True)
class ConceptDrift:
    test_auc: float | None
    recent_auc: float | None  # None: fewer than two classes among the recent outcomes
    samples: int
    conversions: int
    since: datetime  # leads created after this had no known outcome at training time

    @property
    def decay(self) -> float | None:
        if self.test_auc is None or self.recent_auc is None:
            return None
        return self.test_auc - self.recent_auc


@dataclass(frozen=True, slots=True)
class Recommendation:
    type: str  # RETRAINING, MONITORING, DATA_QUALITY
    priority: str  # HIGH, MEDIUM, LOW
    reason: str
    suggested_action: str


@dataclass(slots=True)
class DriftReport:
    model_id: int
    window_days: int
    window_start: datetime
    window_end: datetime
    reference_rows: int
    current_rows: int
    features: list[FeatureDrift]
    concept: ConceptDrift
    recommendations: list[Recommendation] = field(default_factory=list)
    reference_rebuilt: bool = False

    @property
    def max_psi(self) -> float | None:
        values = [f.psi for f in self.features if f.psi is not None and not f.trending]
        return max(values) if values else None

    @property
    def worst(self) -> FeatureDrift | None:
        """The feature with the highest PSI (of those maxPsi counts)."""
        counted = [f for f in self.features if f.psi is not None and not f.trending]
        return max(counted, key=lambda f: f.psi or 0.0) if counted else None

    @property
    def mean_psi(self) -> float | None:
        values = [f.psi for f in self.features if f.psi is not None and not f.trending]
        return sum(values) / len(values) if values else None


def recommendations(
    features: list[FeatureDrift],
    concept: ConceptDrift,
    *,
    alert_psi: float,
    alert_decay: float,
    missing_change: float,
) -> list[Recommendation]:
    """What to do, from the bands and the configured alert thresholds only."""
    found: list[Recommendation] = []
    features = [f for f in features if not f.trending]
    over = sorted(
        (f for f in features if f.psi is not None and f.psi > alert_psi),
        key=lambda f: -(f.psi or 0),
    )
    if over:
        names = ", ".join(f"{f.feature} (PSI {f.psi:.2f})" for f in over)
        found.append(
            Recommendation(
                "RETRAINING",
                "HIGH",
                f"Drift above {alert_psi:g} in {names}",
                "Retrain the model on recent leads and compare it with the champion",
            )
        )
    moderate = [f for f in features if f.band == "MODERATE" and f not in over]
    if moderate:
        names = ", ".join(f"{f.feature} (PSI {f.psi:.2f})" for f in moderate)
        found.append(
            Recommendation(
                "MONITORING",
                "MEDIUM",
                f"Moderate drift in {names}",
                "Watch these features; retrain if the drift keeps growing",
            )
        )
    for f in features:
        if f.current_missing is not None and abs(f.current_missing - f.reference_missing) > (
            missing_change
        ):
            found.append(
                Recommendation(
                    "DATA_QUALITY",
                    "MEDIUM",
                    f"{f.feature} is missing in {100 * f.current_missing:.0f}% of recent leads "
                    f"against {100 * f.reference_missing:.0f}% in training",
                    "Check the lead capture for this field",
                )
            )
    decay = concept.decay
    if decay is not None and decay > alert_decay:
        found.append(
            Recommendation(
                "RETRAINING",
                "HIGH",
                f"AUC on {concept.samples} recent outcomes is {concept.recent_auc:.3f}, "
                f"{decay:.3f} below the test AUC {concept.test_auc:.3f}",
                "Retrain the model: the relation between features and outcomes has changed",
            )
        )
    return found


async def _now(db: Database) -> datetime:
    async with db.session() as session:
        value: datetime = (await session.execute(sa.text("SELECT now()"))).scalar_one()
    return value


async def _lead_ids_created(
    db: Database, workspace_id: int, after: datetime, until: datetime
) -> list[int]:
    async with db.session() as session:
        rows = await session.execute(
            sa.text(
                "SELECT id FROM lead WHERE workspace_id = :ws AND created_at > :after "
                "AND created_at <= :until ORDER BY id"
            ),
            {"ws": workspace_id, "after": after, "until": until},
        )
        return [int(r[0]) for r in rows]


async def reference_of(db: Database, model: MlModel) -> tuple[dict[str, Any], bool]:
    """(reference, rebuilt): the stored one, or for a version registered before references
    were stored, rebuilt from its training data (the leads labelled at its training time)
    and stored once, so later reads are cheap."""
    if model.reference:
        return model.reference, False
    trained_at = model.trained_at or model.created_at
    frame = await feature_frame(db, model.workspace_id, labelled_only=True, as_of=trained_at)
    reference = await asyncio.to_thread(build_reference, frame)
    async with db.transaction() as session:
        await session.execute(
            sa.text(
                "UPDATE ml_model SET reference = CAST(:reference AS jsonb) "
                "WHERE workspace_id = :ws AND id = :id AND reference = '{}'::jsonb"
            ),
            {"reference": json.dumps(reference), "ws": model.workspace_id, "id": model.id},
        )
    return reference, True


async def drift_report(db: Database, model: MlModel, *, window_days: int = 30) -> DriftReport:
    """Data and concept drift of `model` (a registry row, artifact not needed) over the leads
    of the last `window_days` (see the module docstring)."""
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise BadUserInput(
            "Invalid input", fields={"windowDays": f"between 1 and {MAX_WINDOW_DAYS}"}
        )
    assert model.id is not None
    ws = model.workspace_id
    classifier = await registry.load_classifier(
        db, model.workspace_id, model.id or 0, model.version
    )
    reference, rebuilt = await reference_of(db, model)
    now = await _now(db)
    end = now - WINDOW
    start = end - timedelta(days=window_days)
    trained_at = model.trained_at or model.created_at
    since = trained_at - LABEL_AGE
    current_ids = await _lead_ids_created(db, ws, start, end)
    recent_ids = await _lead_ids_created(db, ws, since, now - LABEL_AGE)
    current = await feature_frame(db, ws, lead_ids=current_ids, as_of=now)
    recent = await feature_frame(db, ws, lead_ids=recent_ids, as_of=now)
    recent = recent.filter(pl.col("label").is_not_null())
    async with db.session() as session:
        config = await load_config(session, ws)

    def compute() -> tuple[list[FeatureDrift], ConceptDrift]:
        features = feature_drift(reference, current)
        labels = recent["label"].to_numpy().astype(bool)
        recent_auc = None
        if recent.height:
            scored = score_frame(classifier, recent)
            value = auc(labels, scored["probability"].to_numpy())
            recent_auc = None if value != value else value
        test = model.metrics.get("test", {}).get("auc")
        concept = ConceptDrift(
            test_auc=None if test is None or test != test else float(test),
            recent_auc=recent_auc,
            samples=recent.height,
            conversions=int(labels.sum()),
            since=since,
        )
        return features, concept

    features, concept = await asyncio.to_thread(compute)
    return DriftReport(
        model_id=model.id,
        window_days=window_days,
        window_start=start,
        window_end=end,
        reference_rows=int(reference.get("rows", 0)),
        current_rows=current.height,
        features=features,
        concept=concept,
        recommendations=recommendations(
            features,
            concept,
            alert_psi=config.alert_drift_psi,
            alert_decay=config.alert_accuracy_drop,
            missing_change=MISSING_CHANGE,
        ),
        reference_rebuilt=rebuilt,
    )


# ---- the ML check's drift measurements (ml/watch.py) ---------------------------------------------

CHECK_EVERY = timedelta(hours=1)  # a serving version's drift is measured at most this often
CHECK_WINDOW_DAYS = 30


async def record_check(db: Database, model: MlModel) -> MlDriftCheck:
    """Measure the version's drift over the last CHECK_WINDOW_DAYS and keep it."""
    assert model.id is not None
    report = await drift_report(db, model, window_days=CHECK_WINDOW_DAYS)
    worst = report.worst
    check = MlDriftCheck(
        workspace_id=model.workspace_id,
        model_id=model.id,
        checked_at=report.window_end + WINDOW,  # the report's now
        max_psi=report.max_psi,
        feature=None if worst is None else worst.feature,
        current_rows=report.current_rows,
        concept_decay=report.concept.decay,
    )
    async with db.transaction() as session:
        session.add(check)
    return check


async def check_due(db: Database, now: datetime | None = None) -> list[MlDriftCheck]:
    """Measure every ACTIVE version of the workspaces with monitoring.driftDetection on whose
    newest measurement is older than CHECK_EVERY."""
    now = now or await _now(db)
    async with db.session() as session:
        serving = list(
            (
                await session.execute(
                    select(MlModel)
                    .where(col(MlModel.status) == ModelStatus.ACTIVE)
                    .options(registry._WITHOUT_ARTIFACT)
                    .order_by(col(MlModel.workspace_id), col(MlModel.id))
                )
            ).scalars()
        )
        due = []
        for model in serving:
            assert model.id is not None
            if not (await load_config(session, model.workspace_id)).drift_detection:
                continue
            last = await latest_check(session, model.workspace_id, model.id)
            if last is None or last.checked_at <= now - CHECK_EVERY:
                due.append(model)
    found = []
    for model in due:  # one version's failure does not stop the others'
        try:
            found.append(await record_check(db, model))
        except Exception:
            log.exception("drift measurement of model %s failed", model.id)
    return found


def detected_at(checks: list[tuple[datetime, float | None]], threshold: float) -> datetime | None:
    """When concept drift was detected: of measurements (checked_at, decay), newest first, the
    oldest of the unbroken run of decays above `threshold` that starts with the newest; None
    when the newest is not above it."""
    found = None
    for checked_at, decay in checks:
        if decay is None or decay <= threshold:
            break
        found = checked_at
    return found


async def concept_detected_at(
    session: AsyncSession, workspace_id: int, model_id: int, threshold: float
) -> datetime | None:
    """`detected_at` over the version's stored measurements (the newest 1,000)."""
    rows = await session.execute(
        select(col(MlDriftCheck.checked_at), col(MlDriftCheck.concept_decay))
        .where(
            col(MlDriftCheck.workspace_id) == workspace_id,
            col(MlDriftCheck.model_id) == model_id,
        )
        .order_by(col(MlDriftCheck.checked_at).desc())
        .limit(1000)
    )
    return detected_at([(r[0], r[1]) for r in rows], threshold)
