"""Model comparison report (seed 003 "Model Comparison"): test-split metrics and the serving
latency over a period side by side, the winner per metric and overall, and a recommendation
built from those numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ml.monitoring import BUCKETS, minute_of, quantile
from ml.registry import _WITHOUT_ARTIFACT
from models.errors import ModelNotFound, Validator
from models.ml_models import CHALLENGER, CHAMPION, MlModel
from models.scope import Scope

MIN_MODELS, MAX_MODELS = 2, 10


@dataclass(frozen=True, slots=True)
class Metric:
    slug: str  # the name clients use
    key: str  # its key in a split of `ml_model.metrics`, or in `Serving`
    label: str
    higher_is_better: bool = True
    serving: bool = False  # measured on the version's predictions in the period, not on test


METRICS: dict[str, Metric] = {
    m.slug: m
    for m in (
        Metric("auc", "auc", "AUC"),
        Metric("accuracy", "accuracy", "accuracy"),
        Metric("precision", "precision", "precision"),
        Metric("recall", "recall", "recall"),
        Metric("f1Score", "f1_score", "F1"),
        Metric("liftTopDecile", "lift_top_decile", "top-decile lift"),
        Metric("latency", "p50_ms", "p50 latency (ms)", higher_is_better=False, serving=True),
    )
}

# per model id, its serving measures in the period (`p50_ms`: None without predictions)
Serving = Mapping[int, Mapping[str, float | None]]

# every prediction call of the versions in the window, as one latency histogram per version
_LATENCY = sa.text(
    """
SELECT s.model_id, t.i, sum(t.b) AS calls
FROM ml_prediction_stat s, unnest(s.latency_buckets) WITH ORDINALITY AS t(b, i)
WHERE s.workspace_id = :ws AND s.model_id = ANY(:models) AND s.minute >= :since
  AND s.minute < :until
GROUP BY 1, 2
"""
)


async def serving_measures(
    session: AsyncSession,
    workspace_id: int,
    model_ids: Sequence[int],
    since: datetime,
    until: datetime,
) -> dict[int, dict[str, float | None]]:
    """Each version's p50 prediction latency over [since, until) (the histogram of
    `MlModel.performance`, ml/monitoring.py): one statement."""
    histograms = {i: [0] * BUCKETS for i in model_ids}
    params = {
        "ws": workspace_id,
        "models": list(model_ids),
        "since": minute_of(since),
        "until": until,
    }
    for model_id, index, calls in (await session.execute(_LATENCY, params)).all():
        if 1 <= index <= BUCKETS:
            histograms[int(model_id)][int(index) - 1] += int(calls)
    return {i: {"p50_ms": quantile(h, 0.5)} for i, h in histograms.items()}


@dataclass(slots=True)
class MetricComparison:
    metric: Metric
    # per model, in the order asked: its test-split value (None: not measured)
    values: list[tuple[MlModel, float | None]]
    best: float | None
    winner: MlModel | None  # None when nobody has a value or the best value is shared
    margin: float | None  # best minus the runner-up (how much the winner wins by)


@dataclass(slots=True)
class Comparison:
    models: list[MlModel]
    metrics: list[MetricComparison]
    wins: dict[int, int]  # model id -> metrics won
    winner: MlModel | None
    recommendation: str
    # what to do with the winner: KEEP (it is the champion), PROMOTE (the challenger),
    # AB_TEST (another version, over the champion), DEPLOY (no champion yet); NONE: no winner
    action: str = "NONE"

    @property
    def confidence(self) -> float | None:
        """The share of the compared metrics the winner wins."""
        if self.winner is None or self.winner.id is None or not self.metrics:
            return None
        return self.wins[self.winner.id] / len(self.metrics)


def value_on_test(model: MlModel, metric: Metric) -> float | None:
    value = model.metrics.get("test", {}).get(metric.key)
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def value_of(model: MlModel, metric: Metric, serving: Serving) -> float | None:
    if metric.serving:
        return serving.get(model.id or 0, {}).get(metric.key)
    return value_on_test(model, metric)


def _compare_metric(
    models: Sequence[MlModel], metric: Metric, serving: Serving
) -> MetricComparison:
    values = [(m, value_of(m, metric, serving)) for m in models]
    sign = 1 if metric.higher_is_better else -1
    ranked = sorted((sign * v, i) for i, (_, v) in enumerate(values) if v is not None)
    if not ranked:
        return MetricComparison(metric, values, None, None, None)
    top, top_index = ranked[-1]
    runner_up = ranked[-2][0] if len(ranked) > 1 else None
    shared = runner_up is not None and runner_up == top
    return MetricComparison(
        metric=metric,
        values=values,
        best=sign * top,
        winner=None if shared else values[top_index][0],
        margin=None if runner_up is None else top - runner_up,
    )


def _label(model: MlModel) -> str:
    return f"{model.name} v{model.version}"


def compare(
    models: Sequence[MlModel], metric_slugs: Sequence[str], serving: Serving | None = None
) -> Comparison:
    """The report over already loaded versions and their serving measures (pure). The overall
    winner wins most metrics; ties go to the better first metric, then to the champion, then
    to the older version."""
    serving = serving or {}
    metrics = [_compare_metric(models, METRICS[slug], serving) for slug in metric_slugs]
    wins = {m.id: 0 for m in models if m.id is not None}
    for row in metrics:
        if row.winner is not None and row.winner.id is not None:
            wins[row.winner.id] += 1
    first = metrics[0]

    def rank(model: MlModel) -> tuple[int, float, bool, int]:
        value = value_of(model, first.metric, serving)
        signed = (
            -math.inf if value is None else value * (1 if first.metric.higher_is_better else -1)
        )
        return (wins.get(model.id or 0, 0), signed, model.alias == CHAMPION, -(model.id or 0))

    measured = [m for m in models if value_of(m, first.metric, serving) is not None]
    winner = max(measured, key=rank) if measured else None
    return Comparison(
        models=list(models),
        metrics=metrics,
        wins=wins,
        winner=winner,
        recommendation=_recommendation(models, metrics, wins, winner, serving),
        action=_action(models, winner),
    )


def _action(models: Sequence[MlModel], winner: MlModel | None) -> str:
    if winner is None:
        return "NONE"
    if winner.alias == CHAMPION:
        return "KEEP"
    if winner.alias == CHALLENGER:
        return "PROMOTE"
    return "AB_TEST" if any(m.alias == CHAMPION for m in models) else "DEPLOY"


def _recommendation(
    models: Sequence[MlModel],
    metrics: list[MetricComparison],
    wins: dict[int, int],
    winner: MlModel | None,
    serving: Serving,
) -> str:
    first = metrics[0]
    if winner is None or winner.id is None:
        if first.metric.serving:
            return "No compared model made predictions in the period."
        return "No compared model has test metrics yet: train or wait for the running training."
    value = value_of(winner, first.metric, serving)
    others = [(m, value_of(m, first.metric, serving)) for m in models if m.id != winner.id]
    measured = [(m, v) for m, v in others if v is not None]
    sign = 1 if first.metric.higher_is_better else -1
    versus = ""
    if measured and value is not None:
        runner, runner_value = max(measured, key=lambda item: sign * item[1])
        versus = (
            f" ({first.metric.label} {value:.3f} vs {runner_value:.3f} for {_label(runner)}, "
            f"{value - runner_value:+.3f})"
        )
    won = f"wins {wins[winner.id]} of {len(metrics)} metrics{versus}"
    if winner.alias == CHAMPION:
        return f"Keep {_label(winner)} as champion: it {won}."
    champion = next((m for m in models if m.alias == CHAMPION), None)
    if winner.alias == CHALLENGER:
        return f"Promote the challenger {_label(winner)} (deployModel without abTest): it {won}."
    if champion is not None:
        return (
            f"Deploy {_label(winner)} over the champion {_label(champion)}, A/B testing it "
            f"first on a share of leads: it {won}."
        )
    return f"Deploy {_label(winner)}: it {won}."


async def compare_models(
    session: AsyncSession,
    scope: Scope,
    ids: Sequence[int],
    metric_slugs: Sequence[str] | None,
    *,
    since: datetime,
    until: datetime,
) -> Comparison:
    """Validate, load the workspace's versions `ids` (MODEL_NOT_FOUND names the missing);
    serving metrics (latency) cover their predictions in [since, until)."""
    slugs = list(metric_slugs) if metric_slugs is not None else list(METRICS)
    unknown = [s for s in slugs if s not in METRICS]
    v = Validator()
    v.check(MIN_MODELS <= len(ids) <= MAX_MODELS, "ids", f"{MIN_MODELS} to {MAX_MODELS} ids")
    v.check(len(set(ids)) == len(ids), "ids", "listed twice")
    v.check(bool(slugs), "metrics", "at least one")
    v.check(not unknown, "metrics", f"unknown {unknown}; known: {', '.join(METRICS)}")
    v.check(len(set(slugs)) == len(slugs), "metrics", "listed twice")
    v.raise_if_any("Invalid comparison")
    rows = (
        await session.execute(
            select(MlModel)
            .where(scope.where(MlModel), col(MlModel.id).in_(list(ids)))
            .options(_WITHOUT_ARTIFACT)
        )
    ).scalars()
    by_id = {m.id: m for m in rows}
    missing = [str(i) for i in ids if i not in by_id]
    if missing:
        raise ModelNotFound("Models not found", modelIds=missing)
    serving: Serving = {}
    if any(METRICS[slug].serving for slug in slugs):
        serving = await serving_measures(session, scope.workspace_id, ids, since, until)
    return compare([by_id[i] for i in ids], slugs, serving)
