"""The points baseline and the metrics, on values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.models.config import AttributePenalty, IcpAttributeRule, RulesConfig
from leadscore.models.evaluate import evaluate, lift_and_capture
from leadscore.models.rules import RuleScorer, grade_of

RULES = RulesConfig(
    icp={
        "industry": IcpAttributeRule(weight=3, values={"software": 10, "retail": 4}, default=2),
        "seniority": IcpAttributeRule(weight=1, values={"vp": 8}, default=0),
    },
    icp_points=50,
    activity_window_days=90,
    penalties=[AttributePenalty(attribute="country", not_in=["US", "GB"], points=-10)],
    grades={"A": 60, "B": 40, "C": 20, "D": float("-inf")},
)
POINTS = {"meeting_booked": 10, "webinar_signup": 8, "unsubscribe": -5}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "industry": ["software", "retail", None, "software"],
            "seniority": ["vp", "vp", "intern", None],
            "country": ["US", "BR", "GB", "US"],
            "n_meeting_booked_90d": [1, 0, 0, 5],
            "n_webinar_signup_90d": [1, 2, 0, 3],
            "n_unsubscribe_90d": [0, 1, 3, 0],
        }
    )


def test_rule_points_by_hand():
    scorer = RuleScorer(rules=RULES, activity_points=POINTS).fit(_frame())
    # row 0: icp (3*10 + 1*8)/4 = 9.5 -> 47.5 pts; + 10 + 8 = 65.5
    # row 1: icp (3*4 + 8)/4 = 5 -> 25; + 16 - 5 - 10 (BR) = 26
    # row 2: icp (3*2 + 0)/4 = 1.5 -> 7.5; - 15 = -7.5 (not clipped: points rank leads)
    # row 3: icp (30 + 0)/4 = 7.5 -> 37.5; + 50 + 24 = 111.5 (not clipped at 100)
    np.testing.assert_allclose(scorer.points(_frame()), [65.5, 26.0, -7.5, 111.5])
    assert scorer.grades(_frame()).tolist() == ["A", "C", "D", "A"]


def test_grade_cutoffs_are_inclusive_minimums():
    cutoffs = {"A": 60, "B": 40, "C": 20, "D": float("-inf")}
    assert grade_of(np.array([60, 59.9, 40, 20, 19.99, -5]), cutoffs).tolist() == [
        "A",
        "B",
        "B",
        "C",
        "D",
        "D",
    ]


def test_rules_probability_is_the_observed_rate_by_points():
    X = _frame()
    y = np.array([1, 0, 0, 1])
    p = RuleScorer(rules=RULES, activity_points=POINTS).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_allclose(p, [1, 0, 0, 1])


def test_lift_and_capture_split_ties_fairly():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0] * 10)  # 20% positives
    flat = np.ones(len(y))  # one big tie: top 10% holds the base rate
    lift, capture = lift_and_capture(y, flat)
    assert lift == pytest.approx(1.0)
    assert capture == pytest.approx(0.1)
    perfect = y.astype(float)
    lift, capture = lift_and_capture(y, perfect)
    assert lift == pytest.approx(5.0)  # top 10% all positive, base rate 20%
    assert capture == pytest.approx(0.5)


def test_evaluate_reports_every_metric():
    y = np.array([0, 0, 1, 1])
    m = evaluate(y, np.array([0.1, 0.4, 0.35, 0.8]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert set(m) == {"roc_auc", "pr_auc", "brier", "lift_top10", "capture_top10"}
