"""Exact global ranks without every raw score in one place: a two-pass range rank.

``pipelines.batch.Ranking`` ranks the whole batch in one process (one ``argsort`` over
every lead's raw score: 8 bytes a lead, 800 MB at 100M leads, plus the sort's own index
arrays). Past one machine the ranks can come from the partitions instead, exactly:

1. **sketch** (per partition, in parallel): each partition sends a few evenly spaced
   order statistics of its sort keys (``sketch``); the driver pools them and cuts the
   key space into ``ranges`` value ranges of about equal size (``plan_edges``). Equal keys
   never straddle two ranges, since an edge is a key and a range is a half-open interval.
2. **count** (per partition): each partition counts its leads per range
   (``range_of`` + ``np.bincount``); the counts give every range's exact first rank
   (``range_offsets``: all leads of earlier ranges rank above it).
3. **rank** (per range, in parallel): a range's owner receives, from each partition in
   partition order, that partition's keys in the range (8 bytes a lead and column, and the
   positions to send the ranks back), sorts them stably (``rank_range``) and adds the
   range's offset. Stable within partition order is the global tie order (position in
   the batch), so the ranks equal the one-process ``argsort`` rank exactly.

Keys sort descending: rank 1 is the largest raw score (``models.scoring.rank_and_percentile``);
several columns rank lexicographically, e.g. rule points then raw score
(``models.scoring.rule_ranks``). NaN ranks last and -0.0 equals 0.0, as in ``argsort``.
``rank_partitions`` runs the three passes in one process (the reference; a cluster runs
pass 1 and 2 in the partitions' tasks and pass 3 in one task per range).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

_SIGN = np.uint64(1 << 63)
_NAN_KEY = np.iinfo(np.uint64).max


def descending_key(values: np.ndarray) -> np.ndarray:
    """uint64 keys whose ascending order is ``values``' descending order (NaN last)."""
    x = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 -> 0.0: equal, as argsort sees them
    bits = x.view(np.uint64)
    ascending = np.where(bits & _SIGN, ~bits, bits | _SIGN)  # order-preserving float -> uint
    key = ~ascending
    key[np.isnan(x)] = _NAN_KEY
    return key


def sort_key(*columns: np.ndarray) -> np.ndarray:
    """One sort key a lead: the columns' descending keys, compared left to right (a plain
    uint64 array for one column, a structured array for several)."""
    keys = [descending_key(c) for c in columns]
    if len(keys) == 1:
        return keys[0]
    out = np.empty(len(keys[0]), dtype=[(f"k{i}", np.uint64) for i in range(len(keys))])
    for i, key in enumerate(keys):
        out[f"k{i}"] = key
    return out


def _stable_order(keys: np.ndarray) -> np.ndarray:
    if keys.dtype.names is None:
        return np.argsort(keys, kind="stable")
    return np.lexsort([keys[name] for name in reversed(keys.dtype.names)])


def sketch(keys: np.ndarray, points: int = 64) -> np.ndarray:
    """Pass 1: ``points`` evenly spaced order statistics of one partition's keys."""
    if len(keys) == 0:
        return keys[:0]
    ordered = keys[_stable_order(keys)]
    return ordered[np.linspace(0, len(keys) - 1, min(points, len(keys))).astype(np.int64)]


def plan_edges(sketches: Sequence[np.ndarray], ranges: int) -> np.ndarray:
    """The ``ranges - 1`` distinct edges cutting the pooled sketches into ~equal ranges
    (fewer when the keys have fewer distinct values)."""
    pooled = np.concatenate(list(sketches)) if sketches else np.zeros(0, np.uint64)
    if ranges <= 1 or len(pooled) == 0:
        return pooled[:0]
    ordered = pooled[_stable_order(pooled)]
    cuts = ordered[np.linspace(0, len(ordered), ranges + 1).astype(np.int64)[1:-1]]
    edges = np.unique(cuts)  # sorted, distinct
    return edges[1:] if len(edges) and edges[0] == ordered[0] else edges  # no empty range


def range_of(keys: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Pass 2: each key's range (range r holds edges[r-1] <= key < edges[r])."""
    return np.searchsorted(edges, keys, side="right")


def range_offsets(counts: np.ndarray) -> np.ndarray:
    """From the (partitions, ranges) counts, each range's number of leads ranked above it."""
    per_range = np.asarray(counts, dtype=np.int64).sum(axis=0)
    return np.concatenate([[0], np.cumsum(per_range)[:-1]])


def rank_range(pieces: Sequence[np.ndarray], offset: int) -> list[np.ndarray]:
    """Pass 3: the ranks of one range's keys, sent by each partition in partition order
    (each piece in its partition's row order); returns each piece's ranks."""
    keys = np.concatenate(list(pieces))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[_stable_order(keys)] = np.arange(offset + 1, offset + len(keys) + 1)
    cuts = np.cumsum([0, *(len(p) for p in pieces)])
    return [rank[a:b] for a, b in pairwise(cuts)]


def rank_partitions(
    parts: Sequence[np.ndarray], ranges: int = 8, points: int = 64
) -> list[np.ndarray]:
    """The global rank (1 = first) of every lead of every partition, by the three passes;
    ``parts`` are the partitions' sort keys (``sort_key``) in batch order. Equal to ranking
    the concatenated keys in one ``argsort`` (stable), whatever ``ranges`` is."""
    edges = plan_edges([sketch(k, points) for k in parts], ranges)
    which = [range_of(k, edges) for k in parts]
    n_ranges = len(edges) + 1
    counts = np.array([np.bincount(w, minlength=n_ranges) for w in which]).reshape(-1, n_ranges)
    offsets = range_offsets(counts)
    ranks = [np.empty(len(k), dtype=np.int64) for k in parts]
    for r in range(n_ranges):
        rows = [np.flatnonzero(w == r) for w in which]
        got = rank_range([k[i] for k, i in zip(parts, rows, strict=True)], int(offsets[r]))
        for out, i, rank in zip(ranks, rows, got, strict=True):
            out[i] = rank
    return ranks


def percentile(rank: np.ndarray, n: int) -> np.ndarray:
    """The percentile of a global rank among ``n`` leads (``rank_and_percentile``'s)."""
    return 100.0 * (n - rank) / max(n - 1, 1)
