"""Metrics that put the model and the rules on the same validation window.

Ranking metrics (ROC-AUC, PR-AUC, lift and capture in the top 10%) are computed on the
ranking a sales team gets; Brier on the probability it is told. Lift and capture treat
ties at the cut fairly (each tied row counts in proportion), so a coarse points score is
neither flattered nor punished by an arbitrary tie order.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP_SHARE = 0.10


def top_share_positives(y: np.ndarray, ranking: np.ndarray, share: float) -> float:
    """Expected number of positives among the top ``share`` of rows, ties split evenly."""
    y = np.asarray(y, dtype=np.float64)
    ranking = np.asarray(ranking, dtype=np.float64)
    k = max(1, math.ceil(share * len(y)))
    cut = np.sort(ranking)[::-1][k - 1]
    above = ranking > cut
    tied = ranking == cut
    room = k - above.sum()
    return float(y[above].sum() + room * y[tied].mean())


def lift_and_capture(
    y: np.ndarray, ranking: np.ndarray, share: float = TOP_SHARE
) -> tuple[float, float]:
    """(lift, capture) in the top ``share``: rate there / overall rate, share of positives."""
    positives = float(np.sum(y))
    if positives == 0:
        return float("nan"), float("nan")
    hits = top_share_positives(y, ranking, share)
    k = max(1, math.ceil(share * len(y)))
    return (hits / k) / (positives / len(y)), hits / positives


def evaluate(y: np.ndarray, ranking: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, lift and capture in the top 10%."""
    y = np.asarray(y)
    lift, capture = lift_and_capture(y, ranking)
    return {
        "roc_auc": float(roc_auc_score(y, ranking)),
        "pr_auc": float(average_precision_score(y, ranking)),
        "brier": float(brier_score_loss(y, np.clip(probability, 0, 1))),
        "lift_top10": float(lift),
        "capture_top10": float(capture),
    }
