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


# --- Trust metrics (evaluation report, calibration, gate) ------------------------------

REPORT_SHARES = (0.05, 0.10, 0.20)
"""Top shares of the ranking at which the report reads lift and capture."""

ECE_BINS = 10
"""Equal-count probability bins of the expected calibration error."""

_EPS = 1e-15


def log_loss(y: np.ndarray, probability: np.ndarray) -> float:
    """Mean negative log-likelihood; probabilities are clipped away from 0 and 1.

    Written out (not sklearn's) so a window with one class still gives a number.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_bins(
    y: np.ndarray, probability: np.ndarray, n_bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Equal-count bins of the sorted probabilities: rows, mean probability, observed rate.

    Equal-count bins (not equal-width) because lead probabilities crowd near zero: equal
    widths would put most rows in one bin and hide miscalibration where the leads are.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    bins = []
    for chunk in np.array_split(order, min(n_bins, max(1, len(p)))):
        if len(chunk):
            bins.append(
                {
                    "n": float(len(chunk)),
                    "mean_probability": float(p[chunk].mean()),
                    "observed_rate": float(y[chunk].mean()),
                }
            )
    return bins


def expected_calibration_error(
    y: np.ndarray, probability: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """Row-weighted mean |mean probability - observed rate| over equal-count bins."""
    bins = calibration_bins(y, probability, n_bins)
    total = sum(b["n"] for b in bins)
    if total == 0:
        return float("nan")
    gaps = sum(b["n"] * abs(b["mean_probability"] - b["observed_rate"]) for b in bins)
    return float(gaps / total)


def share_key(share: float) -> str:
    """``0.05`` -> ``"top5"``: the suffix of lift / capture metric names."""
    return f"top{round(share * 100)}"


def full_metrics(
    y: np.ndarray,
    ranking: np.ndarray,
    probability: np.ndarray,
    shares: tuple[float, ...] = REPORT_SHARES,
) -> dict[str, float]:
    """``evaluate`` plus log loss, ECE, and lift / capture at every share of ``shares``."""
    out = evaluate(y, ranking, probability)
    out["log_loss"] = log_loss(y, probability)
    out["ece"] = expected_calibration_error(y, probability)
    for share in shares:
        lift, capture = lift_and_capture(np.asarray(y), ranking, share)
        out[f"lift_{share_key(share)}"] = float(lift)
        out[f"capture_{share_key(share)}"] = float(capture)
    return out
