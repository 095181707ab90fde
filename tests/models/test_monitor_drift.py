"""PSI, missing and unseen shares and the top shift, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadscore.models.monitor.drift import (
    FLOOR,
    drift_table,
    max_feature_psi,
    prediction_psi,
    psi,
)
from leadscore.models.monitor.profile import (
    PREDICTION,
    batch_counts,
    reference_from_examples,
)
from leadscore.models.monitor.result import DRIFT_COLUMNS

AS_OF = pd.Timestamp("2026-03-01", tz="UTC")


def test_psi_by_hand() -> None:
    # 0.25 ln(0.75/0.5) + (-0.25) ln(0.25/0.5) = 0.25 (0.405465 + 0.693147)
    assert psi([0.5, 0.5], [0.75, 0.25]) == pytest.approx(0.274653, abs=1e-6)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    assert math.isnan(psi([0.5, 0.5], [0.0, 0.0]))


def test_psi_floors_empty_bins_at_one_in_ten_thousand() -> None:
    # a category the reference never had now holds 1% of rows: (0.01 - 1e-4) ln(0.01 / 1e-4)
    value = psi([1.0, 0.0], [0.99, 0.01])
    expected = (0.99 - 1.0) * math.log(0.99) + (0.01 - FLOOR) * math.log(0.01 / FLOOR)
    assert value == pytest.approx(expected, rel=1e-12)
    assert value == pytest.approx(0.045591 + 0.000101, abs=1e-6)  # 0.0099 ln 100 + 0.01 * 0.01005


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = pd.DataFrame(
        {"source": pd.Series(["a", "a", "b", None], dtype=object), "visits": [0.0, 0, 1, 2]}
    )
    batch = pd.DataFrame(
        {"source": pd.Series(["a", "c", None, None], dtype=object), "visits": [0.0, 0, 1, 2]}
    )
    return reference, batch


def test_drift_table_by_hand() -> None:
    reference, batch = _tiny()
    proba = np.array([0.1, 0.2, 0.3, 0.4])
    ref = reference_from_examples(reference, proba, as_of=None, days=90, bins=4)
    table = drift_table(batch_counts(batch, proba, ref), batch_id="b1", as_of=AS_OF)
    assert list(table.columns) == list(DRIFT_COLUMNS)
    assert table["feature"].tolist() == ["source", "visits", PREDICTION]
    source = table.iloc[0]
    # bins a, b, (other), (unseen), missing: reference .5 .25 0 0 .25, batch .25 0 0 .25 .5
    by_hand = (
        (0.25 - 0.5) * math.log(0.25 / 0.5)
        + (FLOOR - 0.25) * math.log(FLOOR / 0.25)
        + (0.25 - FLOOR) * math.log(0.25 / FLOOR)
        + (0.5 - 0.25) * math.log(0.5 / 0.25)
    )
    assert source["psi"] == pytest.approx(by_hand) and by_hand == pytest.approx(4.257032, abs=1e-6)
    assert (source["missing_ref"], source["missing_now"], source["unseen_now"]) == (
        0.25,
        0.5,
        0.25,
    )
    assert source["kind"] == "categorical"
    assert source["top_shift"] == "source=b 25.0% -> 0.0%"  # ties with (unseen): the first
    visits = table.iloc[1]
    assert visits["psi"] == 0.0 and visits["top_shift"] == "" and math.isnan(visits["unseen_now"])
    assert table.iloc[2]["psi"] == 0.0
    assert max_feature_psi(table) == ("source", pytest.approx(by_hand))
    assert prediction_psi(table) == 0.0


def test_top_shift_names_the_bin_that_moved_most() -> None:
    reference, _ = _tiny()
    proba = np.array([0.1, 0.2, 0.3, 0.4])
    ref = reference_from_examples(reference, proba, as_of=None, days=90, bins=4)
    batch = pd.DataFrame({"source": ["b"] * 4, "visits": [np.nan] * 4})
    table = drift_table(batch_counts(batch, proba, ref).to_dict(), batch_id="b", as_of=AS_OF)
    # a: (1e-4 - .5) ln(1e-4 / .5) = 4.26 outweighs b: .75 ln 4 = 1.04
    assert table.iloc[0]["top_shift"] == "source=a 50.0% -> 0.0%"
    visits = table.iloc[1]  # all missing: the missing bin takes every row
    assert visits["top_shift"] == "visits missing 0.0% -> 100.0%"
    assert visits["missing_now"] == 1.0 and visits["missing_ref"] == 0.0
    # three value bins at 1/4, 1/4, 1/2 emptied (floored), missing from floor to 1
    by_hand = 2 * (FLOOR - 0.25) * math.log(FLOOR / 0.25) + (FLOOR - 0.5) * math.log(FLOOR / 0.5)
    by_hand += (1 - FLOOR) * math.log(1 / FLOOR)
    assert visits["psi"] == pytest.approx(by_hand)


def test_an_empty_batch_or_no_reference_gives_no_drift_numbers() -> None:
    reference, batch = _tiny()
    proba = np.array([0.1, 0.2, 0.3, 0.4])
    ref = reference_from_examples(reference, proba, as_of=None, days=90, bins=4)
    table = drift_table(batch_counts(batch.iloc[:0], proba[:0], ref), batch_id="b", as_of=AS_OF)
    assert table["psi"].isna().all() and (table["top_shift"] == "").all()
    assert max_feature_psi(table) is None and prediction_psi(table) is None
    none = drift_table(None, batch_id="b", as_of=AS_OF)
    assert none.empty and list(none.columns) == list(DRIFT_COLUMNS)


def test_a_stable_sample_stays_under_the_threshold_and_a_shifted_one_crosses_it() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    X = pd.DataFrame(
        {
            "source": pd.Series(rng.choice(["web", "partner", "event"], n, p=[0.6, 0.3, 0.1])),
            "visits": rng.poisson(2.0, n).astype(float),
        }
    )
    ref = reference_from_examples(X, rng.uniform(size=n), as_of=None, days=90, bins=10)
    same = X.sample(5000, random_state=1)
    table = drift_table(batch_counts(same, rng.uniform(size=5000), ref), batch_id="s", as_of=AS_OF)
    assert table["psi"].max() < 0.01
    moved = same.assign(source=rng.choice(["web", "partner", "event"], 5000, p=[0.2, 0.3, 0.5]))
    table = drift_table(batch_counts(moved, rng.uniform(size=5000), ref), batch_id="m", as_of=AS_OF)
    name, value = max_feature_psi(table)
    assert name == "source" and value > 0.2
    # event .1 -> .5 adds .4 ln 5 = .64, more than web .6 -> .2 (.4 ln 3 = .44)
    assert table.iloc[0]["top_shift"].startswith("source=event 10.")
