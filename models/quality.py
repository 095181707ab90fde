"""Quality targets of a training run, each with a bootstrap interval over leads.

A target such as "ROC-AUC within 0.01 of the oracle" is judged on the validation window's
point value, but one window is one sample: the interval says whether a miss (or a hit)
would survive another draw of leads. Resampling is by lead, not by row, because a lead
has several snapshots in a window and they are not independent.

Intervals are bootstrap percentiles corrected for the bootstrap's bias. ROC-AUC under
resampling is computed from weights (how often each row was drawn) on
scores sorted once, so hundreds of resamples of a window of tens of thousands of rows
cost well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.models.config import QualityTargets
from leadscore.models.evaluate import expected_calibration_error


@dataclass(frozen=True)
class TargetResult:
    """One target: what is measured, the bound, the point value and its interval."""

    name: str
    description: str
    op: str  # ">=" or "<="
    bound: float
    value: float
    low: float
    high: float
    confidence: float = 0.95

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.name,
            "rule": f"{self.op} {self.bound:g}",
            "value": round(self.value, 4),
            "interval": [round(self.low, 4), round(self.high, 4)],
            "confidence": self.confidence,
            "met": self.met,
        }


class _SortedScore:
    """A score sorted once, with its tie groups, for weighted ROC-AUC."""

    def __init__(self, score: np.ndarray, y: np.ndarray) -> None:
        self.order = np.argsort(np.asarray(score, dtype=np.float64), kind="mergesort")
        s = np.asarray(score, dtype=np.float64)[self.order]
        self.group = np.concatenate([[0], np.cumsum(s[1:] != s[:-1])])
        self.y = np.asarray(y, dtype=np.float64)[self.order]

    def auc(self, weights: np.ndarray) -> float:
        """Weighted ROC-AUC (ties count one half), ``weights`` in the original row order."""
        w = weights[self.order]
        pos = np.bincount(self.group, w * self.y)
        neg = np.bincount(self.group, w * (1.0 - self.y))
        below = np.cumsum(neg) - neg
        total = pos.sum() * neg.sum()
        return float((pos * (below + 0.5 * neg)).sum() / total) if total else float("nan")


def weighted_roc_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> float:
    """ROC-AUC of ``score`` with row ``weights`` (equals sklearn's with sample_weight)."""
    return _SortedScore(score, y).auc(np.asarray(weights, dtype=np.float64))


def lead_resamples(groups: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Row weights of ``resamples`` bootstrap draws of the leads (rows: draws).

    Each draw picks as many leads as there are, with replacement; a row weighs as many
    times as its lead was drawn.
    """
    codes, uniques = pd.factorize(pd.Series(groups), sort=False)
    rng = np.random.default_rng(seed)
    n = len(uniques)
    weights = np.empty((resamples, len(codes)))
    for i in range(resamples):
        weights[i] = np.bincount(rng.integers(0, n, n), minlength=n)[codes]
    return weights


def _interval(values: np.ndarray, confidence: float, point: float) -> tuple[float, float]:
    """Percentile interval of the resampled ``values``, shifted by their bias (mean minus
    ``point``). The shift matters for ECE, a sum of absolute gaps, which resampling
    inflates (on a calibrated window the whole percentile interval can lie above the
    value); for differences of ROC-AUC it is next to nothing."""
    values = values[np.isfinite(values)]
    if not len(values):
        return point, point
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail]) - (values.mean() - point)
    return float(low), float(high)


def _ece_of_weights(y: np.ndarray, p: np.ndarray) -> Callable[[np.ndarray], float]:
    def ece(weights: np.ndarray) -> float:
        rows = np.repeat(np.arange(len(y)), weights.astype(np.int64))
        return expected_calibration_error(y[rows], p[rows])

    return ece


def roc_auc_difference(
    y: np.ndarray, first: np.ndarray, second: np.ndarray
) -> Callable[[np.ndarray], float]:
    """ROC-AUC of ``first`` minus that of ``second``, as a function of row weights."""
    a, b = _SortedScore(first, y), _SortedScore(second, y)
    return lambda weights: a.auc(weights) - b.auc(weights)


def bootstrap(
    measure: Callable[[np.ndarray], float], draws: np.ndarray, confidence: float
) -> tuple[float, float, float]:
    """(value, low, high): ``measure`` of the window and its interval over the resamples
    ``draws`` (row weights, from :func:`lead_resamples`)."""
    point = measure(np.ones(draws.shape[1]))
    low, high = _interval(np.array([measure(w) for w in draws]), confidence, point)
    return point, low, high


def paired_intervals(
    targets: QualityTargets,
    y: np.ndarray,
    groups: np.ndarray,
    ranking: np.ndarray,
    others: dict[str, np.ndarray],
) -> dict[str, tuple[float, float]]:
    """Interval of ROC-AUC of ``ranking`` minus each of ``others`` (same rows), over leads;
    empty when ``targets.resamples`` is 0."""
    if not targets.resamples:
        return {}
    draws = lead_resamples(groups, targets.resamples, targets.seed)
    out = {}
    for name, other in others.items():
        _, low, high = bootstrap(roc_auc_difference(y, ranking, other), draws, targets.confidence)
        out[name] = (low, high)
    return out


def assess(
    targets: QualityTargets,
    y: np.ndarray,
    groups: np.ndarray,
    model_ranking: np.ndarray,
    model_probability: np.ndarray,
    rule_ranking: np.ndarray,
    oracle_probability: np.ndarray | None = None,
) -> list[TargetResult]:
    """Every configured target on one validation window (rows of the same lead share
    ``groups``); a target on the oracle is skipped when there is no oracle."""
    y = np.asarray(y, dtype=np.float64)
    model = _SortedScore(model_ranking, y)
    measures: list[tuple[str, str, str, float, Callable[[np.ndarray], float]]] = []
    if targets.min_roc_auc is not None:
        measures.append(("roc_auc", "model ROC-AUC", ">=", targets.min_roc_auc, model.auc))
    if targets.min_margin_over_rules is not None:
        measures.append(
            (
                "model_minus_rules_roc_auc",
                "model ROC-AUC minus the rules'",
                ">=",
                targets.min_margin_over_rules,
                roc_auc_difference(y, model_ranking, rule_ranking),
            )
        )
    if targets.max_oracle_gap is not None and oracle_probability is not None:
        measures.append(
            (
                "oracle_minus_model_roc_auc",
                "oracle ROC-AUC minus the model's",
                "<=",
                targets.max_oracle_gap,
                roc_auc_difference(y, oracle_probability, model_ranking),
            )
        )
    if targets.max_calibration_error is not None:
        measures.append(
            (
                "ece",
                "model expected calibration error",
                "<=",
                targets.max_calibration_error,
                _ece_of_weights(y, np.asarray(model_probability, dtype=np.float64)),
            )
        )
    if not measures:
        return []
    draws = lead_resamples(groups, targets.resamples, targets.seed)
    results = []
    for name, description, op, bound, measure in measures:
        point, low, high = bootstrap(measure, draws, targets.confidence)
        results.append(
            TargetResult(name, description, op, bound, point, low, high, targets.confidence)
        )
    return results
