"""Classification metrics of a scored split: AUC, the decision threshold, metrics at it, lift.

With ~8% of leads converting, a 0.5 cut-off calls almost nobody a converter (precision and
recall near 0), so the threshold is chosen on the validation split (the one maximising F1)
and the other splits are measured at that same threshold.
"""

from __future__ import annotations

import math

import numpy as np

# the cut-off when the validation split cannot choose one (a single class in it)
DEFAULT_THRESHOLD = 0.5
TOP_DECILE = 0.1


def auc(actual: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties sharing their average rank."""
    actual = actual.astype(bool)
    positives = int(actual.sum())
    negatives = actual.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[group]
    return float((ranks[actual].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def best_f1_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The probability cut-off (predict 1 when p >= it) with the highest F1 on these rows.

    Every distinct probability is a candidate: sorted descending, cutting after position k
    predicts the first k rows positive, so TP is a cumulative sum and F1 = 2 TP / (k + P).
    """
    actual = labels.astype(bool)
    positives = int(actual.sum())
    if positives == 0 or positives == actual.size:
        return DEFAULT_THRESHOLD
    order = np.argsort(-probabilities, kind="stable")
    ordered = probabilities[order]
    tp = np.cumsum(actual[order])
    predicted = np.arange(1, actual.size + 1)
    # a cut is only possible where the next probability differs (ties go together)
    last_of_tie = np.append(ordered[1:] != ordered[:-1], True)
    f1 = np.where(last_of_tie, 2 * tp / (predicted + positives), -1.0)
    return float(ordered[int(np.argmax(f1))])


def lift_top_decile(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Conversion rate among the 10% highest scored rows over the overall rate (1 = no lift)."""
    if labels.size == 0:
        return float("nan")
    overall = float(labels.mean())
    if overall == 0:
        return float("nan")
    top = max(1, math.ceil(labels.size * TOP_DECILE))
    order = np.argsort(-probabilities, kind="stable")[:top]
    return float(labels[order].mean()) / overall


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Accuracy, precision, recall and F1 at `threshold`; AUC and top-decile lift need none."""
    predicted = probabilities >= threshold
    actual = labels.astype(bool)
    tp = float(np.sum(predicted & actual))
    fp = float(np.sum(predicted & ~actual))
    fn = float(np.sum(~predicted & actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float(np.mean(predicted == actual)) if labels.size else 0.0,
        "precision": precision,
        "recall": recall,
        "f1_score": f1,
        "auc": auc(actual, probabilities),
        "threshold": float(threshold),
        "lift_top_decile": lift_top_decile(actual.astype(np.float64), probabilities),
    }
