"""A LightGBM booster's log-odds for many what-ifs of the same rows, bit for bit.

The nurture what-if (``models/nurture/next_step.py``) scores every nurture lead once per
reachable activity type, each time with a handful of its features moved (one more
activity of that type). Predicting those rows with LightGBM costs a whole prediction per
(lead, type): 2.2 CPU seconds for 99,000 leads x 6 types. Most of it is wasted: a tree
whose splits read none of the moved features gives the lead's own leaf again.

So, per lead: every tree's split decisions on the lead's own row (one bit per split) and
its leaf, once; then, per type, only the splits on a moved feature are decided again, and
the leaf read off the decision bits from a table (2^splits leaves a tree, built once per
model). The log-odds is the sum of the leaves **in tree order from 0.0**, the order
LightGBM's ``GBDT::PredictRaw`` adds them in, so it equals ``raw_score`` to the last bit;
a what-if that changes no leaf is the lead's own sum, one that first changes tree j
continues the lead's running sum from tree j. Split decisions are LightGBM's
(LightGBM's ``NumericalDecision`` and ``CategoricalDecision``: missing types, default
direction, category bitsets).

Pure numba over flat arrays read from ``Booster.dump_model()``, built once per model.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd

from leadscore.models.base import LeadScorer
from leadscore.models.nurture.delta import Move
from leadscore.models.treeshap import _MISSING, _ZERO_THRESHOLD, KERNEL_LOCK, _is_leaf

MAX_SPLITS = 12
"""Trees with more splits than this (4,096 decision patterns) are not tabulated: the model
is scored by its own ``raw_score`` instead."""

_FORESTS: weakref.WeakKeyDictionary[Any, Forest | None] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Forest:
    """Every tree's splits (numbered ``tree_start[t] + split_index``) and, per tree, its
    leaf value for every pattern of split decisions (bit i: split i went left)."""

    features: list[str]
    tree_start: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    categorical: np.ndarray
    missing: np.ndarray
    default_left: np.ndarray
    cat_start: np.ndarray
    cat_left: np.ndarray
    table_start: np.ndarray
    leaves: np.ndarray


def forest_of(model: LeadScorer) -> Forest | None:
    """The tabulated trees of a calibrated LightGBM ``model`` (``models.factory.LeadModel``),
    built once per model; None for any other model or trees too big to tabulate."""
    booster = getattr(getattr(model, "booster_", None), "booster_", None)
    if booster is None or not hasattr(model, "categories_"):
        return None
    try:
        return _FORESTS[model]
    except KeyError:
        pass
    dump = booster.dump_model()
    forest = None
    if dump.get("num_tree_per_iteration", 1) == 1:
        forest = _flatten(dump, list(model.features))
    _FORESTS[model] = forest
    return forest


def _flatten(dump: dict[str, Any], features: list[str]) -> Forest | None:
    nodes: dict[str, list[Any]] = {k: [] for k in ("f", "thr", "cat", "miss", "dl", "cats")}
    tree_start, table_start, tables = [0], [0], []
    for info in dump["tree_info"]:
        root = info["tree_structure"]
        splits: list[dict[str, Any]] = []
        _splits(root, splits)
        if len(splits) > MAX_SPLITS:
            return None
        for node in sorted(splits, key=lambda n: int(n["split_index"])):
            categorical = node["decision_type"] == "=="
            nodes["f"].append(int(node["split_feature"]))
            nodes["cat"].append(int(categorical))
            nodes["miss"].append(_MISSING[node["missing_type"]])
            nodes["dl"].append(int(bool(node["default_left"])))
            cats = [int(c) for c in str(node["threshold"]).split("||")] if categorical else []
            nodes["thr"].append(0.0 if categorical else float(node["threshold"]))
            nodes["cats"].append(sorted(cats))
        tree_start.append(len(nodes["f"]))
        keys = np.arange(1 << len(splits), dtype=np.int64)
        tables.append(np.array([_leaf(root, int(k)) for k in keys], dtype=np.float64))
        table_start.append(table_start[-1] + len(keys))
    lefts = [
        _lookup(cats) if cat else np.zeros(0, np.int8)
        for cats, cat in zip(nodes["cats"], nodes["cat"], strict=True)
    ]
    cat_start = np.cumsum([0, *(len(w) for w in lefts)]).astype(np.int64)
    return Forest(
        features=features,
        tree_start=np.asarray(tree_start, dtype=np.int64),
        feature=np.asarray(nodes["f"], dtype=np.int64),
        threshold=np.asarray(nodes["thr"], dtype=np.float64),
        categorical=np.asarray(nodes["cat"], dtype=np.int8),
        missing=np.asarray(nodes["miss"], dtype=np.int8),
        default_left=np.asarray(nodes["dl"], dtype=np.int8),
        cat_start=cat_start,
        cat_left=np.concatenate([np.zeros(0, np.int8), *lefts]),
        table_start=np.asarray(table_start, dtype=np.int64),
        leaves=np.concatenate(tables) if tables else np.zeros(0),
    )


def _lookup(categories: list[int]) -> np.ndarray:
    """Which way a category code goes at a categorical split, by code + 1: entry 0 for a
    missing or negative code (right), then one per code up to the largest that goes left,
    then a last "right" for every larger code."""
    table = np.zeros(max(categories, default=-1) + 3, dtype=np.int8)
    table[np.asarray(categories, dtype=np.int64) + 1] = 1
    return table


def _splits(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    if not _is_leaf(node):
        out.append(node)
        _splits(node["left_child"], out)
        _splits(node["right_child"], out)


def _leaf(node: dict[str, Any], key: int) -> float:
    """The leaf value the decision pattern ``key`` (bit i: split i went left) reaches."""
    while not _is_leaf(node):
        left = (key >> int(node["split_index"])) & 1
        node = node["left_child"] if left else node["right_child"]
    return float(node["leaf_value"])


def lightgbm_columns(
    model: LeadScorer, X: pd.DataFrame, rows: np.ndarray, forest: Forest | None = None
) -> np.ndarray:
    """The float matrix LightGBM reads for the rows ``rows`` of ``X``, one row a feature
    (features x rows), as ``LeadModel.lightgbm_matrix`` builds it: numbers; a category's
    code, NaN for a missing or unseen one (looked up once per distinct value). With
    ``forest``, only the features its splits read are filled (the others stay 0)."""
    features = list(model.features)
    categories: dict[str, list[str]] = model.categories_  # type: ignore[attr-defined]
    out = np.zeros((len(features), len(rows)), dtype=np.float64)
    read = set(range(len(features))) if forest is None else set(forest.feature.tolist())
    for j, name in enumerate(features):
        if j not in read:
            continue
        column = X[name]
        if name in categories:
            codes, uniques = pd.factorize(column.take(rows))
            known = pd.Index(categories[name], dtype=object).get_indexer(uniques.astype(object))
            lookup = np.append(np.where(known < 0, np.nan, known), np.nan)
            out[j] = lookup[codes]  # code -1 (missing) -> the trailing NaN
        elif column.dtype == np.float64:
            out[j] = column.to_numpy()[rows]
        else:
            numbers = pd.to_numeric(column.take(rows), errors="coerce")
            out[j] = numbers.astype("float64").to_numpy()
    return out


OPS = {"add": 0, "min": 1, "set": 2}
"""A move's operation, as the kernel reads it."""


def what_if_raw(
    forest: Forest, columns: np.ndarray, moves: Sequence[Mapping[int, Move]]
) -> tuple[np.ndarray, np.ndarray]:
    """The log-odds of each row of LightGBM's matrix given feature-major (``columns``:
    features x n, :func:`lightgbm_columns`), as it is and, per what-if k, with each
    feature ``j`` of ``moves[k]`` (by position) moved by ``moves[k][j]``:
    ``(own (n,), what_ifs (n, k))``."""
    n_ifs, n = len(moves), columns.shape[1]
    own, out = np.empty(n), np.empty((n_ifs, n))
    sets = [m.value for moves_k in moves for m in moves_k.values() if m.op == "set"]
    set_of = {id(v): i for i, v in enumerate(sets)}
    start, node, op, const, row = [0], [], [], [], []
    for t in range(len(forest.tree_start) - 1):  # every split on a moved feature, tree by
        for moves_k in moves:  # tree, then what-if by what-if
            for g in range(forest.tree_start[t], forest.tree_start[t + 1]):
                move = moves_k.get(int(forest.feature[g]))
                if move is not None:
                    node.append(g)
                    op.append(OPS[move.op])
                    const.append(0.0 if move.op == "set" else float(move.value))  # type: ignore[arg-type]
                    row.append(set_of[id(move.value)] if move.op == "set" else 0)
            start.append(len(node))
    if n:
        with KERNEL_LOCK:
            _kernel(
                np.ascontiguousarray(columns, dtype=np.float64),
                np.array(sets, dtype=np.float64).reshape(len(sets), n),
                np.asarray(start, dtype=np.int64), np.asarray(node, dtype=np.int64),
                np.asarray(op, dtype=np.int8), np.asarray(const, dtype=np.float64),
                np.asarray(row, dtype=np.int64), forest.tree_start, forest.feature,
                forest.threshold, forest.categorical, forest.missing, forest.default_left,
                forest.cat_start, forest.cat_left, forest.table_start, forest.leaves, own,
                out,
            )  # fmt: skip
    return own, out.T


@numba.njit(cache=True, inline="always")
def _decide(
    x: np.ndarray,
    r0: int,
    m: int,
    g: int,
    bit: int,
    keys: np.ndarray,
    threshold: np.ndarray,
    categorical: np.ndarray,
    missing: np.ndarray,
    default_left: np.ndarray,
    cat_start: np.ndarray,
    cat_left: np.ndarray,
) -> None:
    """Set bit ``bit`` of ``keys[i]`` to LightGBM's decision at split ``g`` for the value
    ``x[r0 + i]``, i < m (tree.h ``NumericalDecision``: a NaN is 0 unless the split's
    missing type is NaN, a missing value takes the default side; ``CategoricalDecision``:
    NaN or a negative code goes right, else the category's bit). One loop per kind of
    split, without branches inside, so that it runs in SIMD lanes."""
    mask = ~(1 << bit)
    if categorical[g]:
        c0, last = cat_start[g], cat_start[g + 1] - cat_start[g] - 1
        for i in range(m):
            v = x[r0 + i]
            at = 0 if np.isnan(v) else min(max(int(v) + 1, 0), last)
            keys[i] = (keys[i] & mask) | (np.int64(cat_left[c0 + at]) << bit)
        return
    threshold_g, default = threshold[g], int(default_left[g])
    if missing[g] == 2:  # NaN
        for i in range(m):
            v = x[r0 + i]
            left = default if np.isnan(v) else int(v <= threshold_g)
            keys[i] = (keys[i] & mask) | (left << bit)
    elif missing[g] == 1:  # zero
        for i in range(m):
            v = x[r0 + i]
            v = 0.0 if np.isnan(v) else v
            zero = -_ZERO_THRESHOLD <= v <= _ZERO_THRESHOLD
            left = default if zero else int(v <= threshold_g)
            keys[i] = (keys[i] & mask) | (left << bit)
    else:
        for i in range(m):
            v = x[r0 + i]
            v = 0.0 if np.isnan(v) else v
            keys[i] = (keys[i] & mask) | (int(v <= threshold_g) << bit)


@numba.njit(cache=True, nogil=True, parallel=True)
def _kernel(
    columns: np.ndarray,
    sets: np.ndarray,
    touch_start: np.ndarray,
    touch_node: np.ndarray,
    touch_op: np.ndarray,
    touch_const: np.ndarray,
    touch_set: np.ndarray,
    tree_start: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    categorical: np.ndarray,
    missing: np.ndarray,
    default_left: np.ndarray,
    cat_start: np.ndarray,
    cat_left: np.ndarray,
    table_start: np.ndarray,
    leaves: np.ndarray,
    own: np.ndarray,
    out: np.ndarray,
) -> None:
    """Blocks of rows in parallel; within a block, tree by tree in order: each row's
    leaf, then each what-if's (the splits it moves decided again), added to running sums
    that start at 0.0 and take the trees in order, as LightGBM adds them."""
    n_rows = columns.shape[1]
    n_trees = tree_start.size - 1
    n_ifs = out.shape[0]
    block = 256
    for b in numba.prange((n_rows + block - 1) // block):
        r0 = b * block
        m = min(n_rows, r0 + block) - r0
        keys = np.zeros(block, dtype=np.int64)
        moved = np.zeros(block, dtype=np.int64)
        value = np.zeros(block)
        leaf = np.zeros(block)
        total = np.zeros(block)
        sums = np.zeros((n_ifs, block))
        for t in range(n_trees):
            keys[:] = 0
            for g in range(tree_start[t], tree_start[t + 1]):
                _decide(
                    columns[feature[g]], r0, m, g, g - tree_start[t], keys, threshold,
                    categorical, missing, default_left, cat_start, cat_left,
                )  # fmt: skip
            base = table_start[t]
            for i in range(m):
                leaf[i] = leaves[base + keys[i]]
                total[i] += leaf[i]
            for j in range(n_ifs):
                a, e = touch_start[t * n_ifs + j], touch_start[t * n_ifs + j + 1]
                if a == e:
                    for i in range(m):
                        sums[j, i] += leaf[i]
                    continue
                moved[:] = keys
                for p in range(a, e):
                    g = touch_node[p]
                    x = columns[feature[g]]
                    if touch_op[p] == 0:  # add: as numpy adds
                        for i in range(m):
                            value[i] = x[r0 + i] + touch_const[p]
                    elif touch_op[p] == 1:  # min: as np.minimum (NaN stays NaN)
                        c = touch_const[p]
                        for i in range(m):
                            value[i] = c if c < x[r0 + i] else x[r0 + i]
                    else:
                        value[:m] = sets[touch_set[p], r0 : r0 + m]
                    _decide(
                        value, 0, m, g, g - tree_start[t], moved, threshold, categorical,
                        missing, default_left, cat_start, cat_left,
                    )  # fmt: skip
                for i in range(m):
                    sums[j, i] += leaves[base + moved[i]]
        for i in range(m):
            own[r0 + i] = total[i]
            for j in range(n_ifs):
                out[j, r0 + i] = sums[j, i]
