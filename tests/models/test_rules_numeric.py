"""Points per range of a numeric attribute, the rules card and the rule reasons, on values
worked out by hand."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from leadscore.models.config import (
    AttributePenalty,
    IcpAttributeRule,
    NumericAttributeRule,
    RulesConfig,
)
from leadscore.models.report import SECTIONS, render_report
from leadscore.models.rules import RuleScorer, bin_points, bin_text
from tests.models.test_report import small_window

VISITS = NumericAttributeRule.model_validate(
    [{"min": 5, "points": 10}, {"max": 1, "points": -5}, {"min": 2, "max": 5, "points": 3}]
)


def test_bin_edges_min_inclusive_max_exclusive_and_negative_points():
    values = np.array([0.0, 0.99, 1.0, 1.5, 2.0, 4.99, 5.0, 7.0, 1e9, -3.0])
    expected = [-5, -5, 0, 0, 3, 3, 10, 10, 10, -5]  # [1, 2) is in no range: 0 points
    np.testing.assert_array_equal(bin_points(values, VISITS), expected)


def test_missing_values_get_zero_or_the_declared_points():
    values = np.array([np.nan, 6.0, np.nan])
    np.testing.assert_array_equal(bin_points(values, VISITS), [0, 10, 0])
    declared = NumericAttributeRule(bins=VISITS.bins, missing=-2)
    np.testing.assert_array_equal(bin_points(values, declared), [-2, 10, -2])


def test_a_bare_list_is_short_for_bins():
    assert NumericAttributeRule(bins=VISITS.bins, missing=0) == VISITS
    assert [bin_text(b) for b in VISITS.bins] == ["5 or more", "under 1", "2 to under 5"]


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ([{"min": 51, "max": 201, "points": 8}, {"min": 200, "points": 10}], "overlap"),
        ([{"min": 5, "points": 1}, {"min": 5, "max": 6, "points": 2}], "overlap"),
        ([{"max": 10, "points": 1}, {"max": 3, "points": 2}], "overlap"),
        ([{"min": 5, "max": 5, "points": 1}], "min \\(5\\) must be below max \\(5\\)"),
        ([{"points": 1}], "needs min, max or both"),
        ([], "at least 1"),
    ],
)
def test_bad_ranges_are_refused(bins: list[dict[str, float]], message: str):
    with pytest.raises(ValidationError, match=message):
        NumericAttributeRule.model_validate(bins)


def test_touching_ranges_do_not_overlap():
    rule = NumericAttributeRule.model_validate(
        [{"min": 51, "max": 201, "points": 8}, {"min": 201, "points": 10}]
    )
    np.testing.assert_array_equal(bin_points(np.array([200.0, 201.0]), rule), [8, 10])


RULES = RulesConfig(
    icp={"industry": IcpAttributeRule(weight=1, values={"software": 10}, default=2)},
    icp_points=20,
    penalties=[AttributePenalty(attribute="country", not_in=["US"], points=-10)],
    numeric={
        "visits": VISITS,
        "employees": NumericAttributeRule.model_validate(
            {"bins": [{"min": 51, "max": 201, "points": 8, "label": "51-200 staff"}], "missing": -2}
        ),
    },
)
POINTS = {"meeting_booked": 30, "unsubscribe": -5, "other": 0}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "industry": ["software", "retail", "software", None],
            "country": ["US", "BR", "US", "US"],
            "visits": pd.array([7, 0, None, 1], dtype="Float64"),  # a nullable column
            "employees": [100.0, np.nan, 201.0, 51.0],
            "n_meeting_booked_90d": [3, 0, 0, 0],
            "n_unsubscribe_90d": [0, 1, 0, 0],
        }
    )


def test_numeric_points_add_to_the_rule_score_unclipped():
    scorer = RuleScorer(rules=RULES, activity_points=POINTS).fit(_frame())
    # row 0: icp 10 -> 20; + 3 x 30 meetings; visits 7 -> +10; employees 100 -> +8: 128
    # row 1: icp 2 -> 4; - 5 unsubscribe; - 10 (BR); visits 0 -> -5; employees missing -2: -18
    # row 2: 20; visits missing -> 0; employees 201 -> outside [51, 201): 0 -> 20
    # row 3: icp missing -> default 2 -> 4; visits 1 -> in no range; employees 51 -> +8: 12
    np.testing.assert_allclose(scorer.numeric_points(_frame()), [18, -7, 0, 8])
    np.testing.assert_allclose(scorer.points(_frame()), [128, -18, 20, 12])
    unclipped = scorer.breakdown(_frame()).sum(axis=1).to_numpy()
    np.testing.assert_allclose(unclipped, [128, -18, 20, 12])


def test_the_reasons_name_the_value_the_range_and_the_points():
    reasons = RuleScorer(rules=RULES, activity_points=POINTS).explain(_frame())
    assert reasons[0] == [
        "3 x meeting booked in the last 90 days: +90",
        "industry software: +20",
        "visits 7 (5 or more): +10",
        "employees 100 (51-200 staff): +8",
    ]
    assert reasons[1] == [
        "country BR (not in US): -10",
        "1 x unsubscribe in the last 90 days: -5",
        "visits 0 (under 1): -5",
        "industry retail (other values): +4",
        "employees missing: -2",
    ]
    assert reasons[2] == ["industry software: +20"]  # missing visits: 0 points, not said
    assert reasons[3] == ["employees 51 (51-200 staff): +8", "industry missing (other values): +4"]


def test_the_card_lists_every_rule_with_its_leads_and_conversions():
    scorer = RuleScorer(rules=RULES, activity_points=POINTS)
    card = scorer.card(_frame(), np.array([1, 0, 1, 0]))
    assert card["when"].tolist() == [
        "software",
        "other values",
        "in the last 90 days",
        "in the last 90 days",
        "not in US",
        "5 or more",
        "under 1",
        "2 to under 5",
        "51-200 staff",
        "missing",
    ]
    assert card["rule"].tolist()[2:4] == ["meeting booked", "unsubscribe"]  # "other": 0 pts
    assert card["points"].tolist() == [20, 4, 30, -5, -10, 10, -5, 3, 8, -2]
    assert card["leads"].tolist() == [2, 2, 1, 1, 1, 1, 1, 0, 2, 1]
    rates = card["conversion_rate"].tolist()
    assert rates[:7] == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0] and np.isnan(rates[7])
    assert rates[8:] == [0.5, 0.0]
    assert card["share"].tolist()[0] == 0.5


def test_no_numeric_rules_leave_the_points_as_before():
    plain = RULES.model_copy(update={"numeric": {}})
    scorer = RuleScorer(rules=plain, activity_points=POINTS)
    assert scorer.numeric_points(_frame()).tolist() == [0, 0, 0, 0]
    np.testing.assert_allclose(scorer.points(_frame()), [110, -11, 20, 4])


def test_the_rule_reasons_json_is_the_breakdown_largest_first_and_sums_to_the_score():
    scorer = RuleScorer(rules=RULES, activity_points=POINTS)
    frame = pd.concat([_frame(), _frame().iloc[[1, 0]]], ignore_index=True)  # repeated rows
    got = [json.loads(r) for r in scorer.reasons_json(frame)]
    assert got[0] == [
        {"text": "3 x meeting booked in the last 90 days", "points": 90.0},
        {"text": "industry software", "points": 20.0},
        {"text": "visits 7 (5 or more)", "points": 10.0},
        {"text": "employees 100 (51-200 staff)", "points": 8.0},
    ]
    assert got[1] == [
        {"text": "country BR (not in US)", "points": -10.0},
        {"text": "1 x unsubscribe in the last 90 days", "points": -5.0},
        {"text": "visits 0 (under 1)", "points": -5.0},
        {"text": "industry retail (other values)", "points": 4.0},
        {"text": "employees missing", "points": -2.0},
    ]
    assert got[3] == [
        {"text": "employees 51 (51-200 staff)", "points": 8.0},
        {"text": "industry missing (other values)", "points": 4.0},
    ]
    assert got[4] == got[1] and got[5] == got[0]  # one breakdown per distinct combination
    totals = [sum(r["points"] for r in reasons) for reasons in got]
    np.testing.assert_allclose(totals, scorer.points(frame))  # [128, -18, 20, 12, -18, 128]
    assert list(scorer.reasons_json(frame.head(0))) == []


def test_the_report_shows_the_rules_card_with_the_numeric_rules():
    window = small_window()
    scorer = RuleScorer(rules=RULES, activity_points=POINTS)
    card = scorer.card(_frame(), np.array([1, 0, 1, 0]))
    page = render_report(replace(window, rules_card=card))
    section = re.sub(r">\s+<", "><", page[page.index(f"<h2>{SECTIONS[-1]}</h2>") :])
    assert SECTIONS[-1] == "Rules card"
    for cells in (
        ["numeric range", "visits", "5 or more", "+10", "1", "25.0%", "100.0%"],
        ["numeric range", "employees", "51-200 staff", "+8", "2", "50.0%", "50.0%"],
        ["numeric range", "employees", "missing", "-2", "1", "25.0%", "0.0%"],
        ["penalty", "country", "not in US", "-10", "1", "25.0%", "0.0%"],
        ["ICP value score", "industry", "software", "+20", "2", "50.0%", "100.0%"],
    ):
        assert "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" in section
    assert "[min, max): min inclusive, max exclusive" in section
    assert "No rules card" in render_report(window)  # a window without one says so


def test_the_breakdown_names_each_rule_and_keeps_same_named_lines_apart():
    twin = NumericAttributeRule.model_validate(
        [
            {"max": 1, "points": -5, "label": "few"},
            {"min": 1, "max": 2, "points": 1, "label": "few"},
        ]
    )
    scorer = RuleScorer(rules=RulesConfig(numeric={"visits": twin}))
    table = scorer.breakdown(_frame())
    assert table.columns.tolist() == ["visits: few", "visits: few"]
    np.testing.assert_array_equal(table.to_numpy(), [[0, 0], [-5, 0], [0, 0], [0, 1]])
    assert RuleScorer().breakdown(_frame()).shape == (4, 0)
