"""Model drift: its types and the resolver `MlModel.drift(windowDays)` delegates to."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Self

import strawberry

from ml import drift, registry
from ml.market import confidence
from models.ml_models import load_config
from resolvers.context import Info
from resolvers.ml_explain import FeatureKind


@strawberry.enum(description="PSI bands: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major")
class DriftBand(Enum):
    STABLE = "STABLE"
    MODERATE = "MODERATE"
    MAJOR = "MAJOR"


def _band(value: str | None) -> DriftBand | None:
    return None if value is None else DriftBand(value)


@strawberry.type
class FeatureDrift:
    feature: str
    type: FeatureKind
    psi: float | None = strawberry.field(description="null: no recent lead has a value")
    band: DriftBand | None
    reference_missing_rate: float = strawberry.field(description="Share of training leads")
    current_missing_rate: float | None = strawberry.field(description="Share of recent leads")
    trending: bool = strawberry.field(
        description="The agent's record to date: it drifts as the business ages by "
        "construction, so it is left out of overallDrift and the recommendations"
    )


@strawberry.type(description="Performance decay: AUC on outcomes that became known since training")
class ConceptDrift:
    test_auc: float | None
    recent_auc: float | None = strawberry.field(
        description="null until the recent outcomes hold both a conversion and a loss"
    )
    decay: float | None = strawberry.field(description="testAuc - recentAuc")
    score: float | None = strawberry.field(description="The seed's name for decay")
    confidence: float = strawberry.field(
        description="How far recentAuc can be trusted: 1 - 1/sqrt(samples), 0 without any"
    )
    samples: int = strawberry.field(description="Leads labelled since training")
    conversions: int
    since: datetime = strawberry.field(
        description="Leads created after this were not labelled when the model trained"
    )
    detected_at: datetime | None = strawberry.field(
        description="When the server's hourly drift measurement first found the decay above "
        "alertThresholds.accuracyDrop, in its unbroken run up to the newest measurement; null "
        "when the newest is not above it (or none was taken)"
    )


@strawberry.type
class DriftRecommendation:
    type: str = strawberry.field(description="RETRAINING, MONITORING or DATA_QUALITY")
    priority: str = strawberry.field(description="HIGH, MEDIUM or LOW")
    reason: str
    suggested_action: str


@strawberry.type(
    description="Data drift (PSI per feature against the training reference) and concept drift"
)
class ModelDrift:
    window_days: int
    window_start: datetime = strawberry.field(
        description="The recent leads: created in (windowStart, windowEnd]; windowEnd is "
        "14 days ago so that every one has its full engagement window"
    )
    window_end: datetime
    reference_rows: int = strawberry.field(description="Training leads in the reference")
    current_rows: int
    overall_drift: float | None = strawberry.field(
        description="The largest PSI of the features not trending"
    )
    mean_drift: float | None = strawberry.field(description="Mean PSI of the features not trending")
    band: DriftBand | None = strawberry.field(description="Band of overallDrift")
    features: list[FeatureDrift] = strawberry.field(description="Largest PSI first")
    concept_drift: ConceptDrift
    recommendations: list[DriftRecommendation]
    reference_rebuilt: bool = strawberry.field(
        description="The version had no stored reference: it was rebuilt from the leads "
        "labelled at its training time (and stored)"
    )

    @classmethod
    def from_domain(cls, r: drift.DriftReport, detected_at: datetime | None) -> Self:
        ranked = sorted(
            r.features, key=lambda f: (-(f.psi if f.psi is not None else -1), f.feature)
        )
        c = r.concept
        return cls(
            window_days=r.window_days,
            window_start=r.window_start,
            window_end=r.window_end,
            reference_rows=r.reference_rows,
            current_rows=r.current_rows,
            overall_drift=r.max_psi,
            mean_drift=r.mean_psi,
            band=_band(drift.band(r.max_psi)),
            features=[
                FeatureDrift(
                    feature=f.feature,
                    type=FeatureKind(f.kind),
                    psi=f.psi,
                    band=_band(f.band),
                    reference_missing_rate=f.reference_missing,
                    current_missing_rate=f.current_missing,
                    trending=f.trending,
                )
                for f in ranked
            ],
            concept_drift=ConceptDrift(
                test_auc=c.test_auc,
                recent_auc=c.recent_auc,
                decay=c.decay,
                score=c.decay,
                confidence=confidence(c.samples),
                samples=c.samples,
                conversions=c.conversions,
                since=c.since,
                detected_at=detected_at,
            ),
            recommendations=[
                DriftRecommendation(
                    type=x.type,
                    priority=x.priority,
                    reason=x.reason,
                    suggested_action=x.suggested_action,
                )
                for x in r.recommendations
            ],
            reference_rebuilt=r.reference_rebuilt,
        )


async def model_drift(info: Info, workspace_id: int, model_id: int, window_days: int) -> ModelDrift:
    """`MlModel.drift(windowDays)`."""
    scope = await info.context.scope(str(workspace_id))
    db = info.context.db
    async with db.session() as session:
        model = await registry.get_model(session, scope, model_id)
        threshold = (await load_config(session, workspace_id)).alert_accuracy_drop
        detected = await drift.concept_detected_at(session, workspace_id, model_id, threshold)
    report = await drift.drift_report(db, model, window_days=window_days)
    return ModelDrift.from_domain(report, detected)
