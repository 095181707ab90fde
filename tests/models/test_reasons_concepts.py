"""Reasons by concept (models/explain.py), worked by hand on three leads: a concept's
contribution is the sum of its features' SHAP values, a reason needs a declared share of
the lead's total, and a reason's sign never contradicts its concept's direction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import ActivityType, AttributeConfig, ConceptGroup, FeatureConfig
from leadscore.features.registry import build_registry
from leadscore.models.config import ScoringConfig
from leadscore.models.explain import concept_contributions, family_sums, reason_codes

CONFIG = FeatureConfig(
    attributes=AttributeConfig(categorical=["seniority", "department"]),
    activity_types={
        "pricing": ActivityType(
            label="pricing-page view", family="web", points=5, phrase="viewed the pricing page"
        ),
        "unsubscribe": ActivityType(
            label="unsubscribe", family="email", points=-5, phrase="unsubscribed"
        ),
    },
    windows_days=[30],
    concepts={
        "role": ConceptGroup(
            attributes=["seniority", "department"], text="{seniority} in {department}"
        )
    },
)
REGISTRY = build_registry(CONFIG)
NAMES = REGISTRY.names


def _frame() -> pd.DataFrame:
    X = pd.DataFrame(0.0, index=range(3), columns=NAMES)
    X["seniority"], X["department"] = ["director", "vp", "manager"], ["it", "sales", "hr"]
    X["n_pricing_30d"] = [3.0, 0.0, 1.0]
    X["days_since_pricing"] = [1.2, 3650.0, 2.0]
    X["n_unsubscribe_30d"] = [0.0, 1.0, 0.0]
    X["days_since_unsubscribe"] = [3650.0, 4.0, 3650.0]
    X["n_other_30d"] = [2.0, 1.0, 0.0]
    X["days_since_last_activity"] = [1.2, 4.0, 2.0]
    X["lead_age_days"] = [4.0, 200.0, 30.0]
    return X


def _contributions() -> np.ndarray:
    c = np.zeros((3, len(NAMES)))
    at = {name: i for i, name in enumerate(NAMES)}
    # lead 0: pricing +0.5 split over two features, role +0.3 (0.2 + 0.1), lead age -0.4,
    #   two other activities -0.01 (0.8% of the total: under the 5% share)
    c[0, at["n_pricing_30d"]], c[0, at["days_since_pricing"]] = 0.2, 0.3
    c[0, at["seniority"]], c[0, at["department"]] = 0.2, 0.1
    c[0, at["lead_age_days"]] = -0.4
    c[0, at["n_other_30d"]] = -0.01
    # lead 1: never viewed pricing but it "helps" (+0.3): contradicts direction +1, dropped;
    #   unsubscribed and it lowers the odds (-0.6): shown
    c[1, at["decay_pricing"]] = 0.3
    c[1, at["days_since_unsubscribe"]] = -0.6
    c[1, at["seniority"]] = 0.2
    # lead 2: viewed pricing once and it lowers the odds: contradicts, not shown
    c[2, at["days_since_pricing"]] = -0.25
    c[2, at["department"]] = -0.5
    return c


def _reasons(config: ScoringConfig) -> list[list[dict]]:
    raw = reason_codes(_contributions(), _frame(), NAMES, REGISTRY, config)
    return [json.loads(r) for r in raw]


def test_concept_contribution_is_the_sum_of_its_features():
    concepts, sums = concept_contributions(_contributions(), NAMES, REGISTRY)
    keys = [c.key for c in concepts]
    assert sums[0, keys.index("pricing")] == pytest.approx(0.5)
    assert sums[0, keys.index("role")] == pytest.approx(0.3)
    assert sums[0, keys.index("lead_age")] == pytest.approx(-0.4)
    assert sums.sum(axis=1) == pytest.approx(_contributions().sum(axis=1))


def test_reasons_v2_with_shares_and_exact_features():
    lead0 = _reasons(ScoringConfig())[0]
    assert [(r["concept"], r["direction"], r["text"]) for r in lead0] == [
        ("pricing", "+", "viewed the pricing page 3 times in 30 days, last 1 day ago"),
        ("role", "+", "director in it"),
        ("lead_age", "-", "new lead (4 days)"),
    ]
    pricing = lead0[0]
    assert pricing["contribution"] == 0.5 and pricing["share"] == round(0.5 / 1.21, 3)
    assert pricing["features"] == {
        "n_pricing_30d": 0.2,
        "decay_pricing": 0.0,
        "days_since_pricing": 0.3,
    }
    assert lead0[1]["features"] == {"seniority": 0.2, "department": 0.1}


def test_the_share_threshold_is_declared():
    # the other activities (-0.01, 0.8% of lead 0's total; direction 0) show once the
    # share and the log-odds floor let them
    shown = _reasons(ScoringConfig(min_reason_share=0.0, min_abs_contribution=0.0))[0]
    assert shown[-1]["concept"] == "other" and shown[-1]["direction"] == "-"
    assert shown[-1]["text"] == "other activity twice in 30 days, last one today"
    assert shown[-1]["share"] == round(0.01 / 1.21, 3)
    strict = _reasons(ScoringConfig(min_reason_share=0.3))[0]
    assert [r["concept"] for r in strict] == ["pricing", "lead_age"]  # 41% and 33%


def test_a_reason_never_contradicts_its_concepts_direction():
    lead1, lead2 = _reasons(ScoringConfig())[1:]
    assert [(r["concept"], r["direction"], r["text"]) for r in lead1] == [
        ("role", "+", "vp in sales"),
        ("unsubscribe", "-", "unsubscribed 4 days ago"),
    ]
    assert [(r["concept"], r["direction"]) for r in lead2] == [("role", "-")]


def test_lead_age_is_no_sub_score():
    sums = family_sums(_contributions(), NAMES, REGISTRY)
    assert sums["lifecycle"] == pytest.approx([-0.4, 0.0, 0.0])
    assert sums["engagement"] == pytest.approx([0.49, -0.3, -0.25])
