"""``model.kind: auto``: the family chosen on an inner slice of the training rows only.

Small constructed problems where one family truly wins (a drifting linear signal: the
line extrapolates, trees go flat; an interaction of two bands: trees see it, a line cannot), the
validation rows never read (poisoned labels change nothing), the inner slice cut like the
outer split (newest rows, embargo; stratified when there is no order), the tie rule, and
what the report and the run say.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy.special import expit

from leadscore.features.config import AttributeConfig, FeatureConfig
from leadscore.features.registry import build_registry
from leadscore.features.snapshots import LABEL, Snapshots, Split
from leadscore.models import recipe, selection, training
from leadscore.models.config import ModelConfig
from leadscore.models.factory import LeadModel, candidate_models
from leadscore.models.linear import LogisticLeadModel
from leadscore.models.selection import SliceSpec, choose, inner_slice

N = 3000
CONFIG = ModelConfig(lightgbm={"n_estimators": 40, "min_child_samples": 20}, seed=3)
FEATURES = FeatureConfig(attributes=AttributeConfig(categorical=["colour"], numeric=["a", "b"]))
REGISTRY = build_registry(FEATURES, behaviour=False)
BY_ROWS = SliceSpec("rows")


def _frame(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(len(a))],
            "colour": rng.choice(["red", "blue", "green"], size=len(a)),  # pure noise
            "a": a,
            "b": b,
        }
    )


def drifting_line(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Conversion follows ``a`` on a line while ``a`` drifts up over time (oldest first):
    the newest rows sit beyond most training values, where trees predict flat."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 0.4, N) + np.linspace(0, 6, N)
    y = (rng.uniform(size=N) < expit(1.5 * (a - 4))).astype(np.int64)
    return _frame(a, rng.normal(size=N), rng), y


def interaction(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Conversion when ``a`` and ``b`` are both near zero: a box no line can rank."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=N), rng.normal(size=N)
    box = (np.abs(a) < 0.7) & (np.abs(b) < 0.7)
    y = (rng.uniform(size=N) < expit(6 * box - 2.5)).astype(np.int64)
    return _frame(a, b, rng), y


def _select(X: pd.DataFrame, y: np.ndarray, spec: SliceSpec = BY_ROWS) -> dict:
    inner = inner_slice(y, None, spec, 0.2, seed=3)
    candidates = candidate_models(CONFIG, ["colour"], ["a", "b"])
    return selection.select(candidates, X, y, inner)


def test_a_drifting_line_chooses_the_logistic_model():
    evidence = _select(*drifting_line())
    scores = evidence["scores"]
    assert evidence["chosen"] == "logistic" and evidence["reason"] == "the best inner score"
    assert scores["logistic"] > max(scores["lightgbm"], scores["lightgbm_regularised"]) + 0.02
    assert evidence["slice"] == "the last 20% of the training rows (file order)"
    assert (evidence["inner_train_rows"], evidence["inner_rows"]) == (2400, 600)


def test_an_interaction_chooses_lightgbm():
    evidence = _select(*interaction(), SliceSpec("random"))
    scores = evidence["scores"]
    assert evidence["chosen"] in {"lightgbm", "lightgbm_regularised"}
    assert scores[evidence["chosen"]] > scores["logistic"] + 0.3
    assert evidence["slice"] == "a stratified random 20% of the training rows (no order)"


def test_the_choice_never_reads_the_validation_rows():
    """Poisoned validation labels (every one flipped) and features change nothing."""
    X, y = drifting_line()
    n_valid = 500
    rows = pd.DataFrame({"lead_id": X["lead_id"], "as_of": pd.NaT, LABEL: y})
    split = Split(np.arange(N - n_valid), np.arange(N - n_valid, N), "out_of_time", pd.NaT, pd.NaT)
    clean = recipe.TrainingData(Snapshots(rows, 0, pd.NaT), split, X, y, REGISTRY)
    poisoned_y = y.copy()
    poisoned_y[split.valid] = 1 - poisoned_y[split.valid]
    poisoned_X = X.copy()
    poisoned_X.loc[split.valid, "a"] = -poisoned_X.loc[split.valid, "a"]
    poisoned = recipe.TrainingData(
        Snapshots(rows, 0, pd.NaT), split, poisoned_X, poisoned_y, REGISTRY
    )
    a, b = recipe.fit_model(clean, CONFIG), recipe.fit_model(poisoned, CONFIG)
    assert isinstance(a, LogisticLeadModel) and a.selection_ == b.selection_
    assert a.selection_["inner_train_rows"] + a.selection_["inner_rows"] == N - n_valid
    np.testing.assert_array_equal(a.predict_proba(X)[:, 1], b.predict_proba(X)[:, 1])
    # what the report's table says
    family = recipe.window_context(clean, a, CONFIG)["model family"]
    assert family.startswith("logistic regression (auto: inner ROC-AUC ")
    assert "regularised vs" in family and "configured on the last 20% of the training" in family
    assert family.endswith("; the best inner score)")


def test_the_choice_is_deterministic_for_a_seed():
    X, y = interaction(seed=1)
    first, second = _select(X, y, SliceSpec("random")), _select(X, y, SliceSpec("random"))
    assert first["chosen"] == second["chosen"] and first["slice"] == second["slice"]
    assert first["scores"] == pytest.approx(second["scores"], abs=1e-12)
    a = inner_slice(y, None, SliceSpec("random"), 0.2, seed=1)
    b = inner_slice(y, None, SliceSpec("random"), 0.2, seed=1)
    c = inner_slice(y, None, SliceSpec("random"), 0.2, seed=2)
    np.testing.assert_array_equal(a.valid, b.valid)
    assert not np.array_equal(a.valid, c.valid)
    # stratified: the slice converts at the training rows' rate, to one row
    assert abs(y[a.valid].sum() - 0.2 * y.sum()) <= 1


def test_snapshots_are_judged_on_the_newest_rows_after_the_horizon_embargo():
    """Whole as-of times on each side; inner-training labels all known before the slice."""
    grid = pd.date_range("2025-01-05", periods=30, freq="14D", tz="UTC")
    as_of = pd.Series(np.repeat(grid, 100))
    y = np.tile(np.r_[np.ones(10), np.zeros(90)], 30).astype(np.int64)
    inner = inner_slice(y, as_of, SliceSpec("time", pd.Timedelta(days=90)), 0.2)
    start = as_of.iloc[inner.valid].min()
    assert start == grid[24] and as_of.iloc[inner.valid].max() == grid[-1]  # newest 6 of 30
    assert as_of.iloc[inner.train].max() == grid[17]  # 24 - 17 = 7 steps of 14 >= 90 days
    assert start - as_of.iloc[inner.train].max() >= pd.Timedelta(days=90)
    assert len(inner.train) == 1800 and len(inner.valid) == 600
    assert inner.description == (
        "the newest 20% of the training rows (from 2025-12-07), inner training rows ending "
        "90 days before (the horizon embargo)"
    )
    # no embargo given (SliceSpec("time")): the slice's first time starts it
    flat = inner_slice(y, as_of, SliceSpec("time"), 0.2)
    assert len(flat.train) == 2400 and as_of.iloc[flat.train].max() == grid[23]


def test_the_outer_split_decides_how_the_inner_slice_is_cut():
    day = pd.Timestamp("2026-01-01", tz="UTC")
    snapshot = Split(np.arange(2), np.arange(2), "out_of_time", day, day - pd.Timedelta(days=90))
    assert recipe.inner_order(snapshot) == SliceSpec("time", pd.Timedelta(days=90))
    assert recipe.inner_order(replace(snapshot, train_end=day)) == SliceSpec("time")
    by_rows = replace(snapshot, valid_start=pd.NaT, train_end=pd.NaT)
    assert recipe.inner_order(by_rows) == SliceSpec("rows")
    assert recipe.inner_order(replace(by_rows, kind="random")) == SliceSpec("random")


def test_within_the_margin_the_simpler_model_wins():
    scores = {"logistic": 0.900, "lightgbm_regularised": 0.9015, "lightgbm": 0.902}
    assert choose(scores, 0.002)[0] == "logistic"
    chosen, why = choose(scores, 0.001)
    assert chosen == "lightgbm_regularised"
    assert why == "within 0.001 of the best (lightgbm 0.9020): the simpler model wins the tie"
    assert choose({"logistic": None, "lightgbm": 0.7}, 0.002) == (
        "lightgbm",
        "the best inner score",
    )
    with pytest.raises(ValueError, match="no candidate could be judged"):
        choose({"logistic": None}, 0.002)


def test_too_few_rows_to_judge_keep_the_configured_lightgbm():
    X, y = interaction()
    config = CONFIG.model_copy(
        update={"selection": CONFIG.selection.model_copy(update={"min_class_rows": 10_000})}
    )
    model = training.fit_model(X, y, REGISTRY, config)
    assert type(model) is LeadModel and model.selection_["chosen"] is None
    assert model.selection_["scores"] == dict.fromkeys(candidate_models(CONFIG, [], []))
    assert model.selection_["reason"].startswith("too few rows to judge")
    assert recipe.model_family(model, config).startswith(
        "LightGBM, configured (auto: too few rows to judge"
    )


def test_model_kind_auto_is_the_default_and_is_validated():
    assert ModelConfig().kind == "auto" and ModelConfig(kind="logistic").kind == "logistic"
    assert ModelConfig().selection.regularised["num_leaves"] == 4
    for bad in (
        {"kind": "xgboost"},
        {"selection": {"margin": -0.1}},
        {"selection": {"inner_fraction": 0.5}},
        {"selection": {"inner_share": 0.2}},
    ):
        with pytest.raises(ValidationError):
            ModelConfig(**bad)
    params = recipe.learner_params(ModelConfig())
    assert params["lgbm_num_leaves"] == 7 and params["lgbm_regularised_num_leaves"] == 4
    assert params["logistic_C"] == 1.0 and params["selection_margin"] == 0.002
    assert "lgbm_regularised_num_leaves" not in recipe.learner_params(ModelConfig(kind="lightgbm"))
    regularised = candidate_models(ModelConfig(), [], ["a"])["lightgbm_regularised"]
    assert regularised.lgbm_params["min_child_samples"] == 200
    assert regularised.lgbm_params["n_estimators"] == 200  # the configured rest


def test_a_gap_that_leaves_no_conversions_is_judged_without_it():
    """A short history with a long horizon: the gapped inner split has too few converting
    inner-training rows, so the families are judged without the gap (still training rows
    only) rather than the configured LightGBM kept unjudged; the evidence says so."""
    X, y = drifting_line()
    X = X.assign(as_of=pd.date_range("2025-01-01", periods=N, freq="3h", tz="UTC"))
    gapped = SliceSpec("time", pd.Timedelta(days=200))
    inner = inner_slice(y, X["as_of"], gapped, 0.2)
    assert y[inner.train].sum() < 20  # the gap leaves too few conversions to judge
    model = training.fit_model(X, y, REGISTRY, CONFIG, order=gapped)
    evidence = model.selection_
    assert isinstance(model, LogisticLeadModel) and evidence["chosen"] == "logistic"
    assert evidence["reason"].startswith("the best inner score, judged without the horizon gap")
    assert "with it, too few rows to judge" in evidence["reason"]
    assert evidence["inner_train_rows"] == 2400 and "embargo" not in evidence["slice"]
