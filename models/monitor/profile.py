"""The reference profile of the training rows, and one batch's counts in its bins.

A :class:`ReferenceProfile` is fitted once, at training, on the model's input columns of
the newest training examples (:func:`reference_from_examples`), and travels with the model
(``REFERENCE_ATTRIBUTE``). It fixes, per feature, the bins every later batch is counted in,
and the reference's share in each bin:

- numeric: ``monitor.bins`` quantile bins of the reference values (equal values stay in one
  bin, so a count that is mostly 0 gets a bin "<= 0" of its own), plus a ``missing`` bin;
- categorical: the reference's most frequent categories (at most
  :data:`MAX_CATEGORIES`), an ``(other)`` bin for the reference's rarer ones, an
  ``(unseen)`` bin for values the reference never had, and a ``missing`` bin;
- the prediction: quantile bins of the reference's predicted probabilities.

:func:`batch_counts` counts a batch (or one partition of it: :meth:`BatchCounts.merge`
adds partitions) in those bins, vectorised (``np.searchsorted`` for numbers,
``pd.factorize`` for categories: each distinct value is looked up once). A
:class:`BatchCounts` carries its bins' labels and the reference's shares, so drift can be
computed from it alone, years later, without the model (``docs/monitoring.md``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

REFERENCE_ATTRIBUTE = "monitor_reference_"
"""The attribute of a fitted model holding its :class:`ReferenceProfile`."""

PREDICTION = "prediction"
"""The name the predicted probability goes by in a profile and in the drift table."""

MAX_CATEGORIES = 50
"""Categories of a categorical feature kept as bins of their own (most frequent first)."""

MAX_TAIL = 10_000
"""Rarer reference categories remembered (they count as ``(other)``, not ``(unseen)``).

Beyond this many (an id-like column), every value outside the kept categories counts as
``(other)``: unseen values can then not be told apart, and ``unseen_now`` reads 0."""

MISSING = "missing"
OTHER = "(other)"
UNSEEN = "(unseen)"

Kind = Literal["numeric", "categorical", "prediction"]


def _number(value: float) -> str:
    """A bin edge in words: 4 significant digits, no trailing zeros."""
    return f"{value:.4g}"


def _numeric_labels(edges: tuple[float, ...]) -> list[str]:
    """``<= e0``, ``(e0, e1]``, ..., ``> e_last``: one label per value bin."""
    if not edges:
        return ["any value"]
    labels = [f"<= {_number(edges[0])}"]
    labels += [f"({_number(a)}, {_number(b)}]" for a, b in itertools.pairwise(edges)]
    labels.append(f"> {_number(edges[-1])}")
    return labels


def _as_float(values: Any) -> np.ndarray:
    """Values as float64; anything not a number (text in a numeric column) becomes NaN."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _factorized(values: Any) -> tuple[np.ndarray, list[str]]:
    """(codes, distinct values as text); code -1 is missing. Each distinct value is turned
    into text once, so a million rows cost one hash pass."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _value_bins(x: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin i of (edges[i-1], edges[i]]: the number of edges below each value (int64).

    For the few edges of a profile, one comparison pass per edge is branch-free and ~5x
    faster than ``np.searchsorted`` on a million unordered values (NaN lands in bin 0 and
    is moved to the missing bin by the caller); same result, searchsorted side="left".
    """
    if len(edges) > 255:
        return np.searchsorted(np.asarray(edges, dtype=np.float64), x, side="left")
    below = np.zeros(len(x), dtype=np.uint8)
    for edge in edges:
        below += x > edge
    return below.astype(np.int64)


def is_categorical(series: pd.Series) -> bool:
    """A column profiled by category: text, object, pandas category or boolean."""
    dtype = series.dtype
    return not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


@dataclass(frozen=True, eq=False)
class FeatureBins:
    """One feature's bins and the reference's share in each (shares sum to 1)."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()  # numeric / prediction: bin i is (edges[i-1], edges[i]]
    categories: tuple[str, ...] = ()  # categorical: the kept categories, one bin each
    tail: frozenset[str] = field(default_factory=frozenset)  # rarer reference categories
    tail_complete: bool = True  # False: more than MAX_TAIL rarer ones (not all remembered)

    @property
    def has_missing(self) -> bool:
        """Whether the last bin counts missing values (every kind but the prediction)."""
        return self.kind != PREDICTION

    def bin_of(self, values: Any) -> np.ndarray:
        """The bin index of every value (int64), vectorised."""
        if self.kind == "categorical":
            return self._category_bins(values)
        x = _as_float(values)
        bins = _value_bins(x, self.edges)
        if self.has_missing:  # the prediction has none: a NaN probability (never
            bins[np.isnan(x)] = len(self.labels) - 1  # published) lands in the lowest bin
        return bins

    def _category_bins(self, values: Any) -> np.ndarray:
        codes, uniques = _factorized(values)
        kept = {c: i for i, c in enumerate(self.categories)}
        other, unseen, missing = (
            len(self.categories),
            len(self.categories) + 1,
            len(self.labels) - 1,
        )
        lookup = np.empty(len(uniques) + 1, dtype=np.int64)
        for i, text in enumerate(uniques):
            if text in kept:
                lookup[i] = kept[text]
            elif text in self.tail or not self.tail_complete:
                lookup[i] = other
            else:
                lookup[i] = unseen
        lookup[-1] = missing  # code -1 indexes the last slot
        return lookup[codes]

    def count(self, values: Any) -> np.ndarray:
        """Rows per bin (int64, one entry per label)."""
        return np.bincount(self.bin_of(values), minlength=len(self.labels)).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the tail as a sorted list)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "labels": list(self.labels),
            "shares": [float(s) for s in self.shares],
            "edges": [float(e) for e in self.edges],
            "categories": list(self.categories),
            "tail": sorted(self.tail),
            "tail_complete": self.tail_complete,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBins:
        return cls(
            name=str(data["name"]),
            kind=data["kind"],
            labels=tuple(data["labels"]),
            shares=tuple(float(s) for s in data["shares"]),
            edges=tuple(float(e) for e in data.get("edges", ())),
            categories=tuple(data.get("categories", ())),
            tail=frozenset(data.get("tail", ())),
            tail_complete=bool(data.get("tail_complete", True)),
        )


def _shares(counts: np.ndarray) -> tuple[float, ...]:
    total = counts.sum()
    if total == 0:
        return tuple(0.0 for _ in counts)
    return tuple(float(c) / float(total) for c in counts)


def _quantile_edges(values: np.ndarray, bins: int) -> tuple[float, ...]:
    """Distinct inner quantiles of the non-missing values (observed values, ``lower``)."""
    finite = values[~np.isnan(values)]
    if len(finite) == 0:
        return ()
    cuts = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    edges = np.unique(cuts)
    if len(edges) and edges[-1] >= finite.max():  # no empty top bin above the maximum
        edges = edges[:-1]
    return tuple(float(e) for e in edges)


def numeric_bins(name: str, values: Any, bins: int, kind: Kind = "numeric") -> FeatureBins:
    """Quantile bins of ``values`` (plus ``missing`` unless ``kind`` is the prediction)."""
    x = _as_float(values)
    edges = _quantile_edges(x, bins)
    labels = _numeric_labels(edges)
    if kind != PREDICTION:
        labels.append(MISSING)
    shell = FeatureBins(name, kind, tuple(labels), (), edges=edges)
    return replace(shell, shares=_shares(shell.count(x)))


def categorical_bins(name: str, values: Any, max_categories: int = MAX_CATEGORIES) -> FeatureBins:
    """The most frequent categories, then ``(other)``, ``(unseen)`` and ``missing``."""
    codes, uniques = _factorized(values)
    per_value = np.bincount(codes[codes >= 0], minlength=len(uniques))
    order = sorted(range(len(uniques)), key=lambda i: (-per_value[i], uniques[i]))
    kept = tuple(uniques[i] for i in order[:max_categories])
    rest = [uniques[i] for i in order[max_categories:]]
    complete = len(rest) <= MAX_TAIL
    labels = (*kept, OTHER, UNSEEN, MISSING)
    tail = frozenset(rest if complete else ())
    shell = FeatureBins(name, "categorical", labels, (), (), kept, tail, complete)
    return replace(shell, shares=_shares(shell.count(values)))


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Every feature's bins and the prediction's, fitted on the reference rows."""

    features: dict[str, FeatureBins]  # in the model's column order
    prediction: FeatureBins
    rows: int
    start: pd.Timestamp | None = None  # the reference rows' as_of range (None: not given)
    end: pd.Timestamp | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "features": [b.to_dict() for b in self.features.values()],
            "prediction": self.prediction.to_dict(),
            "rows": self.rows,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        features = [FeatureBins.from_dict(f) for f in data["features"]]
        return cls(
            features={b.name: b for b in features},
            prediction=FeatureBins.from_dict(data["prediction"]),
            rows=int(data["rows"]),
            start=None if data.get("start") is None else pd.Timestamp(data["start"]),
            end=None if data.get("end") is None else pd.Timestamp(data["end"]),
        )


def reference_from_examples(
    X: pd.DataFrame,
    proba: np.ndarray,
    *,
    as_of: pd.Series | None,
    days: int,
    bins: int,
) -> ReferenceProfile:
    """The reference profile of the model's input columns ``X`` and its probabilities.

    ``X`` holds the training and validation examples (the model's input columns only);
    with ``as_of`` (aligned with ``X``), only the newest ``days`` days of examples are kept,
    the world the model saw last; all rows otherwise. Text, object, category and boolean
    columns are profiled by category, the rest by quantile bins.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) != len(X):
        raise ValueError(f"{len(proba)} probabilities for {len(X)} rows")
    start = end = None
    if as_of is not None and len(as_of) != len(X):
        raise ValueError(f"{len(as_of)} as_of stamps for {len(X)} rows")
    if as_of is not None and len(X):
        stamps = pd.to_datetime(pd.Series(as_of).reset_index(drop=True), utc=True)
        end = stamps.max()
        keep = (stamps > end - pd.Timedelta(days=days)).to_numpy()
        X, proba = X.iloc[np.flatnonzero(keep)], proba[keep]
        start = stamps[keep].min()
    features = {
        name: (
            categorical_bins(name, X[name])
            if is_categorical(X[name])
            else numeric_bins(name, X[name], bins)
        )
        for name in X.columns
    }
    prediction = numeric_bins(PREDICTION, proba, bins, kind=PREDICTION)
    return ReferenceProfile(features, prediction, rows=len(X), start=start, end=end)


@dataclass(frozen=True, eq=False)
class FeatureCounts:
    """One feature's rows per bin in a batch, beside the bins' labels and reference shares."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    reference: tuple[float, ...]  # the reference's share per bin
    counts: np.ndarray  # int64, one per label

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "labels": list(self.labels),
            "reference": [float(s) for s in self.reference],
            "counts": [int(c) for c in self.counts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureCounts:
        return cls(
            name=str(data["name"]),
            kind=data["kind"],
            labels=tuple(data["labels"]),
            reference=tuple(float(s) for s in data["reference"]),
            counts=np.asarray(data["counts"], dtype=np.int64),
        )


@dataclass(frozen=True, eq=False)
class BatchCounts:
    """A batch's (or a partition's) rows per bin, every feature and the prediction."""

    rows: int
    features: dict[str, FeatureCounts]  # the prediction last, under PREDICTION

    def merge(self, other: BatchCounts) -> BatchCounts:
        """The counts of both (two partitions of one batch, counted in the same bins)."""
        if list(self.features) != list(other.features):
            raise ValueError("batch counts of different features cannot be merged")
        merged = {}
        for name, mine in self.features.items():
            theirs = other.features[name]
            if mine.labels != theirs.labels:
                raise ValueError(f"batch counts of {name} are in different bins")
            merged[name] = FeatureCounts(
                name, mine.kind, mine.labels, mine.reference, mine.counts + theirs.counts
            )
        return BatchCounts(self.rows + other.rows, merged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, self-contained (labels and reference shares included)."""
        return {"rows": self.rows, "features": [f.to_dict() for f in self.features.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchCounts:
        features = [FeatureCounts.from_dict(f) for f in data["features"]]
        return cls(rows=int(data["rows"]), features={f.name: f for f in features})


def _counts(bins: FeatureBins, values: Any) -> FeatureCounts:
    return FeatureCounts(bins.name, bins.kind, bins.labels, bins.shares, bins.count(values))


def batch_counts(X: pd.DataFrame, proba: np.ndarray, reference: ReferenceProfile) -> BatchCounts:
    """``X``'s rows per reference bin, every reference feature, and the prediction's.

    ``X`` may carry more columns than the reference (keys, other features: ignored); a
    reference feature absent from ``X`` counts every row as missing (the column went
    away, e.g. a broken export). Categorical values are matched by their text.
    """
    n = len(X)
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) != n:
        raise ValueError(f"{len(proba)} probabilities for {n} rows")
    features: dict[str, FeatureCounts] = {}
    for name, bins in reference.features.items():
        if name in X.columns:
            features[name] = _counts(bins, X[name])
        else:
            counts = np.zeros(len(bins.labels), dtype=np.int64)
            counts[-1] = n
            features[name] = FeatureCounts(name, bins.kind, bins.labels, bins.shares, counts)
    features[PREDICTION] = _counts(reference.prediction, proba)
    return BatchCounts(n, features)
