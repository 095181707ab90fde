"""The fitted model and its explanations on a small synthetic CRM (no Prefect, no MLflow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.scoring import score_frame
from tests.conftest import train_small_model


@pytest.fixture(scope="module")
def fitted():
    m = train_small_model(1500, seed=11)
    return m.settings, m.registry, m.model, m.rules, m.X_open, m.crm.leads


def test_contributions_add_up_to_the_raw_score(fitted):
    _, _, model, _, X_open, _ = fitted
    contributions, expected = model.contributions(X_open)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + expected, model.raw_score(X_open), atol=1e-6
    )


def test_scores_are_complete_ordered_and_explained(fitted):
    settings, registry, model, rules, X_open, leads = fitted
    scores = score_frame(X_open, model, rules, registry, settings.scoring, leads)
    assert len(scores) == len(X_open) and scores["lead_id"].is_unique
    assert scores["rank"].tolist() == list(range(1, len(scores) + 1))
    assert scores["probability"].between(0, 1).all()
    assert (scores["score"] == np.rint(scores["probability"] * 100)).all()
    assert scores.loc[0, "percentile"] == 100 and scores["percentile"].iloc[-1] == 0
    # sub-scores are the family sums of the contributions
    contributions, _expected = model.contributions(
        X_open.set_index("lead_id").loc[scores["lead_id"]].reset_index()
    )
    np.testing.assert_allclose(
        scores["fit"] + scores["engagement"], contributions.sum(axis=1), atol=1e-3
    )
    for raw in scores["reasons"]:
        reasons = json.loads(raw)
        pos = [r["contribution"] for r in reasons if r["direction"] == "+"]
        neg = [r["contribution"] for r in reasons if r["direction"] == "-"]
        assert len(pos) <= 3 and len(neg) <= 2
        assert all(c > 0 for c in pos) and pos == sorted(pos, reverse=True)
        assert all(c < 0 for c in neg) and neg == sorted(neg)
        assert all(r["text"] and "{" not in r["text"] for r in reasons)


def test_the_model_is_invariant_to_row_order_and_lead_id(fitted):
    _, _, model, _, X_open, _ = fitted
    p = model.predict_proba(X_open)[:, 1]
    shuffled = X_open.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(model.predict_proba(shuffled)[:, 1], p[shuffled.index])
    renamed = X_open.assign(lead_id="someone-else")
    np.testing.assert_array_equal(model.predict_proba(renamed)[:, 1], p)


def test_unseen_categories_score_like_missing_values(fitted):
    _, _, model, _, X_open, _ = fitted
    unseen = X_open.assign(industry="never-seen-industry")
    missing = X_open.assign(industry=None)
    np.testing.assert_allclose(model.predict_proba(unseen), model.predict_proba(missing))
