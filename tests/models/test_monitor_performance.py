"""Live metrics of a batch, model vs rules, on a frame small enough to check on paper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadscore.models.monitor.outcomes import Labels
from leadscore.models.monitor.performance import (
    capture_key,
    grade_table,
    metric_keys,
    ranking_metrics,
)
from leadscore.models.monitor.result import GRADE_COLUMNS, METRIC_NAMES

Y = np.array([1, 0, 1, 0, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
RULES = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0])


def test_ranking_metrics_by_hand() -> None:
    m = ranking_metrics(Y, P, RULES, top_percent=[20.0, 50.0], min_conversions=2)
    # model: 0.9 beats all 4 non-converters, 0.7 beats 3 of them: 7 of 8 pairs
    assert m["roc_auc"] == pytest.approx(7 / 8)
    # rules: converter at 1 ties two 1s and beats two 0s (3), converter at 0 ties two 0s (1)
    assert m["roc_auc_rules"] == pytest.approx(4 / 8)
    # model order 1 0 1: precision 1 at the first conversion, 2/3 at the second
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    # six leads, six bands of one: mean |p - y| = (.1 + .8 + .3 + .1 + .2 + .3) / 6
    assert m["ece"] == pytest.approx(0.3)
    # top 50% = 3 leads: model .9 .8 .7 hold both conversions; rules' three 1s hold one
    assert m[capture_key(50)] == 1.0 and m[capture_key(50, rules=True)] == 0.5
    # top 20% = 2 leads: model .9 .8 hold one; rules: 2 of three tied 1s, 1/3 converted each
    assert m["capture_top_20"] == 0.5
    assert m["capture_top_20_rules"] == pytest.approx((2 / 3) / 2)


def test_too_few_conversions_or_one_class_give_none() -> None:
    assert all(
        v is None
        for v in ranking_metrics(Y, P, RULES, top_percent=[10], min_conversions=3).values()
    )
    ones = ranking_metrics(np.ones(4), P[:4], RULES[:4], top_percent=[10], min_conversions=1)
    assert ones["roc_auc"] is None
    zeros = ranking_metrics(np.zeros(4), P[:4], RULES[:4], top_percent=[10], min_conversions=1)
    assert set(zeros) == {*METRIC_NAMES[:5], "capture_top_10", "capture_top_10_rules"}
    assert all(v is None for v in zeros.values())
    empty = ranking_metrics(np.zeros(0), P[:0], RULES[:0], top_percent=[10], min_conversions=1)
    assert empty["ece"] is None


def test_metric_keys_list_the_captures_after_the_named_metrics() -> None:
    assert metric_keys([5, 12.5]) == [
        *METRIC_NAMES,
        "capture_top_5",
        "capture_top_5_rules",
        "capture_top_12.5",
        "capture_top_12.5_rules",
    ]


def test_grade_table_by_hand_with_wilson_intervals() -> None:
    scores = pd.DataFrame(
        {
            "lead_id": range(7),
            "probability": [*P, 0.5],
            "grade": ["A", "A", "A", "C", "C", "C", "A"],
            "rule_grade": ["B", "B", "D", "D", "D", "B", "B"],
        }
    )
    labels = Labels(
        y=np.array([*Y, 1], dtype=np.int8),
        known=np.array([True] * 6 + [False]),  # the last lead's outcome is unknown
        observed_days=90,
        mature=True,
    )
    as_of = pd.Timestamp("2026-01-01", tz="UTC")
    table = grade_table(scores, labels, batch_id="b", as_of=as_of, grade_order=["A", "B", "C", "D"])
    assert list(table.columns) == list(GRADE_COLUMNS)
    model = table[table["ranking"] == "model"].set_index("grade")
    rules = table[table["ranking"] == "rules"].set_index("grade")
    assert model["n"].tolist() == [3, 0, 3, 0] and model["conversions"].tolist() == [2, 0, 0, 0]
    assert model.loc["A", "predicted"] == pytest.approx(0.8)
    assert model.loc["A", "realised"] == pytest.approx(2 / 3)
    # Wilson 95% of 2 of 3: centre (2/3 + z^2/6) / (1 + z^2/3), half-width by the formula
    assert model.loc["A", "low"] == pytest.approx(0.2077, abs=1e-4)
    assert model.loc["A", "high"] == pytest.approx(0.9385, abs=1e-4)
    assert model.loc["C", "low"] == pytest.approx(0.0, abs=1e-12) and model.loc[
        "C", "high"
    ] == pytest.approx(0.5615, abs=1e-4)
    assert math.isnan(model.loc["B", "realised"]) and math.isnan(model.loc["B", "low"])
    assert rules["n"].tolist() == [0, 3, 0, 3] and rules["conversions"].tolist() == [0, 1, 0, 1]
    assert rules.loc["B", "predicted"] == pytest.approx((0.9 + 0.8 + 0.3) / 3)  # the model's
    assert table["observed_days"].eq(90).all() and table["mature"].all()
    assert (table["batch_id"] == "b").all() and (table["as_of"] == as_of).all()


def test_a_grade_outside_the_order_is_listed_after_it() -> None:
    scores = pd.DataFrame(
        {"probability": [0.1, 0.2], "grade": ["A", "Z"], "rule_grade": ["A", "A"]}
    )
    labels = Labels(np.array([0, 1], dtype=np.int8), np.array([True, True]), 10, False)
    table = grade_table(scores, labels, batch_id="b", as_of=pd.Timestamp(0), grade_order=["A"])
    assert table[table["ranking"] == "model"]["grade"].tolist() == ["A", "Z"]
    assert not table["mature"].any() and table["observed_days"].eq(10).all()
