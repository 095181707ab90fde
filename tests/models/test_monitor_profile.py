"""Reference bins and batch counts, checked against counts done by hand."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from leadscore.models.monitor.profile import (
    MISSING,
    OTHER,
    PREDICTION,
    UNSEEN,
    BatchCounts,
    ReferenceProfile,
    batch_counts,
    categorical_bins,
    numeric_bins,
    reference_from_examples,
)


def test_numeric_bins_are_reference_quantiles_plus_missing() -> None:
    values = [0, 0, 0, 0, 1, 2, 3, 4, 5, np.nan]
    bins = numeric_bins("visits", values, bins=4)
    # sorted finite values 0,0,0,0,1,2,3,4,5: quantiles .25/.5/.75 ("lower") are 0, 1, 3
    assert bins.edges == (0.0, 1.0, 3.0)
    assert bins.labels == ("<= 0", "(0, 1]", "(1, 3]", "> 3", MISSING)
    assert bins.shares == pytest.approx((0.4, 0.1, 0.2, 0.2, 0.1))
    assert bins.count([-1, 0, 0.5, 1, 3.01, 99, np.nan, None]).tolist() == [2, 2, 0, 2, 2]


def test_a_point_mass_gets_one_bin_and_no_empty_bin_above_the_maximum() -> None:
    bins = numeric_bins("flag", [0, 0, 0, 1, 1], bins=10)
    assert bins.edges == (0.0,)
    assert bins.labels == ("<= 0", "> 0", MISSING)
    assert bins.shares == pytest.approx((0.6, 0.4, 0.0))


def test_an_all_missing_reference_column_has_one_value_bin() -> None:
    bins = numeric_bins("x", [np.nan, np.nan], bins=5)
    assert bins.labels == ("any value", MISSING)
    assert bins.shares == (0.0, 1.0)
    assert bins.count([1.0, np.nan, 7.0]).tolist() == [2, 1]


def test_categorical_bins_keep_the_most_frequent_and_tell_other_from_unseen() -> None:
    values = ["web", "web", "web", "partner", "partner", "event", None, np.nan]
    bins = categorical_bins("source", values, max_categories=2)
    assert bins.labels == ("web", "partner", OTHER, UNSEEN, MISSING)
    assert bins.shares == pytest.approx((3 / 8, 2 / 8, 1 / 8, 0.0, 2 / 8))
    batch = pd.Series(["event", "tv", "tv", None, "web"], dtype=object)
    assert bins.count(batch).tolist() == [1, 0, 1, 2, 1]


def test_categories_match_by_text_whatever_the_dtype() -> None:
    bins = categorical_bins("source", pd.Series(["a", "b", "b"], dtype=object))
    as_category = pd.Series(["b", "c", None], dtype="category")
    assert bins.count(as_category).tolist() == [1, 0, 0, 1, 1]  # b, (other), (unseen), missing
    assert bins.labels == ("b", "a", OTHER, UNSEEN, MISSING)


def _examples(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "source": pd.Series(rng.choice(["web", "partner", "event"], n), dtype=object),
            "industry": pd.Series(rng.choice(["saas", "retail", None], n), dtype=object),
            "visits": rng.poisson(1.0, n).astype(float),
            "lead_age": rng.uniform(0, 100, n),
        }
    )
    return X, rng.uniform(0, 0.5, n)


def test_reference_keeps_the_newest_days_of_examples() -> None:
    X, proba = _examples(10)
    as_of = pd.Series(pd.date_range("2026-01-01", periods=10, freq="10D", tz="UTC"))
    ref = reference_from_examples(X, proba, as_of=as_of, days=30, bins=4)
    assert ref.rows == 3  # as_of > end - 30 days: the last 3 snapshots
    assert ref.end == as_of.iloc[-1] and ref.start == as_of.iloc[-3]
    every = reference_from_examples(X, proba, as_of=None, days=30, bins=4)
    assert every.rows == 10 and every.start is None
    assert [b.kind for b in every.features.values()] == [
        "categorical",
        "categorical",
        "numeric",
        "numeric",
    ]
    assert every.prediction.kind == PREDICTION and MISSING not in every.prediction.labels


def test_batch_counts_count_every_row_once_and_merge_partitions() -> None:
    X, proba = _examples()
    ref = reference_from_examples(X, proba, as_of=None, days=90, bins=5)
    whole = batch_counts(X, proba, ref)
    for name, counts in whole.features.items():
        assert counts.rows == len(X), name
        shares = counts.counts / len(X)
        assert shares == pytest.approx(counts.reference), name  # the reference counted again
    halves = batch_counts(X.iloc[:150], proba[:150], ref).merge(
        batch_counts(X.iloc[150:], proba[150:], ref)
    )
    assert halves.rows == whole.rows
    for name in whole.features:
        assert halves.features[name].counts.tolist() == whole.features[name].counts.tolist()


def test_batch_counts_ignore_extra_columns_and_count_a_lost_column_as_missing() -> None:
    X, proba = _examples()
    ref = reference_from_examples(X, proba, as_of=None, days=90, bins=5)
    batch = X.drop(columns=["visits"]).assign(lead_id=range(len(X)))
    counts = batch_counts(batch, proba, ref)
    assert list(counts.features) == ["source", "industry", "visits", "lead_age", PREDICTION]
    assert counts.features["visits"].counts[-1] == len(X)
    assert counts.features["visits"].counts[:-1].sum() == 0


def test_an_empty_batch_counts_nothing() -> None:
    X, proba = _examples()
    ref = reference_from_examples(X, proba, as_of=None, days=90, bins=5)
    counts = batch_counts(X.iloc[:0], proba[:0], ref)
    assert counts.rows == 0
    assert all(f.counts.sum() == 0 for f in counts.features.values())


def test_merging_counts_in_different_bins_is_refused() -> None:
    X, proba = _examples()
    a = batch_counts(X, proba, reference_from_examples(X, proba, as_of=None, days=9, bins=5))
    b = batch_counts(X, proba, reference_from_examples(X, proba, as_of=None, days=9, bins=3))
    with pytest.raises(ValueError, match="different bins"):
        a.merge(b)


def test_profiles_and_counts_survive_json_and_pickle() -> None:
    X, proba = _examples()
    ref = reference_from_examples(X, proba, as_of=None, days=90, bins=5)
    again = ReferenceProfile.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert pickle.loads(pickle.dumps(ref)).to_dict() == ref.to_dict()
    assert again.to_dict() == ref.to_dict()
    batch = X.assign(source=["tv"] * len(X))
    counts = batch_counts(batch, proba, again)
    assert counts.to_dict() == batch_counts(batch, proba, ref).to_dict()
    restored = BatchCounts.from_dict(json.loads(json.dumps(counts.to_dict())))
    assert restored.to_dict() == counts.to_dict()
    source = restored.features["source"]
    assert source.counts[source.labels.index(UNSEEN)] == len(X)
    assert sum(source.reference) == pytest.approx(1.0)


def test_probabilities_must_match_the_rows() -> None:
    X, proba = _examples()
    with pytest.raises(ValueError, match="probabilities"):
        reference_from_examples(X, proba[:-1], as_of=None, days=90, bins=5)
    with pytest.raises(ValueError, match="as_of"):
        reference_from_examples(X, proba, as_of=pd.Series([pd.Timestamp(0)]), days=9, bins=5)
