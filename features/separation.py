"""How well one column alone separates converted from lost leads (``features.leakage``).

ROC-AUCs are counted per group of rows sharing a score (a category, a fold, a 0/1 flag),
so a 200k-row column costs a sort of its distinct scores, not of its rows. A category is
scored by its conversion rate learnt out of fold, so a column of unique values (an id)
cannot rank its own rows by memorising them. Pure numpy.
"""

from __future__ import annotations

import numpy as np

_FOLDS = 5
_PRIOR_ROWS = 20.0
"""Target encoding: a category's rate is shrunk towards the overall rate by this many rows."""
_NUMERIC_BINS = 20


def grouped_auc(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC-AUC of groups of rows sharing a score (``pos`` converted and ``neg`` lost rows
    each; ties count half); NaN without both classes."""
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, level = np.unique(score, return_inverse=True)
    pos, neg = np.bincount(level, weights=pos), np.bincount(level, weights=neg)
    below = np.cumsum(neg) - neg  # lost rows scored strictly lower
    return float((pos * (below + neg / 2)).sum() / (n_pos * n_neg))


def roc_auc(score: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of ``score`` against 0/1 ``y`` (ties count half); NaN without both classes."""
    y = np.asarray(y, dtype=float)
    return grouped_auc(np.asarray(score, dtype=float), y, 1.0 - y)


def either_way(auc: float) -> float:
    """A ROC-AUC read in whichever direction ranks better (a column may predict "lost")."""
    return max(auc, 1.0 - auc) if np.isfinite(auc) else float("nan")


def _out_of_fold(codes: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Per (category, fold): the rate learnt on the other folds, the rows' fold, and the
    converted and lost rows in each (category, fold)."""
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    fold = np.random.default_rng(seed).integers(0, _FOLDS, len(codes))
    key = codes * _FOLDS + fold
    n = np.bincount(key, minlength=n_codes * _FOLDS).reshape(n_codes, _FOLDS)
    pos = np.bincount(key, weights=y, minlength=n_codes * _FOLDS).reshape(n_codes, _FOLDS)
    rest_n = n.sum(axis=1, keepdims=True) - n
    rest_y = pos.sum(axis=1, keepdims=True) - pos
    prior = float(np.mean(y)) if len(y) else 0.0  # one constant: it ranks nothing
    rate = (rest_y + _PRIOR_ROWS * prior) / (rest_n + _PRIOR_ROWS)
    return rate, fold, pos, n - pos


def out_of_fold_rate(codes: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Each row's category conversion rate learnt on the other folds (shrunk to the prior).

    ``codes`` are non-negative integer categories. A category seen only in the row's own
    fold (an id) gets the prior, so a column of unique values scores ROC-AUC 0.5.
    """
    rate, fold, _, _ = _out_of_fold(codes, y, seed)
    return rate[codes, fold]


def rate_auc(codes: np.ndarray, y: np.ndarray, seed: int) -> float:
    """ROC-AUC (either way) of ``out_of_fold_rate``, counted per (category, fold)."""
    rate, _, pos, neg = _out_of_fold(codes, y, seed)
    return either_way(grouped_auc(rate.ravel(), pos.ravel(), neg.ravel()))


def binary_auc(flag: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of a 0/1 ``flag`` against 0/1 ``y`` (two groups, no sort)."""
    flag = np.asarray(flag, dtype=bool)
    pos = np.array([y[flag].sum(), y[~flag].sum()], dtype=float)
    rows = np.array([flag.sum(), (~flag).sum()], dtype=float)
    return grouped_auc(np.array([1.0, 0.0]), pos, rows - pos)


def equal_count_bins(numbers: np.ndarray) -> np.ndarray:
    """Equal-count bins of a numeric column (ties kept together); missing is bin 0."""
    codes = np.zeros(len(numbers), dtype=np.int64)
    present = ~np.isnan(numbers)
    if present.any():
        quantiles = np.linspace(0, 1, _NUMERIC_BINS + 1)[1:-1]
        edges = np.unique(np.quantile(numbers[present], quantiles))
        codes[present] = 1 + np.searchsorted(edges, numbers[present], side="right")
    return codes
