"""The ROC-AUC a batch can expect before any outcome arrives (confidence-based estimation).

If the published probabilities are calibrated, lead ``i`` converts with probability
``p_i``, independently of the others. A pair (i, j) is then a (converter, non-converter)
pair with probability ``p_i (1 - p_j)``, and the ranking orders it right when ``s_i > s_j``
(half when tied). The expected ROC-AUC is estimated as the ratio of expectations::

    AUC_hat = sum_{i != j} p_i (1 - p_j) K(s_i, s_j) / sum_{i != j} p_i (1 - p_j)

with K = 1, 1/2, 0 for s_i >, =, < s_j: the idea of NannyML's CBPE (probabilities as
expected labels), in closed form. Sorting by score and summing per tie group gives it in
O(n log n): each group's expected converters times the expected non-converters ranked
below, plus half the pairs within the group (a lead is never paired with itself). The
ratio of expectations differs from the expectation of the ratio by O(1/n)
(``tests/models/test_monitor_estimate.py`` checks both against brute force and simulation).

What it assumes: calibration holds on the new batch, i.e. only the inputs' distribution
moved (covariate shift), not how inputs relate to conversion (concept shift). It sees
ranking getting harder as the batch's probabilities crowd together; it cannot see the
model becoming wrong, which only outcomes reveal (docs/monitoring.md).
"""

from __future__ import annotations

import numpy as np


def expected_roc_auc(probability: np.ndarray, ranking: np.ndarray | None = None) -> float | None:
    """Expected ROC-AUC of ``ranking`` (default: the probabilities) if ``probability`` is
    calibrated; None when no pair can be formed (fewer than 2 leads, or every p 0 or 1 alike)."""
    p = np.asarray(probability, dtype=np.float64)
    s = p if ranking is None else np.asarray(ranking, dtype=np.float64)
    if len(p) != len(s):
        raise ValueError(f"{len(p)} probabilities for {len(s)} ranking values")
    ok = ~(np.isnan(p) | np.isnan(s))
    p, s = np.clip(p[ok], 0.0, 1.0), s[ok]
    if len(p) < 2:
        return None
    _, group = np.unique(s, return_inverse=True)  # tie groups, ascending score
    pos = np.bincount(group, weights=p)
    neg = np.bincount(group, weights=1.0 - p)
    own = np.bincount(group, weights=p * (1.0 - p))
    neg_below = np.cumsum(neg) - neg
    concordant = float(np.sum(pos * neg_below) + 0.5 * np.sum(pos * neg - own))
    pairs = float(p.sum() * (1.0 - p).sum() - np.sum(p * (1.0 - p)))
    if pairs <= 0:
        return None
    return concordant / pairs
