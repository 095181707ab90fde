"""Fast explanations are exact: same SHAP values as shap.TreeExplainer, same reason texts.

``models.treeshap`` replaces LightGBM's per-row TreeSHAP with precomputed tables; these
tests pin that the numbers do not move (<= 1e-6, in practice ~1e-14) on the real model
and on trees with every kind of split (categorical sets, NaN and zero missing types,
default directions), through both kernels; and that the vectorised reason rendering
gives, byte for byte, the JSON the plain per-row ``render`` + ``json.dumps`` would.
"""

from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from bench.plain import rowwise_reasons
from leadscore.models.explain import reason_codes
from leadscore.models.treeshap import FastTreeShap, shap_values
from tests.conftest import ROOT, train_small_model

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def fitted():
    m = train_small_model(1500, seed=5, all_leads_open=True)
    return m.settings, m.registry, m.model, m.X_open


def test_contributions_match_shap_tree_explainer(fitted):
    os.environ.setdefault("MPLCONFIGDIR", str(ROOT / ".mplconfig"))
    import shap

    _, _, model, X_open = fitted
    sample = X_open.iloc[:400]
    fast, expected = model.contributions(sample)
    explainer = shap.TreeExplainer(model.booster_)
    reference = explainer.shap_values(model._encode(sample))
    reference = reference[1] if isinstance(reference, list) else reference
    assert model.explainer() is not None and model.explainer().kernel == "signatures"
    assert fast.shape == reference.shape
    assert np.abs(fast - reference).max() <= TOLERANCE
    assert abs(expected - float(np.ravel(explainer.expected_value)[-1])) <= TOLERANCE
    # and the values add up to LightGBM's own raw score
    assert np.abs(fast.sum(axis=1) + expected - model.raw_score(sample)).max() <= TOLERANCE


def _awkward_model(num_leaves: int) -> tuple[lgb.Booster, pd.DataFrame, np.ndarray]:
    """A booster with categorical splits, NaNs, zero-missing splits and repeated features."""
    rng = np.random.default_rng(0)
    n = 4000
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, size=n).astype(float),
            "z": rng.choice([0.0, 1.0, 2.0, np.nan], n),
            "c": pd.Categorical(rng.choice(list("uvwxyz"), n)),
        }
    )
    X.loc[::7, "a"] = np.nan
    X.loc[::11, "c"] = np.nan
    signal = X["a"].fillna(1.0) + 0.3 * X["b"] + (X["c"] == "x") - (X["z"] == 0)
    y = (signal + rng.normal(size=n) > 0.5).astype(int)
    params = {"min_child_samples": 5, "min_data_per_group": 5, "cat_smooth": 1}
    model = lgb.LGBMClassifier(
        n_estimators=40, num_leaves=num_leaves, verbosity=-1, zero_as_missing=False, **params
    ).fit(X, y)
    matrix = np.column_stack(
        [X["a"], X["b"], X["z"], X["c"].cat.codes.replace(-1, np.nan).astype(float)]
    )
    return model.booster_, X, matrix


@pytest.mark.parametrize("num_leaves", [6, 40])
def test_both_kernels_match_lightgbm_on_every_kind_of_split(num_leaves):
    booster, X, matrix = _awkward_model(num_leaves)
    reference = booster.predict(X, pred_contrib=True)
    explainer = FastTreeShap(booster.dump_model())
    expected_kernel = "signatures" if num_leaves <= 17 else "leaves"
    assert explainer.kernel == expected_kernel
    kinds = {n["decision_type"] for n in _nodes(booster.dump_model())}
    assert kinds == {"<=", "=="}
    assert np.abs(explainer.shap_values(matrix) - reference[:, :-1]).max() <= TOLERANCE
    leaves = shap_values(explainer.tables, matrix)
    assert np.abs(leaves - reference[:, :-1]).max() <= TOLERANCE
    assert abs(explainer.expected_value - reference[0, -1]) <= TOLERANCE


def _nodes(dump: dict) -> list[dict]:
    out, stack = [], [t["tree_structure"] for t in dump["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            out.append(node)
            stack += [node["left_child"], node["right_child"]]
    return out


def test_vectorised_reasons_equal_the_per_row_rendering(fitted):
    settings, registry, model, X_open = fitted
    sample = X_open.iloc[:600].copy()
    sample.loc[sample.index[:5], "industry"] = None  # "unknown" texts
    contributions, _ = model.contributions(sample)
    names = model.features
    fast = reason_codes(contributions, sample, names, registry, settings.scoring)
    assert fast == rowwise_reasons(contributions, sample, names, registry, settings.scoring)
    assert any('"direction": "-"' in r for r in fast)
    assert reason_codes(contributions[:0], sample.iloc[:0], names, registry, settings.scoring) == []
