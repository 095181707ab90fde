"""The two-pass range rank (pipelines/rank.py) equals the one-process argsort rank."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.models.scoring import rank_and_percentile, rule_ranks
from leadscore.pipelines.rank import (
    descending_key,
    percentile,
    plan_edges,
    rank_partitions,
    sketch,
    sort_key,
)


def _split(values: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(values, np.cumsum(sizes)[:-1])


def _raw(rng: np.random.Generator, n: int) -> np.ndarray:
    """Scores with many ties (rounded), both zeros and a few NaN, as raw log-odds could be."""
    raw = np.round(rng.normal(0, 2, n), 1)
    raw[rng.choice(n, 40, replace=False)] = -0.0
    raw[rng.choice(n, 5, replace=False)] = np.nan
    return raw


def test_descending_key_orders_as_argsort_of_the_negated_values():
    x = np.array([3.5, -1.0, np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-300, -1e-300, 3.5])
    assert np.argsort(descending_key(x), kind="stable").tolist() == (
        np.argsort(-x, kind="stable").tolist()
    )


@pytest.mark.parametrize("ranges", [1, 3, 17, 1000])
def test_range_rank_equals_the_global_argsort_rank_on_ties(ranges):
    rng = np.random.default_rng(ranges)
    sizes = [700, 0, 1, 2500, 333, 1200]  # uneven, one empty partition
    raw = _raw(rng, sum(sizes))
    expected, expected_pct = rank_and_percentile(raw)
    got = rank_partitions([sort_key(p) for p in _split(raw, sizes)], ranges=ranges, points=16)
    rank = np.concatenate(got)
    assert rank.tolist() == expected.tolist()
    assert np.array_equal(percentile(rank, len(raw)), expected_pct)


def test_rule_rank_by_ranges_equals_the_global_one():
    """Rule points (few distinct values) then raw score: the lexicographic key."""
    rng = np.random.default_rng(5)
    sizes = [400, 900, 50, 1650]
    raw = _raw(rng, sum(sizes))
    points = rng.choice([0.0, 15.0, 30.0, 120.0], sum(sizes))
    parts = [sort_key(p, r) for p, r in zip(_split(points, sizes), _split(raw, sizes), strict=True)]
    got = np.concatenate(rank_partitions(parts, ranges=7, points=8))
    assert got.tolist() == rule_ranks(points, raw).tolist()


def test_edges_balance_the_ranges_and_never_split_equal_keys():
    rng = np.random.default_rng(1)
    keys = [sort_key(rng.normal(size=10_000)) for _ in range(4)]
    edges = plan_edges([sketch(k, 64) for k in keys], 8)
    assert len(edges) == 7
    sizes = np.bincount(np.searchsorted(edges, np.concatenate(keys), side="right"))
    assert sizes.min() > 0.6 * 40_000 / 8 and sizes.max() < 1.4 * 40_000 / 8
    few = [sort_key(np.repeat([1.0, 2.0], 500))]  # two distinct values: at most two ranges
    assert len(plan_edges([sketch(k) for k in few], 8)) == 1
