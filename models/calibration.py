"""Calibrators of a model's log-odds, and the choice between them on evidence.

Both models (``models.factory.LeadModel``, ``models.linear.LogisticLeadModel``) fit their
calibrator on the newest slice of their training rows. ``sigmoid`` (Platt scaling) is two
parameters and never claims 0% or 100%; ``isotonic`` is a step function that can follow
any monotone shape but overfits a small slice. ``auto`` lets the data choose: each kind is
fitted on the older half of the calibration slice and scored (Brier) on its newer half, so
the choice is made out of time like everything else; the winner is then fitted on the
whole slice. The choice and the evidence stay on the fitted model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

KINDS = ("sigmoid", "isotonic")
"""The calibrators ``auto`` chooses between, in the order ties are broken."""

PLATT_C = 1e6
"""Inverse regularisation of the sigmoid calibrator: practically none (Platt scaling)."""


class Isotonic(IsotonicRegression):
    """Isotonic regression with the ``predict_proba`` of a binary classifier."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Isotonic:
        super().fit(np.ravel(X), y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "f_"):
            # skops restores the fitted thresholds but not the interpolator scikit-learn
            # rebuilds in __setstate__ (a champion loaded from MLflow): rebuild it the same way
            self._build_f(self.X_thresholds_, self.y_thresholds_)
        p = np.clip(super().predict(np.ravel(X)), 0.0, 1.0)
        return np.column_stack([1 - p, p])


def calibrator(kind: str) -> Isotonic | LogisticRegression:
    """An unfitted calibrator of one kind (``sigmoid`` or ``isotonic``)."""
    if kind == "isotonic":
        return Isotonic(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    if kind == "sigmoid":
        return LogisticRegression(C=PLATT_C)
    raise ValueError(f"unknown calibration {kind!r}: {' | '.join(KINDS)} | auto")


@dataclass(frozen=True)
class Choice:
    """The calibrator kind used, and the Brier score each kind reached when chosen."""

    kind: str
    brier: dict[str, float]


def choose(kind: str, raw: np.ndarray, y: np.ndarray) -> Choice:
    """``kind`` itself, or for ``auto`` the kind with the lower Brier score on the newer
    half of the calibration slice when fitted on its older half (``raw``, ``y``: the slice,
    oldest first). Falls back to sigmoid when a half holds one class only."""
    if kind != "auto":
        calibrator(kind)  # refuses an unknown kind now, not at fit time
        return Choice(kind, {})
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y)
    half = len(y) // 2
    if len(np.unique(y[:half])) < 2 or len(np.unique(y[half:])) < 2:
        return Choice(KINDS[0], {})
    brier = {}
    for candidate in KINDS:
        p = calibrator(candidate).fit(raw[:half], y[:half]).predict_proba(raw[half:])[:, 1]
        brier[candidate] = float(np.mean((p - y[half:]) ** 2))
    return Choice(min(KINDS, key=lambda k: (brier[k], KINDS.index(k))), brier)


def fit_calibrator(
    kind: str, raw: np.ndarray, y: np.ndarray
) -> tuple[Isotonic | LogisticRegression, Choice]:
    """The calibrator ``kind`` names (``auto``: chosen on evidence) fitted on the slice."""
    choice = choose(kind, raw, y)
    fitted = calibrator(choice.kind).fit(np.asarray(raw).reshape(-1, 1), y)
    return fitted, choice
