"""Fast explanations are exact: same SHAP values as shap.TreeExplainer, same reason texts.

``models.treeshap`` replaces LightGBM's per-row TreeSHAP with precomputed tables; these
tests pin that the numbers do not move (<= 1e-6, in practice ~1e-14) on the real model
and on trees with every kind of split (categorical sets, NaN and zero missing types,
default directions), through both kernels; that the vectorised reasons give, byte for
byte, the JSON a plain per-row concept sum, sign rule and ``reasons.encode`` would; and
that every open lead of the demo's CRM reads in the rep's words.
"""

from __future__ import annotations

import json
import os
import re

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


def test_every_open_demo_lead_reads_in_the_reps_words(fitted):
    """Over every open lead of the demo's synthetic CRM (its size and seed): no reason's
    sign contradicts its concept's direction (the "did it" form of a good activity is never
    a negative reason, its absence never a positive one; the reverse for unsubscribe), no
    reason names a derived statistic, and lead age reads as lead age, never as engagement."""
    from leadscore.features.builder import build_features, entities_at
    from leadscore.models.explain import concept_contributions, family_sums, shares
    from leadscore.synthetic import generate_crm

    settings, registry, model, _ = fitted
    crm = generate_crm(settings.synthetic.leads, seed=settings.synthetic.seed)
    leads = crm.leads
    end = leads["created_at"].max().floor("D") + pd.Timedelta(days=1)
    open_leads = leads[leads["status"] == "open"]
    assert len(open_leads) == 2955  # the demo's open leads
    X = build_features(leads, crm.activities, entities_at(open_leads, end), settings.features)
    contributions, _ = model.contributions(X)
    names = model.features
    rows = [
        json.loads(r) for r in reason_codes(contributions, X, names, registry, settings.scoring)
    ]
    concepts = registry.concepts()
    lead_age = re.compile(r"(new lead \(\d+ days?\)|lead open for \d+ (weeks?|months?))")
    checked = 0
    for reasons in rows:
        for r in reasons:
            concept = concepts[r["concept"]]
            did = not r["text"].startswith(("no ", "never "))
            if concept.direction:
                agrees = (r["direction"] == "+") == (did == (concept.direction > 0))
                assert agrees, r
                checked += 1
            assert not any(w in r["text"] for w in ("weighted", "rule points", "recency")), r
            assert ("lead_age_days" in r["features"]) == (r["concept"] == "lead_age"), r
            if r["concept"] == "lead_age":
                assert lead_age.fullmatch(r["text"]), r
    assert checked > 1000 and sum(map(len, rows)) > 2 * len(rows)
    # the rule had work to do: some activity concepts' sums contradict their direction
    found, sums = concept_contributions(contributions, names, registry)
    big = shares(sums) >= settings.scoring.min_reason_share
    contradicting = 0
    for k, concept in enumerate(found):
        if concept.direction:
            facts = concept.fact_values(lambda name: X[name].to_numpy())
            did = ~concept.absent(facts)
            wrong = np.sign(sums[:, k]) == np.where(did, -1, 1) * concept.direction
            contradicting += int((wrong & big[:, k]).sum())
    assert contradicting > 0
    # lead age is in no sub-score: fit + engagement + lifecycle (+ market) add up
    families = family_sums(contributions, names, registry)
    age = contributions[:, names.index("lead_age_days")]
    assert np.allclose(families["lifecycle"], age)
    assert np.allclose(sum(families.values()), contributions.sum(axis=1))


def test_a_model_of_one_leaf_trees_explains_as_its_constant():
    """Features that never split (a flat export whose attributes say nothing) give trees
    of one leaf, dumped as ``{"leaf_value": ...}`` alone: every contribution is 0 and the
    expected value is LightGBM's own prediction."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": np.ones(200), "b": np.zeros(200)})
    y = rng.integers(0, 2, size=200)
    booster = lgb.LGBMClassifier(n_estimators=5, verbosity=-1).fit(X, y).booster_
    assert all("split_index" not in t["tree_structure"] for t in booster.dump_model()["tree_info"])
    explainer = FastTreeShap(booster.dump_model())
    reference = booster.predict(X, pred_contrib=True)
    assert np.array_equal(explainer.shap_values(X.to_numpy()), np.zeros((200, 2)))
    assert abs(explainer.expected_value - reference[0, -1]) <= TOLERANCE
