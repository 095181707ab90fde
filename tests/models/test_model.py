"""The fitted model and its explanations on a small synthetic CRM (no Prefect, no MLflow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leadscore.models.scoring import score_frame
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
    # sub-scores are the family sums of the contributions; lead age (family lifecycle)
    # is in neither
    contributions, _expected = model.contributions(
        X_open.set_index("lead_id").loc[scores["lead_id"]].reset_index()
    )
    age = contributions[:, list(model.features).index("lead_age_days")]
    assert np.abs(age).max() > 0.01
    np.testing.assert_allclose(
        scores["fit"] + scores["engagement"] + age, contributions.sum(axis=1), atol=1e-3
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


def test_the_matrix_path_scores_as_lightgbm_reads_the_encoded_frame(fitted):
    """raw_score and contributions read the float matrix built without the Categorical
    frame: they must equal LightGBM's own reading of ``_encode``'s frame, whatever the
    text columns' dtype (object, Arrow, category), with unseen, missing and non-numeric
    values."""
    _, _, model, _, X_open, _ = fitted
    X = X_open.copy()
    industry = X["industry"].astype(object)
    industry.iloc[:20] = "never-seen-industry"
    industry.iloc[20:40] = None
    X["industry"] = industry
    X["country"] = X["country"].astype("category")
    X["seniority"] = X["seniority"].astype("string[pyarrow]")
    X.loc[X.index[:5], "seniority"] = None
    employees = X["employees"].astype(object)
    employees.iloc[:10] = "n/a"
    X["employees"] = employees
    frame = model._encode(X)
    assert frame["industry"].isna().sum() >= 40 and frame["employees"].isna().sum() >= 10
    np.testing.assert_array_equal(model.raw_score(X), model.booster_.predict(frame, raw_score=True))
    reference = model.booster_.predict(frame, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(model.contributions(X)[0], reference, atol=1e-9)


def test_monotone_rules_first_match_wins_and_unnamed_features_stay_free():
    from leadscore.models.factory import monotone_directions

    rules = {"days_since_unsubscribe": 1, "*unsubscribe*": -1, "*other*": 0, "n_*": 1}
    numeric = ["employees", "n_demo_request_7d", "n_unsubscribe_7d", "days_since_unsubscribe"]
    assert monotone_directions(rules, [*numeric, "n_other_7d"]) == {
        "n_demo_request_7d": 1,
        "n_unsubscribe_7d": -1,
        "days_since_unsubscribe": 1,
        "n_other_7d": 0,  # named, so isolated with behaviour, but free
    }


def test_shipped_monotone_rules_are_the_registry_directions(fitted):
    """leadscore.yaml's model.monotone patterns give every feature the direction the
    feature registry declares for it (from activity points), and name no fit feature."""
    from leadscore.models.factory import monotone_directions

    settings, registry, _, _, _, _ = fitted
    numeric = registry.names_of(kind="numeric")
    resolved = monotone_directions(settings.model.monotone.directions, numeric)
    declared = registry.directions()
    assert {n: d for n, d in resolved.items() if d} == {n: d for n, d in declared.items() if d}
    behaviour = registry.names_of(kind="numeric", family="engagement")
    assert set(resolved) == {*behaviour, *registry.names_of(kind="numeric", family="lifecycle")}
    assert resolved["days_since_meeting_booked"] == -1 and resolved["n_unsubscribe_30d"] == -1


def test_the_booster_honours_every_declared_direction(fitted):
    _, _, model, _, X_open, _ = fitted
    directions = {n: d for n, d in model.monotone.items() if d}
    assert len(directions) > 40
    params = model.booster_.get_params()
    assert params["monotone_constraints"] == [directions.get(n, 0) for n in model.features]
    base = model.raw_score(X_open)
    for name, direction in directions.items():
        for step in (1.0, 30.0):
            moved = model.raw_score(X_open.assign(**{name: X_open[name] + step})) - base
            assert (direction * moved >= -1e-9).all(), (name, step, moved.min(), moved.max())


def test_isolated_behaviour_contributions_ignore_fit_features(fitted):
    """With ``isolate``, behaviour features share no tree with fit features: changing a
    lead's profile moves its fit contributions and leaves its engagement ones exactly."""
    _, registry, model, _, X_open, _ = fitted
    engagement = np.array([registry[n].family == "engagement" for n in model.features])
    before, _ = model.contributions(X_open)
    changed = X_open.assign(seniority="student", country="NG", company_size="1-10")
    after, _ = model.contributions(changed)
    np.testing.assert_allclose(after[:, engagement], before[:, engagement], atol=1e-9)
    assert np.abs(after[:, ~engagement] - before[:, ~engagement]).max() > 0.1


def test_scores_carry_sub_scores_cells_rule_rank_and_rule_reasons(fitted):
    settings, registry, model, rules, X_open, leads = fitted
    scores = score_frame(X_open, model, rules, registry, settings.scoring, leads)
    # sub-scores 0-100 follow the log-odds sums they are percentiles of
    for family in ("fit", "engagement"):
        ordered = scores.sort_values([family, f"{family}_score"])[f"{family}_score"]
        assert ordered.between(0, 100).all() and ordered.is_monotonic_increasing
    cut = settings.scoring.cells
    fit_high = scores["fit_score"] >= cut.fit
    eng_high = scores["engagement_score"] >= cut.engagement
    expected = np.select(
        [fit_high & eng_high, fit_high, eng_high],
        ["call_now", "nurture", "educate"],
        "deprioritise",
    )
    assert scores["cell"].tolist() == expected.tolist()
    # rule_rank orders the leads by their unclipped points (1 = most)
    by_rule = scores.sort_values("rule_rank")
    assert by_rule["rule_rank"].tolist() == list(range(1, len(scores) + 1))
    assert by_rule["rule_score"].is_monotonic_decreasing
    # the rules' breakdown, largest first, adds up to the rule score
    for raw, total in zip(scores["rule_reasons"], scores["rule_score"], strict=True):
        reasons = json.loads(raw)
        sizes = [abs(r["points"]) for r in reasons]
        assert reasons and sizes == sorted(sizes, reverse=True)
        assert sum(r["points"] for r in reasons) == pytest.approx(total, abs=0.05)
