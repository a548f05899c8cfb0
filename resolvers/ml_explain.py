"""Explanations (SHAP), feature importance, feature metadata and conversion predictions:
their types, `features` / `predictConversion`, and the resolvers that `Lead.explanation` and
`MlModel.featureImportance` delegate to."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Self

import strawberry

from ml import conversion, explain, registry
from ml.feature_stats import FeatureStat, feature_stats
from ml.features import feature_frame
from models import leads
from models.errors import BadUserInput, ModelNotFound, NotFound
from models.scope import Scope
from resolvers.context import Info
from resolvers.ids import parse_id

MAX_LEAD_IDS = conversion.MAX_IDS


@strawberry.type(description="One feature's part in a lead's score")
class FeatureContribution:
    feature: str
    value: str = strawberry.field(description="The lead's value of the feature, readable")
    shap: float = strawberry.field(
        description="SHAP value in log-odds: positive raises the conversion odds"
    )

    @classmethod
    def from_domain(cls, c: explain.Contribution) -> Self:
        return cls(feature=c.feature, value=c.value, shap=c.shap)


@strawberry.type(description="Why the serving model scores a lead as it does (CatBoost SHAP)")
class LeadExplanation:
    model_id: strawberry.ID
    model_version: str
    expected_value: float = strawberry.field(
        description="The model's base log-odds; plus the sum of every `shap` it is the "
        "lead's log-odds, log(p / (1 - p))"
    )
    probability: float
    contributions: list[FeatureContribution] = strawberry.field(description="Model order")
    top_positive: list[FeatureContribution] = strawberry.field(
        description="The 3 largest positive contributions, largest first"
    )
    top_negative: list[FeatureContribution] = strawberry.field(
        description="The 3 largest negative contributions, most negative first"
    )
    decision_factors: list[str] = strawberry.field(
        description="The top contributions as sentences, strongest first"
    )

    @classmethod
    def from_domain(cls, e: explain.Explanation) -> Self:
        return cls(
            model_id=strawberry.ID(str(e.model_id)),
            model_version=str(e.model_version),
            expected_value=e.expected_value,
            probability=e.probability,
            contributions=[FeatureContribution.from_domain(c) for c in e.contributions],
            top_positive=[FeatureContribution.from_domain(c) for c in e.top_positive],
            top_negative=[FeatureContribution.from_domain(c) for c in e.top_negative],
            decision_factors=e.decision_factors(),
        )


async def lead_explanation(info: Info, scope: Scope, lead: leads.Lead) -> LeadExplanation | None:
    """`Lead.explanation`: batched per request through the loader."""
    found = await info.context.loaders(scope).explanation_by_lead.load(lead)
    return LeadExplanation.from_domain(found) if found is not None else None


@strawberry.type(description="One lead's SHAP value of a feature")
class LocalImportance:
    lead_id: strawberry.ID
    shap: float = strawberry.field(description="Signed, in log-odds")
    share: float = strawberry.field(
        description="|shap| over the sum of the lead's |shap| values (0..1, summing to 1)"
    )


@strawberry.type
class FeatureImportance:
    feature: str
    importance: float = strawberry.field(description="CatBoost's global share, summing to 100")
    shap_mean: float | None = strawberry.field(
        description="Mean |SHAP| over the requested leads (log-odds); null without leadIds"
    )
    local: list[LocalImportance] = strawberry.field(
        description="Per requested lead, in request order; empty without leadIds"
    )


async def visible_leads(info: Info, scope: Scope, raw_ids: list[strawberry.ID]) -> list[leads.Lead]:
    """The named leads in request order, deduplicated; more than MAX_LEAD_IDS is
    BAD_USER_INPUT, any the viewer cannot see (e.g. another workspace's) NOT_FOUND."""
    if not raw_ids or len(raw_ids) > MAX_LEAD_IDS:
        raise BadUserInput("Invalid input", fields={"leadIds": f"between 1 and {MAX_LEAD_IDS} ids"})
    ids = list(dict.fromkeys(parse_id(i, "leadIds") for i in raw_ids))
    async with info.context.db.session() as session:
        rows = {row.id: row for row in await leads.leads_by_ids(session, scope, ids)}
    missing = [str(i) for i in ids if i not in rows]
    if missing:
        raise NotFound("Leads not found", leadIds=missing)
    return [rows[i] for i in ids]


async def feature_importance(
    info: Info,
    workspace_id: int,
    model_id: int,
    importance: dict[str, float],
    lead_ids: list[strawberry.ID] | None,
) -> list[FeatureImportance]:
    """`MlModel.featureImportance(leadIds)`: global, and with leadIds local SHAP by this version."""
    ranked = sorted(importance.items(), key=lambda item: (-item[1], item[0]))
    if lead_ids is None:
        return [
            FeatureImportance(feature=f, importance=v, shap_mean=None, local=[]) for f, v in ranked
        ]
    scope = await info.context.scope(str(workspace_id))
    rows = await visible_leads(info, scope, lead_ids)
    async with info.context.db.session() as session:
        model = await registry.get_model(session, scope, model_id)
    found = await explain.explain_leads(info.context.db, scope.workspace_id, rows, model=model)
    explanations = [found[r.id] for r in rows if r.id in found]
    summary = explain.shap_summary(explanations)
    local: dict[str, list[LocalImportance]] = {f: [] for f, _ in ranked}
    for e in explanations:
        total = sum(abs(c.shap) for c in e.contributions) or 1.0
        for c in e.contributions:
            local.setdefault(c.feature, []).append(
                LocalImportance(
                    lead_id=strawberry.ID(str(e.lead_id)), shap=c.shap, share=abs(c.shap) / total
                )
            )
    return [
        FeatureImportance(feature=f, importance=v, shap_mean=summary.get(f), local=local[f])
        for f, v in ranked
    ]


@strawberry.enum
class FeatureKind(Enum):
    NUMERIC = "NUMERIC"
    CATEGORICAL = "CATEGORICAL"


@strawberry.type
class Range:
    min: float
    max: float
    mean: float
    std: float | None
    skewness: float | None = strawberry.field(
        default=None,
        description="Fisher-Pearson (biased); > 0: a long tail of high values; null when all "
        "values are equal",
    )


@strawberry.type
class CategoryShare:
    value: str
    count: int
    share: float = strawberry.field(description="0..1 of the workspace's leads")


@strawberry.type(description="Equal-width bin of a numeric feature: low <= x < high")
class HistogramBin:
    low: float
    high: float
    count: int
    share: float


@strawberry.type(description="A model feature over the workspace's current leads")
class FeatureInfo:
    name: str
    type: FeatureKind
    description: str
    importance: float | None = strawberry.field(
        description="The champion's global importance (sums to 100); null without a champion"
    )
    missing_rate: float = strawberry.field(description="0..1")
    range: Range | None = strawberry.field(description="Numeric features")
    categories: list[CategoryShare] = strawberry.field(
        description="Categorical features: the 20 most frequent values"
    )
    distinct_values: int = strawberry.field(description="Categorical features; 0 for numeric")
    distribution: list[HistogramBin] = strawberry.field(
        description="Numeric features: 10 equal-width bins from min to max"
    )
    leads: int = strawberry.field(description="Leads the numbers are computed over")

    @classmethod
    def from_domain(cls, s: FeatureStat) -> Self:
        value_range = None
        if s.minimum is not None and s.maximum is not None and s.mean is not None:
            value_range = Range(
                min=s.minimum, max=s.maximum, mean=s.mean, std=s.std, skewness=s.skewness
            )
        return cls(
            name=s.name,
            type=FeatureKind(s.kind),
            description=s.description,
            importance=s.importance,
            missing_rate=s.missing_rate,
            range=value_range,
            categories=[
                CategoryShare(value=c.value, count=c.count, share=c.share) for c in s.categories
            ],
            distinct_values=s.distinct,
            distribution=[
                HistogramBin(low=b.low, high=b.high, count=b.count, share=b.share)
                for b in s.histogram
            ],
            leads=s.rows,
        )


@strawberry.enum(description="How far ahead a conversion prediction looks")
class ConversionTimeframe(Enum):
    DAYS_30 = 30
    DAYS_60 = 60
    DAYS_90 = 90


@strawberry.type
class ConversionPrediction:
    lead_id: strawberry.ID
    model_id: strawberry.ID
    model_version: str
    probability: float = strawberry.field(description="Of converting at all (the serving model)")
    confidence: float = strawberry.field(description="2 * |probability - 0.5|, 0..1")
    estimated_value: float | None = strawberry.field(
        description="Deal value in USD: the lead's own value, else budget times the median "
        "value/budget of the workspace's won deals, else the median won deal"
    )
    expected_days_to_conversion: float | None = strawberry.field(
        description="From now: median days to WON of similar won leads (same timeline) that "
        "were still open at this lead's age, minus its age; null when none was"
    )
    probability_within_timeframe: float = strawberry.field(
        description="probability times the share of those similar won leads that won within "
        "the timeframe from this lead's age"
    )
    key_factors: list[str] = strawberry.field(description="Top SHAP factors as sentences")
    factors: list[FeatureContribution] = strawberry.field(
        description="The top positive and negative SHAP contributions, strongest first"
    )

    @classmethod
    def from_domain(cls, p: conversion.ConversionPrediction) -> Self:
        e = p.explanation
        top = sorted(e.top_positive + e.top_negative, key=lambda c: (-abs(c.shap), c.feature))
        return cls(
            lead_id=strawberry.ID(str(p.lead_id)),
            model_id=strawberry.ID(str(e.model_id)),
            model_version=str(e.model_version),
            probability=p.probability,
            confidence=p.confidence,
            estimated_value=p.estimated_value,
            expected_days_to_conversion=p.expected_days,
            probability_within_timeframe=p.within_timeframe,
            key_factors=e.decision_factors(),
            factors=[FeatureContribution.from_domain(c) for c in top],
        )


@strawberry.type
class MlExplainQueries:
    @strawberry.field(description="The model features over the workspace's current leads")
    async def features(
        self, info: Info, workspace_id: strawberry.ID | None = None
    ) -> list[FeatureInfo]:
        scope = await info.context.scope(workspace_id)
        db = info.context.db
        async with db.session() as session:
            champion = await registry.champion(session, scope.workspace_id)
        frame = await feature_frame(db, scope.workspace_id)
        importance = None
        if champion is not None:
            importance = {k: float(v) for k, v in champion.feature_importance.items()}
        stats = await asyncio.to_thread(feature_stats, frame, importance)
        return [FeatureInfo.from_domain(s) for s in stats]

    @strawberry.field(
        description="Conversion predictions by the serving model (champion, or the "
        "challenger for its A/B share) for 1 to 100 leads"
    )
    async def predict_conversion(
        self,
        info: Info,
        lead_ids: list[strawberry.ID],
        timeframe: ConversionTimeframe = ConversionTimeframe.DAYS_30,
        workspace_id: strawberry.ID | None = None,
    ) -> list[ConversionPrediction]:
        scope = await info.context.scope(workspace_id)
        rows = await visible_leads(info, scope, lead_ids)
        db = info.context.db
        found = await explain.explain_leads(db, scope.workspace_id, rows)
        if not found:
            raise ModelNotFound("No active model to predict with: train one first")
        won = await conversion.won_leads(db, scope.workspace_id)
        predictions = await asyncio.to_thread(
            conversion.predict_all, rows, found, won, timeframe.value
        )
        return [ConversionPrediction.from_domain(p) for p in predictions]
