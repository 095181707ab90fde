"""From exact SHAP contributions to reason codes sales ops can read.

Contributions are in log-odds. A lead's reasons are its largest positive and most negative
contributions (at least ``min_abs_contribution`` in size), each rendered as a sentence from
the feature registry's templates with the lead's own values ("webinar sign-up 3 days ago").
The ``fit`` and ``engagement`` sub-scores are the contributions summed by feature family.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.registry import FeatureRegistry
from models.config import ScoringConfig


def family_sums(
    contributions: np.ndarray, features: Sequence[str], registry: FeatureRegistry
) -> dict[str, np.ndarray]:
    """Contributions summed per feature family (log-odds above the average lead)."""
    families = np.array([registry[f].family for f in features])
    return {
        family: contributions[:, families == family].sum(axis=1) for family in sorted(set(families))
    }


def _top(
    contributions: np.ndarray, k: int, sign: int, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the k strongest contributions of one sign per row, and a validity mask."""
    if k == 0:
        shape = (len(contributions), 0)
        return np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=bool)
    signed = contributions * sign
    k = min(k, signed.shape[1])
    part = np.argpartition(-signed, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(signed, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(signed, idx, axis=1) >= floor


def reason_codes(
    contributions: np.ndarray,
    X: pd.DataFrame,
    features: Sequence[str],
    registry: FeatureRegistry,
    config: ScoringConfig,
) -> list[str]:
    """One JSON array of reasons per row: positives first (strongest first), then negatives."""
    pos, pos_ok = _top(contributions, config.top_positive, 1, config.min_abs_contribution)
    neg, neg_ok = _top(contributions, config.top_negative, -1, config.min_abs_contribution)
    records = X.to_dict(orient="records")
    out: list[str] = []
    for row, values in enumerate(records):
        reasons = []
        for idx, ok, direction in ((pos, pos_ok, "+"), (neg, neg_ok, "-")):
            for col, keep in zip(idx[row], ok[row], strict=True):
                if not keep:
                    continue
                name = features[col]
                reasons.append(
                    {
                        "feature": name,
                        "text": registry[name].render(values),
                        "direction": direction,
                        "contribution": round(float(contributions[row, col]), 4),
                    }
                )
        out.append(json.dumps(reasons))
    return out
