"""Quality targets: point values equal the metrics, intervals resample leads, verdicts follow
the bound."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.models.config import QualityTargets
from leadscore.models.evaluate import expected_calibration_error
from leadscore.models.quality import assess, lead_resamples, weighted_roc_auc


def _window(n: int = 3000, seed: int = 0, per_lead: int = 1):
    """Rows of a validation window: a strong and a weak score of one hidden propensity."""
    rng = np.random.default_rng(seed)
    leads = n // per_lead
    z = rng.normal(size=leads)
    p_lead = 1 / (1 + np.exp(-(z * 1.5 - 2)))
    y = np.repeat((rng.random(leads) < p_lead).astype(int), per_lead)
    groups = np.repeat(np.array([f"L{i}" for i in range(leads)]), per_lead)
    strong = np.repeat(z + rng.normal(0, 0.5, leads), per_lead)
    weak = np.repeat(np.round(z + rng.normal(0, 1.5, leads)), per_lead)  # ties, like points
    return y, groups, strong, weak, np.repeat(p_lead, per_lead)


def test_weighted_roc_auc_equals_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.normal(size=500) + y, 1)  # many ties
    weights = rng.integers(0, 4, 500).astype(float)
    assert weighted_roc_auc(y, score, weights) == pytest.approx(
        roc_auc_score(y, score, sample_weight=weights), abs=1e-12
    )
    assert weighted_roc_auc(y, score, np.ones(500)) == pytest.approx(roc_auc_score(y, score))


def test_resamples_draw_whole_leads():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    weights = lead_resamples(groups, 50, seed=3)
    assert weights.shape == (50, 6)
    # a lead's rows always weigh the same, and each draw picks three leads
    assert (weights[:, 0] == weights[:, 1]).all()
    assert (weights[:, 3] == weights[:, 4]).all() and (weights[:, 4] == weights[:, 5]).all()
    assert (weights[:, [0, 2, 3]].sum(axis=1) == 3).all()
    assert np.array_equal(weights, lead_resamples(groups, 50, seed=3))
    assert not np.array_equal(weights, lead_resamples(groups, 50, seed=4))


def test_point_values_are_the_window_metrics_and_verdicts_follow_the_bounds():
    y, groups, strong, weak, p = _window()
    margin = roc_auc_score(y, strong) - roc_auc_score(y, weak)
    gap = roc_auc_score(y, p) - roc_auc_score(y, strong)
    ece = expected_calibration_error(y, p)
    targets = QualityTargets(
        min_roc_auc=0.99,  # missed
        min_margin_over_rules=margin - 0.01,  # met
        max_oracle_gap=gap / 2,  # missed
        max_calibration_error=ece + 0.01,  # met
        resamples=100,
    )
    results = {t.name: t for t in assess(targets, y, groups, strong, p, weak, p)}
    assert list(results) == [
        "roc_auc",
        "model_minus_rules_roc_auc",
        "oracle_minus_model_roc_auc",
        "ece",
    ]
    assert results["roc_auc"].value == pytest.approx(roc_auc_score(y, strong), abs=1e-12)
    assert results["model_minus_rules_roc_auc"].value == pytest.approx(margin, abs=1e-12)
    assert results["oracle_minus_model_roc_auc"].value == pytest.approx(gap, abs=1e-12)
    assert results["ece"].value == pytest.approx(ece, abs=1e-12)
    assert [r.met for r in results.values()] == [False, True, False, True]
    for r in results.values():
        assert r.low < r.value < r.high
    as_dict = results["oracle_minus_model_roc_auc"].as_dict()
    assert as_dict["rule"] == f"<= {gap / 2:g}" and as_dict["met"] is False


def test_oracle_target_is_skipped_without_an_oracle_and_none_configured_is_nothing():
    y, groups, strong, weak, p = _window(500)
    none = QualityTargets(
        min_margin_over_rules=None, max_oracle_gap=None, max_calibration_error=None
    )
    only_oracle = none.model_copy(update={"max_oracle_gap": 0.01, "resamples": 10})
    assert assess(only_oracle, y, groups, strong, p, weak, None) == []
    assert assess(none, y, groups, strong, p, weak, p) == []


def test_identical_scores_have_a_zero_interval():
    y, groups, strong, _, p = _window(800)
    (result,) = assess(
        QualityTargets(min_margin_over_rules=0.0, max_calibration_error=None, resamples=50),
        y,
        groups,
        strong,
        p,
        strong,
    )
    assert (result.value, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.met


def test_interval_resamples_leads_not_rows():
    """Five snapshots per lead carry one lead's information: the interval must be as wide
    as for one row per lead, not sqrt(5) times narrower as a row bootstrap would make it."""
    targets = QualityTargets(
        min_margin_over_rules=0.0, max_calibration_error=None, resamples=400, seed=11
    )

    def width(per_lead: int) -> float:
        y, groups, strong, weak, p = _window(2000 * per_lead, seed=5, per_lead=per_lead)
        (result,) = assess(targets, y, groups, strong, p, weak)
        return result.high - result.low

    single, repeated = width(1), width(5)
    assert repeated == pytest.approx(single, rel=0.2)
    y, _, strong, weak, p = _window(10_000, seed=5, per_lead=5)
    (naive,) = assess(targets, y, np.arange(len(y)), strong, p, weak)
    assert naive.high - naive.low < 0.6 * repeated  # what pretending rows are leads gives
