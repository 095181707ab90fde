"""The calibrated logistic model (models/linear.py): exact explanations, encoding, dispatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from leadscore.models.calibration import Isotonic
from leadscore.models.config import ModelConfig
from leadscore.models.factory import LeadModel, make_model
from leadscore.models.linear import MISSING_LEVEL, LogisticLeadModel

CATEGORICAL = ["industry", "source"]
NUMERIC = ["employees", "visits"]
N_ROWS = 1200


def _frame(n: int = N_ROWS, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Leads whose conversion is linear in the features; `source` and `visits` have gaps."""
    X, y, _ = _frame_and_truth(n, seed)
    return X, y


def _frame_and_truth(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The frame, its labels and the true log-odds they were drawn from."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["software", "retail", "fintech"], n)
    source = rng.choice(["web", "event", "partner"], n).astype(object)
    source[rng.random(n) < 0.1] = None
    employees = rng.integers(1, 500, n).astype(float)
    visits = rng.poisson(3, n).astype(float)
    logit = -1.5 + 1.2 * (industry == "software") + 0.004 * employees + 0.3 * visits
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    visits[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame(
        {"industry": industry, "source": source, "employees": employees, "visits": visits}
    )
    return X, y, logit


@pytest.fixture(scope="module")
def fitted() -> tuple[LogisticLeadModel, pd.DataFrame, np.ndarray]:
    X, y = _frame()
    return LogisticLeadModel(CATEGORICAL, NUMERIC).fit(X, y), X, y


def test_it_learns_the_signal(fitted):
    model, _, _ = fitted
    X, y, truth = _frame_and_truth(N_ROWS, seed=4)
    # within 0.02 of the true log-odds' ROC-AUC (the bound; visits are 10% hidden here)
    assert roc_auc_score(y, model.predict_proba(X)[:, 1]) > roc_auc_score(y, truth) - 0.02
    assert model.coefficients["industry=software"] > 0.3
    assert model.coefficients["employees"] > 0.3


def test_contributions_add_up_to_the_raw_score(fitted):
    model, X, _ = fitted
    contributions, expected = model.contributions(X)
    assert contributions.shape == (len(X), 4)
    np.testing.assert_allclose(contributions.sum(axis=1) + expected, model.raw_score(X), atol=1e-9)
    # the expected value is the mean training log-odds: contributions average 0 there
    np.testing.assert_allclose(model.raw_score(X).mean(), expected, atol=1e-9)
    np.testing.assert_allclose(contributions.mean(axis=0), 0.0, atol=1e-9)


def test_contributions_equal_shap_linear_explainer_summed_per_feature(fitted):
    model, X, _ = fitted
    Z = model._encode(X)
    explainer = shap.LinearExplainer(
        (model.regression_.coef_[0], model.regression_.intercept_[0]),
        shap.maskers.Independent(Z, max_samples=len(Z)),
    )
    per_column = explainer.shap_values(Z[:50])
    by_feature = np.column_stack(
        [per_column[:, model.owners_ == j].sum(axis=1) for j in range(len(model.features))]
    )
    contributions, expected = model.contributions(X.iloc[:50])
    np.testing.assert_allclose(contributions, by_feature, atol=1e-9)
    assert expected == pytest.approx(float(explainer.expected_value), abs=1e-9)


def test_a_numeric_contribution_is_its_coefficient_times_the_distance_to_the_mean():
    X, y = _frame()
    X = X.assign(visits=X["visits"].fillna(0.0), source=X["source"].fillna("web"))
    model = LogisticLeadModel(CATEGORICAL, NUMERIC).fit(X, y)
    lead = X.iloc[[0]].assign(employees=321.0)
    # columns: industry x3, source x3, employees, visits -> employees is column 6
    assert list(model.columns_).index("employees") == 6
    w = model.coefficients["employees"] / model.column_scales_[6]
    by_hand = w * (321.0 - X["employees"].mean())
    assert model.contributions(lead)[0][0, 2] == pytest.approx(by_hand, rel=1e-9)


def test_a_contribution_depends_on_its_own_feature_only(fitted):
    model, X, _ = fitted
    lead = X.iloc[[5]]
    other = lead.assign(industry="retail", employees=2.0)
    before, after = model.contributions(lead)[0][0], model.contributions(other)[0][0]
    assert before[1] == after[1] and before[3] == after[3]  # source and visits unchanged
    assert before[0] != after[0] and before[2] != after[2]


def test_it_extrapolates_beyond_the_training_range(fitted):
    """Why the model exists: trees score flat past the last split, a line keeps going."""
    model, X, _ = fitted
    top = X["employees"].max()
    leads = pd.concat([X.iloc[[0]]] * 3).assign(employees=[top, 2 * top, 4 * top])
    raw = model.raw_score(leads)
    assert raw[0] < raw[1] < raw[2]
    assert raw[2] - raw[1] == pytest.approx(2 * (raw[1] - raw[0]), rel=1e-9)


def test_unseen_categories_score_like_missing_values(fitted):
    model, X, _ = fitted
    assert model.levels_["source"][-1] == MISSING_LEVEL  # training had missing sources
    lead = X.iloc[[0]]
    unseen = model.contributions(lead.assign(source="billboard"))[0][0, 1]
    missing = model.contributions(lead.assign(source=None))[0][0, 1]
    trained_missing = model.contributions(X[X["source"].isna()].iloc[[0]])[0][0, 1]
    assert unseen == missing == trained_missing != 0.0


def test_without_missing_levels_an_unseen_category_contributes_nothing(fitted):
    model, X, _ = fitted
    assert MISSING_LEVEL not in model.levels_["industry"]  # industry had no gaps
    for value in ("aerospace", None, np.nan):
        contributions, _ = model.contributions(X.iloc[[0]].assign(industry=value))
        assert contributions[0, 0] == 0.0
    assert np.isfinite(model.raw_score(X.iloc[[0]].assign(industry="aerospace"))).all()


def test_missing_numbers_get_their_own_indicator_when_training_had_gaps(fitted):
    model, X, _ = fitted
    assert model.numeric_indicators_ == {"employees": False, "visits": True}
    assert "visits missing" in list(model.columns_)
    lead = X.iloc[[0]]
    as_nan = model.contributions(lead.assign(visits=np.nan))[0][0, 3]
    as_text = model.contributions(lead.assign(visits="n/a"))[0][0, 3]  # non-numeric = missing
    as_inf = model.contributions(lead.assign(visits=np.inf))[0][0, 3]
    trained_missing = model.contributions(X[X["visits"].isna()].iloc[[0]])[0][0, 3]
    assert as_nan == as_text == as_inf == pytest.approx(trained_missing, abs=1e-12)
    # employees had no gaps: a missing value is imputed with the mean and says nothing
    assert model.contributions(lead.assign(employees=np.nan))[0][0, 2] == pytest.approx(0.0)


def test_probabilities_are_calibrated_on_the_newest_rows_and_empty_input_works(fitted):
    model, X, _ = fitted
    p = model.predict_proba(X)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1.0)
    assert ((p[:, 1] > 0) & (p[:, 1] < 1)).all()
    np.testing.assert_allclose(p[:, 1], model.calibrated(model.raw_score(X)))
    empty = X.iloc[:0]
    assert model.raw_score(empty).shape == (0,) and model.calibrated(np.empty(0)).shape == (0,)
    contributions, expected = model.contributions(empty)
    assert contributions.shape == (0, 4) and expected == model.regression_.intercept_[0]
    assert model.explainer() is None


def test_fit_refuses_one_class_and_a_calibration_slice_without_both():
    X, y = _frame(200)
    with pytest.raises(ValueError, match="one class only"):
        LogisticLeadModel(CATEGORICAL, NUMERIC).fit(X, np.zeros(200, dtype=int))
    late_zeros = y.copy()
    late_zeros[-60:] = 0
    with pytest.raises(ValueError, match="calibration slice"):
        LogisticLeadModel(CATEGORICAL, NUMERIC, calibration_fraction=0.2).fit(X, late_zeros)
    with pytest.raises(KeyError, match="visits"):
        LogisticLeadModel(CATEGORICAL, NUMERIC).fit(X.drop(columns="visits"), y)


def test_make_model_dispatches_on_kind_and_the_model_clones():
    config = ModelConfig(kind="logistic", logistic={"C": 0.05}, calibration="isotonic", seed=3)
    model = make_model(config, ["industry"], ["employees"])
    assert isinstance(model, LogisticLeadModel)
    assert (model.C, model.calibration, model.random_state) == (0.05, "isotonic", 3)
    assert model.features == ["industry", "employees"]
    assert clone(model).get_params() == model.get_params()  # segments clone the base model
    assert isinstance(make_model(ModelConfig(), ["industry"], ["employees"]), LeadModel)
    X, y = _frame()
    isotonic = model.fit(X, y).predict_proba(X)[:, 1]
    assert isinstance(model.calibrator_, Isotonic)
    assert isotonic.min() >= 0.0 and isotonic.max() <= 1.0 and len(np.unique(isotonic)) > 3


def test_the_fitted_model_round_trips_through_skops_with_the_trusted_types(fitted):
    import skops.io as sio

    from leadscore.pipelines.tracking import TRUSTED_TYPES

    model, X, _ = fitted
    loaded = sio.loads(sio.dumps(model), trusted=TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.contributions(X)[0], model.contributions(X)[0])
