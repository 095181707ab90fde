"""The conversion-likelihood model: encoding + LightGBM + calibration in one estimator.

One fitted object is the whole artifact (no preprocessor pickled apart from the model):
categorical columns are encoded with the categories seen in training (unseen -> missing,
which LightGBM routes like nulls), the booster learns on the older training rows, and a
calibrator maps its raw score to a probability on the newest ``calibration_fraction`` of
rows (rows must arrive oldest first), so probabilities are calibrated out of time.
``contributions`` returns exact TreeSHAP values in log-odds, the numbers LightGBM's
``pred_contrib`` and ``shap.TreeExplainer`` give, computed by ``models.treeshap`` (tables
built once per fitted model, ~10x faster); boosters it cannot tabulate fall back to
``pred_contrib``.

Behaviour that may only help (or only hurt) is enforced, not hoped for: ``monotone`` gives
features a direction (LightGBM ``monotone_constraints``), resolved by ``make_model`` from
the ``model.monotone`` rules, and ``isolate_monotone`` keeps constrained features in trees
of their own (``interaction_constraints``), so that the summed contributions of a family of
them move the declared way too, not only the score (tests/test_behaviour.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, ClassifierMixin

from leadscore.models.calibration import Isotonic, fit_calibrator
from leadscore.models.config import LightGBMParams, ModelConfig
from leadscore.models.treeshap import FastTreeShap

if TYPE_CHECKING:
    from leadscore.models.linear import LogisticLeadModel

# Explainer tables per fitted model, built on first use and kept out of the artifact.
_EXPLAINERS: weakref.WeakKeyDictionary[LeadModel, FastTreeShap | None] = weakref.WeakKeyDictionary()


class LeadModel(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM over a declared list of categorical and numeric features."""

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        lgbm_params: Mapping[str, object] | None = None,
        calibration: str = "isotonic",
        calibration_fraction: float = 0.2,
        random_state: int = 0,
        monotone: Mapping[str, int] | None = None,
        isolate_monotone: bool = True,
    ) -> None:
        self.categorical = categorical
        self.numeric = numeric
        self.lgbm_params = lgbm_params
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.monotone = monotone
        self.isolate_monotone = isolate_monotone

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def _check_columns(self, X: pd.DataFrame) -> None:
        missing = [c for c in self.features if c not in X.columns]
        if missing:
            raise KeyError(f"feature columns missing from input: {missing}")

    def _encode(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_columns(X)
        data: dict[str, object] = {c: _numbers(X[c]) for c in self.numeric}
        for c in self.categorical:
            data[c] = _categorical(X[c], self.categories_[c])
        return pd.DataFrame(data, index=X.index)[self.features]

    def fit(self, X: pd.DataFrame, y: Sequence[int] | np.ndarray) -> LeadModel:
        """Fit booster on the older rows, calibrator on the newest rows (X is oldest first)."""
        y = np.asarray(y, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise ValueError("training labels hold one class only; cannot learn conversion")
        self.categories_ = {
            c: sorted(X[c].dropna().astype(str).unique().tolist()) for c in self.categorical
        }
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(self.features, dtype=object)
        encoded = self._encode(X)
        cut = round(len(X) * (1 - self.calibration_fraction))
        if len(np.unique(y[:cut])) < 2 or len(np.unique(y[cut:])) < 2:
            raise ValueError("both the fit and the calibration slices need both classes")
        params = {"verbosity": -1, "random_state": self.random_state, "n_jobs": -1}
        params.update(self._constraints())
        params.update(self.lgbm_params or {})  # explicit LightGBM parameters win
        self.booster_ = lgb.LGBMClassifier(**params)
        self.booster_.fit(encoded.iloc[:cut], y[:cut])
        raw = self.booster_.predict(encoded.iloc[cut:], raw_score=True)
        self.calibrator_, choice = fit_calibrator(self.calibration, raw, y[cut:])
        self.calibration_ = choice.kind
        self.calibration_evidence_ = choice.brier
        return self

    def _constraints(self) -> dict[str, object]:
        """LightGBM ``monotone_constraints`` (and ``interaction_constraints``) in column order.

        ``monotone`` names the behaviour features with their direction (0 = named but
        free); with ``isolate_monotone`` they form one interaction group and every other
        feature another. Empty when no feature has a nonzero direction.
        """
        directions = {name: int(d) for name, d in (self.monotone or {}).items()}
        if not any(directions.values()):
            return {}
        stray = sorted(set(directions) - set(self.numeric))
        if stray:
            raise ValueError(f"monotone directions for non-numeric or unknown features: {stray}")
        if any(d not in (-1, 0, 1) for d in directions.values()):
            raise ValueError("monotone directions must be -1, 0 or +1")
        features = self.features
        out: dict[str, object] = {
            "monotone_constraints": [directions.get(name, 0) for name in features]
        }
        if self.isolate_monotone:
            named = [j for j, name in enumerate(features) if name in directions]
            rest = [j for j, name in enumerate(features) if name not in directions]
            out["interaction_constraints"] = [group for group in (named, rest) if group]
        return out

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds, before calibration."""
        return self.booster_.booster_.predict(self.lightgbm_matrix(X), raw_score=True)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probability of conversion from the booster's log-odds."""
        return self.calibrator_.predict_proba(np.asarray(raw).reshape(-1, 1))[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.calibrated(self.raw_score(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def lightgbm_matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix LightGBM predicts on: numeric values, category codes (NaN = none).

        The values ``_encode``'s frame gives LightGBM (its pandas path turns the frame into
        this matrix), built without the frame: scoring and explaining a partition each
        read it, and the frame's casts to Python objects cost ~1.7 us a lead (1M bench)."""
        self._check_columns(X)
        out = np.empty((len(X), len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            if name in self.categorical:
                codes = _category_codes(X[name], self.categories_[name])
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = _numbers(X[name])
        return out

    def explainer(self) -> FastTreeShap | None:
        """The fast exact TreeSHAP of this booster (None if its trees cannot be tabulated)."""
        if self not in _EXPLAINERS:
            try:
                _EXPLAINERS[self] = FastTreeShap(self.booster_.booster_.dump_model())
            except ValueError:
                _EXPLAINERS[self] = None
        return _EXPLAINERS[self]

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Exact SHAP contributions (n_rows x n_features, log-odds) and the expected value."""
        explainer = self.explainer()
        if explainer is None:
            contrib = self.booster_.booster_.predict(self.lightgbm_matrix(X), pred_contrib=True)
            return contrib[:, :-1], float(contrib[0, -1]) if len(contrib) else 0.0
        return explainer.shap_values(self.lightgbm_matrix(X)), explainer.expected_value


def _categorical(column: pd.Series, categories: Sequence[str]) -> pd.Categorical:
    """A categorical feature as ``_encode`` gives it to LightGBM: values not among
    ``categories`` (unseen, or not text) are missing, explicitly (pandas 4 refuses them
    in a Categorical)."""
    values = column.astype(object)
    known = values.notna() & values.astype(str).isin(categories)
    return pd.Categorical(values.where(known, None), categories=list(categories))


def _category_codes(column: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Each value's position in ``categories`` (-1: missing, or not one of them): the
    codes of :func:`_categorical`. Text columns are looked up by Arrow's hash
    (``index_in``); other columns go through that Categorical."""
    try:
        values = pa.array(column, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        values = None
    if values is not None and pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values is not None and (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        wanted = pa.array(list(categories), type=values.type)
        codes = pc.index_in(values, value_set=wanted).fill_null(-1)
        return codes.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return np.asarray(_categorical(column, categories).codes, dtype=np.int64)


def _numbers(column: pd.Series) -> np.ndarray:
    """A numeric feature as float64 (text that is not a number: NaN)."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()


_Isotonic = Isotonic
"""The calibrator's former name: versions registered before ``models.calibration`` load."""


def monotone_directions(rules: Mapping[str, int], numeric: Sequence[str]) -> dict[str, int]:
    """Direction of each numeric feature some pattern names: the first match's (-1, 0, +1).

    Features no pattern matches get no entry: they are neither constrained nor isolated.
    """
    out: dict[str, int] = {}
    for name in numeric:
        match = next((d for pattern, d in rules.items() if fnmatchcase(name, pattern)), None)
        if match is not None:
            out[name] = int(match)
    return out


def make_model(
    config: ModelConfig, categorical: Sequence[str], numeric: Sequence[str]
) -> LeadModel | LogisticLeadModel:
    """The unfitted model for a feature set, parameterised by the model config.

    ``config.kind`` picks the learner: calibrated LightGBM (``LeadModel``) or the
    calibrated logistic regression of ``models.linear``, which shares its interface.
    ``auto`` gives the configured LightGBM, the family ``models.selection`` starts from
    (``candidate_models`` lists every family it judges).
    """
    if config.kind == "logistic":
        from leadscore.models.linear import (
            LogisticLeadModel,  # here: models.linear imports this module
        )

        return LogisticLeadModel(
            categorical=list(categorical),
            numeric=list(numeric),
            C=config.logistic.C,
            max_iter=config.logistic.max_iter,
            calibration=config.calibration,
            calibration_fraction=config.calibration_fraction,
            random_state=config.seed,
        )
    return LeadModel(
        categorical=list(categorical),
        numeric=list(numeric),
        lgbm_params=config.lightgbm.model_dump(),
        calibration=config.calibration,
        calibration_fraction=config.calibration_fraction,
        random_state=config.seed,
        monotone=monotone_directions(config.monotone.directions, numeric),
        isolate_monotone=config.monotone.isolate,
    )


CANDIDATE_LABELS = {
    "logistic": "logistic regression",
    "lightgbm_regularised": "LightGBM, regularised",
    "lightgbm": "LightGBM, configured",
}
"""The families ``model.kind: auto`` judges, simplest first (ties go to the first)."""


def candidate_models(
    config: ModelConfig, categorical: Sequence[str], numeric: Sequence[str]
) -> dict[str, LeadModel | LogisticLeadModel]:
    """The unfitted candidates of ``model.kind: auto``, simplest first (``CANDIDATE_LABELS``):
    the calibrated logistic model, LightGBM with ``model.selection.regularised`` over the
    configured parameters, and the configured LightGBM."""
    shape = {**config.lightgbm.model_dump(), **config.selection.regularised}
    configs = {
        "logistic": config.model_copy(update={"kind": "logistic"}),
        "lightgbm_regularised": config.model_copy(
            update={"kind": "lightgbm", "lightgbm": LightGBMParams(**shape)}
        ),
        "lightgbm": config.model_copy(update={"kind": "lightgbm"}),
    }
    return {name: make_model(c, categorical, numeric) for name, c in configs.items()}
