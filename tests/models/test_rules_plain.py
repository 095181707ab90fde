"""The batch's rule reasons (``RuleScorer.reasons_json``: pieces per distinct value,
rows assembled at once) are byte for byte the per-row rendering (bench/plain.py), on the
features of a synthetic CRM, with the demo's rules and with numeric ranges."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.plain import plain_rule_reasons
from leadscore.features.builder import build_features, entities_at
from leadscore.models import training
from leadscore.models.rules import RuleScorer
from leadscore.pipelines.settings import load_settings
from leadscore.synthetic import generate_crm
from tests.conftest import ROOT
from tests.models.test_rules_numeric import RULES


@pytest.fixture(scope="module")
def features():
    crm = generate_crm(500, seed=12)
    settings = load_settings(ROOT / "leadscore.yaml")
    end = crm.leads["created_at"].max().floor("D") + pd.Timedelta(days=1)
    X = build_features(crm.leads, crm.activities, entities_at(crm.leads, end), settings.features)
    return X, settings


def test_rule_reasons_equal_the_per_row_rendering(features):
    X, settings = features
    points = settings.features.activity_points()
    scorer = training.fit_rules(pd.DataFrame(), None, settings.rules, points)
    assert scorer.reasons_json(X).tolist() == plain_rule_reasons(scorer, X)


def test_with_numeric_ranges_and_missing_values(features):
    X, _ = features
    X = X.assign(visits=(X.index % 9).astype(float))
    X.loc[X.index[::7], ["employees", "industry", "country"]] = None
    scorer = RuleScorer(rules=RULES, activity_points={"meeting_booked": 30, "unsubscribe": -5})
    assert scorer.reasons_json(X).tolist() == plain_rule_reasons(scorer, X)
