"""Drift of one batch against the reference: PSI per feature and of the prediction.

The population stability index over a feature's bins (``models/monitor/profile.py``)::

    PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

with ``p_i`` the reference's share of bin ``i`` and ``q_i`` tonight's. An empty bin would
make the logarithm infinite, so both shares are floored at :data:`FLOOR` (0.01%) first, the
usual convention: one bin going from nothing to a share ``q`` then adds about
``q * ln(q / 0.0001)`` (1% of rows in a category the reference never had: 0.046; 10%:
0.69). Rules of thumb read PSI < 0.1 as stable, 0.1-0.2 as a moderate shift, > 0.2 as a
major one (docs/monitoring.md). Missing values and unseen categories are bins of their own,
so a column that stops being filled shows as drift, and their shares are reported beside.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from leadscore.models.monitor.profile import MISSING, PREDICTION, UNSEEN, BatchCounts, FeatureCounts
from leadscore.models.monitor.result import DRIFT_COLUMNS

FLOOR = 1e-4
"""Shares below this count as this in PSI (an empty bin would make it infinite)."""


SHIFT_SHOWN = 0.0005
"""A top shift smaller than this (0.05 percentage points) is not worded: nothing moved."""


def psi(reference: Any, current: Any, floor: float = FLOOR) -> float:
    """PSI between two share vectors (each summing to 1), both floored at ``floor``.

    NaN when ``current`` has no rows (all zero): an empty batch says nothing.
    """
    p = np.maximum(np.asarray(reference, dtype=np.float64), floor)
    q = np.asarray(current, dtype=np.float64)
    if q.sum() <= 0 or len(p) != len(q):
        return float("nan")
    q = np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


def _share_of(labels: tuple[str, ...], shares: np.ndarray, label: str) -> float:
    return float(shares[labels.index(label)]) if label in labels else float("nan")


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def top_shift(feature: FeatureCounts, now: np.ndarray) -> str:
    """The bin adding most to the PSI, in words: ``lead_source=partner 2.0% -> 21.3%``
    (the first such bin on a tie; empty when no share moved by 0.05 points)."""
    reference = np.asarray(feature.reference, dtype=np.float64)
    if now.sum() == 0:
        return ""
    if np.abs(now - reference).max() < SHIFT_SHOWN:
        return ""
    p, q = np.maximum(reference, FLOOR), np.maximum(now, FLOOR)
    i = int(np.argmax((q - p) * np.log(q / p)))  # the largest term of the PSI
    label = feature.labels[i]
    if feature.kind == "categorical" and label not in (MISSING,):
        where = f"{feature.name}={label}"
    else:
        where = f"{feature.name} {label}"
    return f"{where} {_percent(reference[i])} -> {_percent(now[i])}"


def feature_drift(feature: FeatureCounts) -> dict[str, Any]:
    """One row of the drift table (without batch_id / as_of)."""
    rows = feature.rows
    now = feature.counts / rows if rows else np.zeros(len(feature.counts))
    reference = np.asarray(feature.reference, dtype=np.float64)
    has_missing = feature.kind != PREDICTION
    return {
        "feature": feature.name,
        "kind": feature.kind,
        "psi": psi(reference, now) if rows else float("nan"),
        "missing_ref": _share_of(feature.labels, reference, MISSING) if has_missing else 0.0,
        "missing_now": (
            (_share_of(feature.labels, now, MISSING) if rows else float("nan"))
            if has_missing
            else 0.0
        ),
        "unseen_now": (
            (_share_of(feature.labels, now, UNSEEN) if rows else float("nan"))
            if feature.kind == "categorical"
            else float("nan")
        ),
        "top_shift": top_shift(feature, now),
    }


def drift_table(
    counts: BatchCounts | dict[str, Any] | None, *, batch_id: str, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Per feature and the prediction: PSI, missing shares, unseen share, top shift.

    ``counts`` may be a :class:`BatchCounts` or its ``to_dict()`` (as archived); None (a
    batch scored by a model without a reference) gives an empty table.
    """
    if counts is None:
        return pd.DataFrame({c: [] for c in DRIFT_COLUMNS})
    if not isinstance(counts, BatchCounts):
        counts = BatchCounts.from_dict(counts)
    rows = [
        {"batch_id": batch_id, "as_of": as_of, **feature_drift(f)} for f in counts.features.values()
    ]
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


def max_feature_psi(drift: pd.DataFrame) -> tuple[str, float] | None:
    """The feature (not the prediction) of highest PSI, or None if none has one."""
    features = drift[(drift["feature"] != PREDICTION) & drift["psi"].notna()]
    if features.empty:
        return None
    row = features.loc[features["psi"].idxmax()]
    return str(row["feature"]), float(row["psi"])


def prediction_psi(drift: pd.DataFrame) -> float | None:
    """The prediction's PSI, or None (no reference, empty batch)."""
    rows = drift.loc[drift["feature"] == PREDICTION, "psi"]
    if rows.empty or not math.isfinite(float(rows.iloc[0])):
        return None
    return float(rows.iloc[0])
