"""Sub-scores 0-100 as percentiles of the training leads' sums, and the quadrant cells,
on values worked out by hand; a model saved before sub-scores still scores."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from leadscore.features.config import AttributeConfig, FeatureConfig
from leadscore.features.pieces import labelled
from leadscore.features.registry import build_registry
from leadscore.models.config import CellCutoffs, ModelConfig, ScoringConfig
from leadscore.models.factory import make_model
from leadscore.models.rules import RuleScorer
from leadscore.models.scoring import rule_ranks, score_frame
from leadscore.models.subscores import (
    CELLS,
    QUANTILE_POINTS,
    cell_codes,
    percentile_of,
    reference_quantiles,
    subscores,
)


def test_a_lead_at_the_training_median_scores_50_and_the_ends_0_and_100():
    sums = {"fit": np.arange(1001, dtype=float), "engagement": np.linspace(-2, 2, 1001)}
    q = reference_quantiles(sums)
    assert set(q) == {"fit", "engagement"} and len(q["fit"]) == QUANTILE_POINTS
    got = subscores(
        {"fit": np.array([500.0, 800.0, 0.0, -5, 1000, 2000, 250.25]), "engagement": np.zeros(7)},
        q,
        7,
    )
    # 500 is the median; 800 beats 80% of the reference; below / above every lead: 0 / 100
    assert got["fit_score"].tolist() == [50, 80, 0, 0, 100, 100, 25]
    assert got["engagement_score"].tolist() == [50] * 7  # 0 is the median of -2..2


def test_percentiles_interpolate_and_ties_take_the_middle_of_their_run():
    q = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # quantiles at 0, 25, 50, 75, 100 %
    values = np.array([0.5, 1.0, 1.5, -1.0, 3.0, np.nan])
    got = percentile_of(values, q)
    np.testing.assert_allclose(got[:5], [12.5, 50.0, 87.5, 0.0, 100.0])
    assert np.isnan(got[5])  # a missing sum has no percentile


def test_a_family_without_quantiles_has_no_score_and_a_model_without_any_neither():
    q = reference_quantiles({"fit": np.arange(11.0)})  # a flat export: no engagement
    got = subscores({"fit": np.array([5.0]), "engagement": np.array([3.0])}, q, 1)
    assert got["fit_score"].tolist() == [50] and got["engagement_score"].isna().all()
    old = subscores({"fit": np.array([5.0])}, None, 1)
    assert old["fit_score"].isna().all() and old["engagement_score"].isna().all()


def cells(fit, engagement, cutoffs):
    """The cells as the score frame holds them (``score_partition``), as Python values."""
    return labelled(cell_codes(fit, engagement, cutoffs), CELLS).to_numpy(object, na_value=None)


def test_cells_at_the_cut_offs():
    cut = CellCutoffs().model_dump()
    fit = pd.array([50, 49, 50, 49, 100, 0, 50, 49, None], dtype="Int64")
    engagement = pd.array([50, 50, 49, 49, 0, 100, None, None, 50], dtype="Int64")
    assert cells(fit, engagement, cut).tolist() == [
        "call_now",  # both at their cut-off: high
        "educate",
        "nurture",
        "deprioritise",
        "nurture",
        "educate",
        "call_now",  # no engagement (flat export): fit alone
        "deprioritise",
        None,  # no fit score (an older model): no cell
    ]
    other = cells(fit[:2], engagement[:2], {"fit": 49, "engagement": 51})
    assert other.tolist() == ["nurture", "nurture"]


def test_rule_rank_orders_by_points_then_by_the_model():
    points = np.array([10.0, 30.0, 10.0, 120.0, -5.0, 10.0])
    raw = np.array([0.1, -1.0, 0.5, -3.0, 2.0, 0.1])
    # 120 first, 30, then the three 10s by log-odds (0.5, then 0.1 twice: first row first)
    assert rule_ranks(points, raw).tolist() == [4, 2, 3, 1, 6, 5]


def _flat() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    n = 600
    X = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "industry": rng.choice(["tech", "retail"], size=n),
            "employees": rng.normal(size=n),
        }
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(2 * X["employees"] - 1.5)))).astype(int)
    return X, y.to_numpy()


def test_a_model_saved_before_sub_scores_still_scores_and_says_so_once(caplog):
    X, y = _flat()
    attributes = AttributeConfig(categorical=["industry"], numeric=["employees"])
    config = ModelConfig(lightgbm={"n_estimators": 5, "min_child_samples": 10})
    old = make_model(config, ["industry"], ["employees"]).fit(X, y)  # no quantiles
    old.registry_ = build_registry(FeatureConfig(attributes=attributes), behaviour=False)
    rules = RuleScorer()
    with caplog.at_level(logging.WARNING, logger="leadscore.models.subscores"):
        first = score_frame(X, old, rules, old.registry_, ScoringConfig())
        score_frame(X.head(3), old, rules, old.registry_, ScoringConfig())
    assert first["score"].notna().all()
    assert first["fit_score"].isna().all() and first["engagement_score"].isna().all()
    assert first["cell"].isna().all()
    said = [r.getMessage() for r in caplog.records if "reference quantiles" in r.getMessage()]
    assert len(said) == 1 and "LeadModel was saved without reference quantiles" in said[0]
    assert first["rule_reasons"].map(json.loads).tolist() == [[]] * len(X)  # no rules declared


@pytest.mark.parametrize("cut", [0.0, 100.0])
def test_cut_offs_are_bounded_0_to_100(cut):
    assert CellCutoffs(fit=cut).fit == cut
    with pytest.raises(ValueError, match=r"less than or equal to 100|greater than or equal to 0"):
        CellCutoffs(fit=cut + (1 if cut else -1))


def test_a_flat_export_has_no_engagement_score_and_its_cell_reads_fit_alone():
    from leadscore.models import training

    X, y = _flat()
    attributes = AttributeConfig(categorical=["industry"], numeric=["employees"])
    registry = build_registry(FeatureConfig(attributes=attributes), behaviour=False)
    config = ModelConfig(kind="lightgbm", lightgbm={"n_estimators": 5, "min_child_samples": 10})
    model = training.fit_model(X.drop(columns="lead_id"), y, registry, config)
    assert set(model.subscore_quantiles_) == {"fit"}
    scores = score_frame(X, model, RuleScorer(), registry, ScoringConfig())
    assert scores["engagement_score"].isna().all() and scores["fit_score"].notna().all()
    high = scores["fit_score"] >= 50
    assert scores["cell"].tolist() == np.where(high, "call_now", "deprioritise").tolist()
    assert 0.4 < high.mean() < 0.6  # scored on its own training rows: about half above 50
