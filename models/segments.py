"""One model per segment (ICP, product line, persona), with a shared fallback model.

When segments buy for different reasons, one booster has to spend its trees learning the
interaction "this attribute helps in segment A and hurts in segment B"; one model per
segment learns each segment's own pattern directly. Small segments cannot support a model
of their own, so a shared fallback model, fitted on every training row, scores them, and
also scores rows whose segment is missing or was never seen in training.

``SegmentedModel`` has the interface of ``models.factory.LeadModel`` that scoring, the
report, tracking and the API use (``features``, ``raw_score``, ``calibrated``,
``predict_proba``, ``contributions``), so it is a drop-in artifact. Raw booster scores of
different models are not comparable, so its ``raw_score`` is the log-odds of the routed
model's *calibrated* probability (each model calibrates on the newest slice of its own
rows), and ``calibrated`` is the sigmoid: ranks across segments follow the calibrated
probability. ``contributions`` are each row's exact TreeSHAP values under the model that
scored it; every model has the same feature columns, so the matrix shape is unchanged.
As for ``LeadModel``, contributions are in the booster's log-odds (before calibration).
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score

from leadscore.models.config import SegmentConfig
from leadscore.models.factory import LeadModel

PROBABILITY_FLOOR = 1e-12
"""Probabilities are kept in [floor, 1 - floor] before taking their log-odds, so an
isotonic calibrator's 0 or 1 stays a finite raw score (changes no score or metric)."""


class SegmentSummary(TypedDict):
    """What training found for one segment value, and which model scores it."""

    segment: str
    examples: int
    positives: int
    model: str  # "own" | "fallback"
    reason: str
    own_auc: float | None  # ROC-AUC on the held-out rows both models never learned from
    shared_auc: float | None


class SegmentedModel(ClassifierMixin, BaseEstimator):
    """A ``LeadModel`` per large-enough segment plus a shared fallback ``LeadModel``.

    ``base`` is the unfitted ``LeadModel`` every model is cloned from (same features,
    parameters and calibration); ``column`` is the segment column, which must be one of
    its categorical features so scoring frames carry it. A segment gets a model of its own
    when it has at least ``min_examples`` training rows and ``min_positives`` rows of each
    class, its model can be fitted (both classes in its fit and calibration slices) and,
    unless ``min_auc_gain`` is None, it ranks the segment's held-out rows better than the
    shared model by more than ``min_auc_gain``. Held out are the rows both boosters never
    learned from: the segment's calibration (newest) rows that are also in the shared
    model's calibration slice. Splitting data costs each model examples, so a segment
    model must earn its place: where segments do not behave differently, they all fall
    back and the result is the single model.
    """

    def __init__(
        self,
        base: LeadModel | None = None,
        column: str = "segment",
        min_examples: int = 1000,
        min_positives: int = 120,
        min_auc_gain: float | None = 0.01,
    ) -> None:
        self.base = base
        self.column = column
        self.min_examples = min_examples
        self.min_positives = min_positives
        self.min_auc_gain = min_auc_gain

    @property
    def features(self) -> list[str]:
        """The feature columns of every model (the base model's)."""
        return self._base().features

    def _base(self) -> LeadModel:
        if self.base is None:
            raise ValueError("SegmentedModel needs a base LeadModel")
        return self.base

    def segment_keys(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's segment value as text (None where missing), as routing reads it."""
        if self.column not in X.columns:
            raise KeyError(f"segment column {self.column!r} missing from input")
        values = X[self.column].astype(object)
        return np.where(values.notna(), values.astype(str), None).astype(object)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> SegmentedModel:
        """Fit the fallback on every row, then a model per large-enough segment.

        Rows must arrive oldest first (each model calibrates on its newest rows).
        """
        base = self._base()
        if self.column not in base.categorical:
            raise ValueError(
                f"segment column {self.column!r} must be a categorical feature of the model "
                f"(declare it under features.attributes.categorical); features: {base.features}"
            )
        y = np.asarray(y, dtype=np.int64)
        self.fallback_: LeadModel = clone(base).fit(X, y)
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(self.features, dtype=object)
        keys = self.segment_keys(X)
        shared_held_out = round(len(X) * (1 - base.calibration_fraction))
        self.segments_: dict[str, LeadModel] = {}
        self.summary_: list[SegmentSummary] = []
        for value in sorted({k for k in keys if k is not None}):
            rows = np.flatnonzero(keys == value)
            positives = int(y[rows].sum())
            negatives = len(rows) - positives
            own_auc = shared_auc = None
            reason = ""
            if len(rows) < self.min_examples:
                reason = f"{len(rows)} examples < min_examples {self.min_examples}"
            elif min(positives, negatives) < self.min_positives:
                reason = (
                    f"{positives} converting / {negatives} other examples: "
                    f"each class needs min_positives {self.min_positives}"
                )
            else:
                try:
                    own = clone(base).fit(X.iloc[rows], y[rows])
                except ValueError as exc:
                    reason = str(exc)
                else:
                    own_rows = rows[round(len(rows) * (1 - base.calibration_fraction)) :]
                    held_out = own_rows[own_rows >= shared_held_out]
                    own_auc, shared_auc, reason = self._compare(own, X.iloc[held_out], y[held_out])
                    if not reason:
                        self.segments_[value] = own
            self.summary_.append(
                SegmentSummary(
                    segment=value,
                    examples=len(rows),
                    positives=positives,
                    model="fallback" if reason else "own",
                    reason=reason,
                    own_auc=own_auc,
                    shared_auc=shared_auc,
                )
            )
        return self

    def _compare(
        self, own: LeadModel, X: pd.DataFrame, y: np.ndarray
    ) -> tuple[float | None, float | None, str]:
        """(own AUC, shared AUC, reason to fall back or "") on a segment's held-out rows."""
        if self.min_auc_gain is None:
            return None, None, ""
        if len(np.unique(y)) < 2:
            return None, None, f"its {len(y)} held-out rows lack a class: cannot compare"
        own_auc = float(roc_auc_score(y, own.raw_score(X)))
        shared_auc = float(roc_auc_score(y, self.fallback_.raw_score(X)))
        if own_auc > shared_auc + self.min_auc_gain:
            return own_auc, shared_auc, ""
        return (
            own_auc,
            shared_auc,
            (
                f"own model ROC-AUC {own_auc:.4f} does not beat the shared {shared_auc:.4f} "
                f"by more than min_auc_gain {self.min_auc_gain} on its {len(y)} held-out rows"
            ),
        )

    def routes(self, X: pd.DataFrame) -> np.ndarray:
        """The segment whose own model scores each row; None where the fallback does."""
        keys = self.segment_keys(X)
        own = np.array([k in self.segments_ for k in keys], dtype=bool)
        return np.where(own, keys, None).astype(object)

    def _groups(self, X: pd.DataFrame) -> list[tuple[LeadModel, np.ndarray]]:
        """(model, row positions) for each model that scores some rows of ``X``."""
        routes = self.routes(X)
        groups = [(self.fallback_, np.flatnonzero(pd.isna(routes)))]
        groups += [(m, np.flatnonzero(routes == v)) for v, m in self.segments_.items()]
        return [(model, rows) for model, rows in groups if len(rows)]

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of conversion, each row by its segment's model."""
        out = np.empty(len(X), dtype=np.float64)
        for model, rows in self._groups(X):
            out[rows] = model.predict_proba(X.iloc[rows])[:, 1]
        return np.clip(out, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of the calibrated probability: comparable across segments."""
        return logit(self.probability(X))

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """The calibrated probability back from ``raw_score`` (already calibrated)."""
        return expit(np.asarray(raw, dtype=np.float64))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.probability(X)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def base_values(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's TreeSHAP expected value (that of the model scoring it)."""
        out = np.empty(len(X), dtype=np.float64)
        for model, rows in self._groups(X):
            out[rows] = model.contributions(X.iloc[rows[:1]])[1]
        return out

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Exact SHAP contributions of each row under its own model, and the mean base value.

        Row ``i``'s contributions plus ``base_values(X)[i]`` add up to the booster log-odds
        of the model that scored it (the mean base value is returned for the interface).
        """
        out = np.empty((len(X), len(self.features)), dtype=np.float64)
        base = np.empty(len(X), dtype=np.float64)
        for model, rows in self._groups(X):
            out[rows], base[rows] = model.contributions(X.iloc[rows])
        expected = float(base.mean()) if len(X) else self.fallback_.contributions(X)[1]
        return out, expected

    def models(self) -> dict[str | None, LeadModel]:
        """Every fitted model by the segment it scores (None: the shared fallback)."""
        return {None: self.fallback_, **self.segments_}


def make_segmented(base: LeadModel, config: SegmentConfig) -> SegmentedModel:
    """The unfitted segmented model for a configured segment column."""
    if config.column is None:
        raise ValueError("model.segments.column is not set")
    return SegmentedModel(
        base=base,
        column=config.column,
        min_examples=config.min_examples,
        min_positives=config.min_positives,
        min_auc_gain=config.min_auc_gain,
    )
