"""The rule-based points baseline, as a scikit-learn style estimator.

It reads the same feature frame as the model: an ICP quality score 0-10 (weighted mean of
per-attribute value scores, LeadSquared style) scaled to ``icp_points``, plus activity
points for each occurrence within the activity window ("+10 meeting, +8 webinar,
-5 unsubscribe"), plus attribute penalties, clipped to 0-100. ``fit`` learns nothing about
the points; given labels, it maps points to a conversion rate (isotonic) so the baseline's
probabilities can be scored (Brier) on the same footing as the model's.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression

from leadscore.features.registry import count_name
from leadscore.models.config import RulesConfig

MAX_POINTS = 100.0


def grade_of(values: np.ndarray, cutoffs: Mapping[str, float]) -> np.ndarray:
    """Grade per value: the first (best) grade whose minimum the value reaches."""
    names = list(cutoffs)
    minimums = np.array(list(cutoffs.values()), dtype=np.float64)
    # minimums fall strictly; count how many are above the value -> index of the grade
    idx = (np.asarray(values, dtype=np.float64)[:, None] < minimums[None, :]).sum(axis=1)
    return np.array(names, dtype=object)[np.minimum(idx, len(names) - 1)]


class RuleScorer(ClassifierMixin, BaseEstimator):
    """Points baseline; ``points`` gives 0-100, ``predict_proba`` the calibrated rate."""

    def __init__(
        self,
        rules: RulesConfig | None = None,
        activity_points: Mapping[str, float] | None = None,
    ) -> None:
        self.rules = rules
        self.activity_points = activity_points

    def _rules(self) -> RulesConfig:
        return self.rules if self.rules is not None else RulesConfig()

    def icp_quality(self, X: pd.DataFrame) -> np.ndarray:
        """Weighted mean ICP value score, 0-10, per row (unlisted or missing: the default)."""
        rules = self._rules()
        if not rules.icp:
            return np.zeros(len(X))
        total = np.zeros(len(X))
        weights = 0.0
        for attribute, rule in rules.icp.items():
            scores = X[attribute].map(rule.values).astype("float64").fillna(rule.default)
            total += rule.weight * scores.to_numpy()
            weights += rule.weight
        return total / weights

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """Rule score 0-100 per row of a feature frame."""
        rules = self._rules()
        score = self.icp_quality(X) / 10.0 * rules.icp_points
        for activity_type, pts in (self.activity_points or {}).items():
            column = count_name(activity_type, rules.activity_window_days)
            if column in X:
                score = score + pts * X[column].to_numpy(dtype=np.float64)
        for penalty in rules.penalties:
            outside = ~X[penalty.attribute].isin(penalty.not_in).to_numpy()
            score = score + penalty.points * outside
        return np.clip(score, 0.0, MAX_POINTS)

    def grades(self, X: pd.DataFrame) -> np.ndarray:
        return grade_of(self.points(X), self._rules().grades)

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> RuleScorer:
        self.classes_ = np.array([0, 1])
        if y is not None:
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            self.calibrator_.fit(self.points(X), np.asarray(y, dtype=np.float64))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Conversion rate observed at this many points in training (needs fit with y)."""
        p = self.calibrator_.predict(self.points(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
