"""The compiled steps of ``models.explain.reasons_json`` equal the numpy code they
replaced (copied below as it was), on varied input: NaN, infinities, zeros and -0.0,
ties, rows with fewer candidates than slots, no rows, no concepts, more slots than
concepts, no slots of one side; and the threshold at its edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.concepts import COUNT, DAYS, Concept, sign_allowed
from leadscore.models.config import ScoringConfig
from leadscore.models.explain import _gather, _worded, eligible, render_concept, select


def _previous_eligible(concept_sums, share, concepts, X, config):
    ok = (np.abs(concept_sums) >= config.min_abs_contribution) & (share >= config.min_reason_share)
    for k, concept in enumerate(concepts):
        column = concept_sums[:, k]
        if concept.direction == 0:
            ok[:, k] &= column != 0
            continue
        facts = concept.fact_values(lambda name: X[name].to_numpy())
        ok[:, k] &= sign_allowed(concept.direction, concept.absent(facts), column)
    return ok


def _previous_top(contributions, k, sign, floor):
    k = min(k, contributions.shape[1])
    if k == 0:
        shape = (len(contributions), 0)
        return np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=bool)
    signed = np.ascontiguousarray(contributions * sign)
    idx = np.empty((len(signed), k), dtype=np.int64)
    for r in range(len(signed)):  # the parallel kernel's loop, row by row
        best = np.full(k, -np.inf)
        cols = np.zeros(k, dtype=np.int64)
        filled = 0
        for j in range(signed.shape[1]):
            v = signed[r, j]
            if filled == k and not v > best[k - 1]:
                continue
            pos = min(filled, k - 1)
            while pos > 0 and v > best[pos - 1]:
                best[pos] = best[pos - 1]
                cols[pos] = cols[pos - 1]
                pos -= 1
            best[pos] = v
            cols[pos] = j
            filled = min(filled + 1, k)
        idx[r] = cols
    chosen = np.take_along_axis(signed, idx, axis=1)
    return idx, (chosen >= floor) & (chosen > -np.inf)


def _previous_select(concept_sums, ok, config):
    positive = np.where(ok & (concept_sums > 0), concept_sums, -np.inf)
    negative = np.where(ok & (concept_sums < 0), concept_sums, np.inf)
    pos, pos_ok = _previous_top(positive, config.top_positive, 1, 0.0)
    neg, neg_ok = _previous_top(negative, config.top_negative, -1, 0.0)
    slots = np.arange(pos.shape[1] + neg.shape[1]) < pos.shape[1]
    return np.concatenate([pos, neg], axis=1), np.concatenate([pos_ok, neg_ok], axis=1), slots


def _sums(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Sums with ties (values drawn from a few), zeros, -0.0, NaN and infinities."""
    pool = np.array([0.0, -0.0, 0.5, -0.5, 0.01, -0.01, 1e-9, 2.0, -2.0, np.nan, np.inf, -np.inf])
    sums = rng.choice(np.concatenate([pool, rng.normal(size=8)]), size=(n, m))
    return sums


def _concepts(rng: np.random.Generator, m: int) -> tuple[list[Concept], pd.DataFrame, int]:
    n = 60
    columns, concepts = {}, []
    for k in range(m):
        direction = int(rng.choice([-1, 0, 1]))
        kind = "attributes" if direction == 0 and k % 2 else "activity"
        counts = rng.choice([0.0, 1.0, 3.0, np.nan], size=n)
        columns[f"c{k}"], columns[f"d{k}"] = counts, rng.uniform(0, 50, size=n)
        if k % 3 == 2:  # an overall count: the sum of two columns
            columns[f"e{k}"] = rng.choice([0.0, 2.0, np.nan], size=n)
            facts = ((COUNT, (f"c{k}", f"e{k}")), (DAYS, (f"d{k}",)))
            kind = "overall"
        else:
            facts = ((COUNT, (f"c{k}",)), (DAYS, (f"d{k}",)))
        concepts.append(Concept(f"k{k}", f"k{k}", direction, "engagement", (), kind, facts))
    return concepts, pd.DataFrame(columns, index=range(n)), n


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("thresholds", [(0.0, 0.0), (0.05, 0.1), (0.5, 0.0), (0.0, 0.2)])
def test_eligible_equals_the_per_concept_masks(seed, thresholds):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(0, 9))
    concepts, X, n = _concepts(rng, m)
    sums = _sums(rng, n, m)
    share = rng.choice([0.0, 0.1, 0.2, 0.5, np.nan, 1.0], size=(n, m))
    config = ScoringConfig(min_abs_contribution=thresholds[0], min_reason_share=thresholds[1])
    got = eligible(sums, share, concepts, X, config)
    assert got.dtype == bool and got.shape == (n, m)
    assert np.array_equal(got, _previous_eligible(sums, share, concepts, X, config))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("top", [(3, 2), (0, 2), (2, 0), (0, 0), (1, 1), (12, 12)])
def test_select_equals_the_two_sided_top(seed, top):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(0, 50)), int(rng.integers(0, 8))
    sums = _sums(rng, n, m)
    ok = rng.random((n, m)) < 0.8
    config = ScoringConfig(top_positive=top[0], top_negative=top[1])
    got, expected = select(sums, ok, config), _previous_select(sums, ok, config)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert np.array_equal(g, e)


def test_select_reads_a_transposed_mask_and_ties_by_column():
    sums = np.array([[1.0, 2.0, 2.0, -1.0, -1.0, 0.0], [np.nan, -np.inf, np.inf, 0.0, -0.0, 1.0]])
    ok = np.asfortranarray(np.ones_like(sums, dtype=bool))
    config = ScoringConfig(top_positive=2, top_negative=2)
    cols, keep, slots = select(sums, ok, config)
    assert cols.tolist() == [[1, 2, 3, 4], [2, 5, 1, 0]]
    assert keep.tolist() == [[True, True, True, True], [True, True, True, False]]
    assert slots.tolist() == [True, True, False, False]
    for g, e in zip((cols, keep, slots), _previous_select(sums, ok, config), strict=True):
        assert np.array_equal(g, e)


@pytest.mark.parametrize("seed", range(4))
def test_gather_equals_fancy_indexing(seed):
    rng = np.random.default_rng(seed)
    contributions = _sums(rng, 40, 9)
    rows = rng.integers(0, 40, size=int(rng.integers(0, 100)))
    where = np.array([[0, 3, -1], [8, -1, -1], [1, 2, 5]])
    concepts = rng.integers(0, 3, size=len(rows))
    at = where[concepts]
    expected = np.where(at >= 0, contributions[rows[:, None], np.maximum(at, 0)], np.nan)
    got = np.empty((len(rows), 3))
    _gather(contributions, rows, at, got)
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))  # bit for bit


def _previous_render(concept, X, rows, new_lead_days):
    facts = concept.text_facts(concept.fact_values(lambda name: X[name].to_numpy()[rows]))
    if not facts:
        return np.zeros(len(rows), dtype=np.int64), [concept.text({}, new_lead_days)]
    key = np.zeros(len(rows), dtype=np.int64)
    for values in facts.values():
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        key, _ = pd.factorize(key * (len(uniques) + 1) + codes)
    seen = np.maximum.accumulate(key)
    first = np.flatnonzero(np.concatenate([[True], key[1:] > seen[:-1]]))
    return key, _worded(concept, {n: v[first] for n, v in facts.items()}, new_lead_days)


@pytest.mark.parametrize("seed", range(6))
def test_render_concept_equals_the_previous_grouping(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    words = np.array(["saas", "fin_tech", "日本", "é", None, np.nan, "", "a b"], dtype=object)
    numbers = np.array([0.0, -0.0, 1.0, 250.0, 1234.5, np.nan, 1e6, 0.123456])
    X = pd.DataFrame(
        {
            "kind": rng.choice(words, size=n),
            "size": rng.choice(numbers, size=n),
            "other": rng.choice(words[:5], size=n),
        }
    )
    concept = Concept(
        "company", "company", 0, "fit", ("kind", "size", "other"), "attributes",
        (("kind", ("kind",)), ("size", ("size",)), ("other", ("other",))),
        "{kind} at {size:num} ({other})", labels=("industry", "size", "other"),
    )  # fmt: skip
    rows = rng.integers(0, max(n, 1), size=int(rng.integers(0, 300))) if n else np.zeros(0, int)
    got, expected = render_concept(concept, X, rows, 14), _previous_render(concept, X, rows, 14)
    assert got[0].tolist() == expected[0].tolist()
    assert got[1] == expected[1]


def test_pass_two_kernels_let_go_of_the_gil():
    """Pass 2 runs these in a worker thread beside the publisher's (nogil)."""
    from leadscore.features import pieces
    from leadscore.models import explain

    kernels = [explain._eligible_kernel, explain._select_kernel, explain._gather]
    kernels += [pieces._pad, pieces._place, pieces._sizes, pieces._fill, pieces._by_row]
    assert all(k.targetoptions.get("nogil") for k in kernels)
