"""The expected ROC-AUC before outcomes: closed form vs brute force vs simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from leadscore.models.monitor.estimate import expected_roc_auc


def brute_force(p: np.ndarray, s: np.ndarray) -> float:
    """Every ordered pair of distinct leads: weight p_i (1 - p_j), right order 1, tie 1/2."""
    num = den = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        weight = p[i] * (1 - p[j])
        den += weight
        num += weight * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_closed_form_by_hand_on_two_leads() -> None:
    # pairs (0, 1): .8 * .8 ordered right; (1, 0): .2 * .2 ordered wrong -> .64 / .68
    assert expected_roc_auc(np.array([0.8, 0.2])) == pytest.approx(0.64 / 0.68)


def test_closed_form_equals_brute_force_with_ties() -> None:
    rng = np.random.default_rng(3)
    p = rng.choice([0.05, 0.1, 0.1, 0.3, 0.6, 0.9], size=40)  # tied probabilities
    assert expected_roc_auc(p) == pytest.approx(brute_force(p, p), rel=1e-12)
    ranking = rng.integers(0, 5, size=40).astype(float)  # a coarse ranking (rule points)
    assert expected_roc_auc(p, ranking) == pytest.approx(brute_force(p, ranking), rel=1e-12)


def test_closed_form_matches_a_simulation_of_labels_drawn_from_the_probabilities() -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(0.8, 6.0, size=400)
    Y = rng.uniform(size=(4000, len(p))) < p  # one row of labels per simulated batch
    Y = Y[(Y.sum(axis=1) > 0) & (Y.sum(axis=1) < len(p))]
    ranks = rankdata(p)  # Mann-Whitney: AUC from the converters' rank sum
    n1 = Y.sum(axis=1)
    aucs = (Y @ ranks - n1 * (n1 + 1) / 2) / (n1 * (len(p) - n1))
    assert aucs[0] == pytest.approx(roc_auc_score(Y[0], p))
    standard_error = float(np.std(aucs)) / np.sqrt(len(aucs))
    assert expected_roc_auc(p) == pytest.approx(float(np.mean(aucs)), abs=4 * standard_error)
    assert 4 * standard_error < 0.003  # the check is tight


def test_a_ranking_that_knows_nothing_expects_one_half() -> None:
    p = np.full(50, 0.2)
    assert expected_roc_auc(p) == pytest.approx(0.5)
    assert expected_roc_auc(np.linspace(0.01, 0.5, 50), np.zeros(50)) == pytest.approx(0.5)


def test_no_pairs_give_none() -> None:
    assert expected_roc_auc(np.array([])) is None
    assert expected_roc_auc(np.array([0.3])) is None
    assert expected_roc_auc(np.array([1.0, 1.0, 1.0])) is None  # nobody can fail to convert
    assert expected_roc_auc(np.array([0.3, np.nan])) is None  # NaN rows are left out
