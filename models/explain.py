"""From exact SHAP contributions to reasons a sales rep reads.

Contributions are in log-odds, one per feature. A lead's reasons are about concepts
(features/concepts.py: "pricing-page views", "role", "lead age"): a concept's
contribution is the sum of its features' exact SHAP values (``contributions @ M`` with
``M`` the 0/1 feature-by-concept membership matrix). A concept is a reason when its
contribution is at least ``scoring.min_abs_contribution`` and at least
``scoring.min_reason_share`` of the lead's total |contribution| over concepts, and when
its sign does not contradict the concept's declared direction
(:func:`leadscore.features.concepts.sign_allowed`); the ``top_positive`` largest and the
``top_negative`` most negative are kept. Each reason states the lead's own facts ("viewed
the pricing page 3 times in 90 days, last 1 day ago"), each distinct fact rendered once.
The ``fit`` and ``engagement`` sub-scores are the contributions summed by feature family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from leadscore.features.concepts import Concept, attribute_texts
from leadscore.features.pieces import TEXT
from leadscore.features.registry import FeatureRegistry
from leadscore.models import reasons
from leadscore.models.config import ScoringConfig


def family_sums(
    contributions: np.ndarray, features: Sequence[str], registry: FeatureRegistry
) -> dict[str, np.ndarray]:
    """Contributions summed per feature family (log-odds above the average lead)."""
    families = np.array([registry[f].family for f in features])
    return {
        family: contributions[:, families == family].sum(axis=1) for family in sorted(set(families))
    }


@dataclass(frozen=True)
class ConceptMatrix:
    """The concepts a model's features make up, and which column belongs to which."""

    concepts: list[Concept]
    membership: np.ndarray  # features x concepts, 0/1
    columns: list[np.ndarray]  # per concept, its columns among the model's features

    @classmethod
    def of(cls, features: Sequence[str], registry: FeatureRegistry) -> ConceptMatrix:
        position = {name: i for i, name in enumerate(features)}
        concepts, columns = [], []
        for concept in registry.concepts().values():
            cols = [position[f] for f in concept.features if f in position]
            if cols:
                concepts.append(concept)
                columns.append(np.array(cols, dtype=np.int64))
        membership = np.zeros((len(features), len(concepts)))
        for k, cols in enumerate(columns):
            membership[cols, k] = 1.0
        return cls(concepts, membership, columns)

    def sums(self, contributions: np.ndarray) -> np.ndarray:
        """Each concept's contribution per row: the sum of its features' SHAP values."""
        return contributions @ self.membership


def concept_contributions(
    contributions: np.ndarray, features: Sequence[str], registry: FeatureRegistry
) -> tuple[list[Concept], np.ndarray]:
    """The concepts of ``features`` and their contributions (rows x concepts, log-odds)."""
    matrix = ConceptMatrix.of(features, registry)
    return matrix.concepts, matrix.sums(contributions)


def shares(concept_sums: np.ndarray) -> np.ndarray:
    """Each concept's |contribution| as a fraction of the row's total over concepts."""
    size = np.abs(concept_sums)
    total = size.sum(axis=1, keepdims=True)
    return np.divide(size, total, out=np.zeros_like(size), where=total > 0)


def eligible(
    concept_sums: np.ndarray,
    share: np.ndarray,
    concepts: Sequence[Concept],
    X: pd.DataFrame,
    config: ScoringConfig,
) -> np.ndarray:
    """Rows x concepts: may this concept be one of the row's reasons? (large enough in
    log-odds and in share, and its sign allowed by the concept's direction:
    :func:`leadscore.features.concepts.sign_allowed`, applied in one compiled pass over
    the rows with each directed concept's "absent" form read first)."""
    n, m = concept_sums.shape
    direction = np.array([c.direction for c in concepts], dtype=np.int64)
    absent = np.zeros((m, n), dtype=np.bool_)
    for k, concept in enumerate(concepts):
        if concept.direction != 0:
            absent[k] = concept.absent(concept.fact_values(lambda name: X[name].to_numpy()))
    ok = np.empty((n, m), dtype=np.bool_)
    minimum = (float(config.min_abs_contribution), float(config.min_reason_share))
    _eligible_kernel(concept_sums, share, *minimum, direction, absent, ok)
    return ok


@numba.njit(cache=True, nogil=True)
def _eligible_kernel(
    sums: np.ndarray,
    share: np.ndarray,
    min_abs: float,
    min_share: float,
    direction: np.ndarray,
    absent: np.ndarray,
    ok: np.ndarray,
) -> None:
    """``ok[r, k]``: ``|sums| >= min_abs``, ``share >= min_share`` (NaN: no) and the sign
    allowed: nonzero (direction 0); +1: positive if the lead did it, negative if absent;
    -1 the reverse (``sign_allowed``)."""
    n, m = sums.shape
    for r in range(n):
        for k in range(m):
            c = sums[r, k]
            good = abs(c) >= min_abs and share[r, k] >= min_share
            if good:
                if direction[k] == 0:
                    good = c != 0
                else:
                    did = not absent[k, r]
                    up = did if direction[k] > 0 else not did
                    good = (up and c > 0) or (not up and c < 0)
            ok[r, k] = good


@numba.njit(cache=True, nogil=True)
def _select_kernel(
    sums: np.ndarray, ok: np.ndarray, k_pos: int, k_neg: int, cols: np.ndarray, keep: np.ndarray
) -> None:
    """Per row, the ``k_pos`` largest eligible positive sums (columns, largest first),
    then the ``k_neg`` most negative (most negative first); ties: lower column. A slot is
    kept when it holds an eligible sum of its sign (a row with fewer leaves the rest)."""
    n, m = sums.shape
    best = np.empty(max(k_pos, k_neg, 1))
    at = np.zeros(max(k_pos, k_neg, 1), dtype=np.int64)
    for r in range(n):
        for side in range(2):
            k = k_pos if side == 0 else k_neg
            if k == 0:
                continue
            filled = 0
            for j in range(m):
                c = sums[r, j]
                # the signed value: an eligible sum of this side's sign, else -inf
                if ok[r, j] and (c > 0 if side == 0 else c < 0):
                    v = c if side == 0 else -c
                else:
                    v = -np.inf
                if filled == k and not v > best[k - 1]:
                    continue
                pos = min(filled, k - 1)
                while pos > 0 and v > best[pos - 1]:
                    best[pos] = best[pos - 1]
                    at[pos] = at[pos - 1]
                    pos -= 1
                best[pos] = v
                at[pos] = j
                filled = min(filled + 1, k)
            first = 0 if side == 0 else k_pos
            for i in range(k):
                cols[r, first + i] = at[i]
                keep[r, first + i] = best[i] >= 0.0 and best[i] > -np.inf


def select(
    concept_sums: np.ndarray, ok: np.ndarray, config: ScoringConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the chosen concepts (columns), a validity mask and whether each slot is a
    positive one: positives first (strongest first), then negatives (most negative first).

    One compiled pass over the rows (no signed copies of the sums): each side's
    strongest by insertion, equal sums taken in column order, 1M x 100 in ~0.1 s."""
    n, m = concept_sums.shape
    k_pos, k_neg = min(config.top_positive, m), min(config.top_negative, m)
    cols = np.zeros((n, k_pos + k_neg), dtype=np.int64)
    keep = np.zeros((n, k_pos + k_neg), dtype=bool)
    if n and k_pos + k_neg:
        _select_kernel(concept_sums, ok, k_pos, k_neg, cols, keep)
    return cols, keep, np.arange(k_pos + k_neg) < k_pos


def reason_codes(
    contributions: np.ndarray,
    X: pd.DataFrame,
    features: Sequence[str],
    registry: FeatureRegistry,
    config: ScoringConfig,
) -> list[str]:
    """One JSON array of reasons per row (reasons JSON v2, models/reasons.py), as Python
    strings: :func:`reasons_json` for a few rows (tests, the bench's comparison)."""
    return reasons_json(contributions, X, features, registry, config).tolist()


def reasons_json(
    contributions: np.ndarray,
    X: pd.DataFrame,
    features: Sequence[str],
    registry: FeatureRegistry,
    config: ScoringConfig,
) -> pd.api.extensions.ExtensionArray:
    """One JSON array of reasons per row (reasons JSON v2), written through the codec of
    models/reasons.py (``reasons.encode_batch``), as Arrow text (pandas' ``str``).

    Vectorised by concept: every row citing a concept is put in words at once, each
    distinct fact (e.g. "3 views, last 1 day ago") once; the JSON is assembled from
    distinct pieces without a Python step per row. The one-line ``"text (+); text (-)"``
    form is rendered where it is read (``reasons.as_text``), not here for every lead.
    """
    matrix = ConceptMatrix.of(features, registry)
    sums = matrix.sums(contributions)
    share = shares(sums)
    ok = eligible(sums, share, matrix.concepts, X, config)
    cols, keep, positive_slot = select(sums, ok, config)
    slots = max(cols.shape[1], 1)
    chosen = np.flatnonzero(keep.ravel())  # the reasons, row by row, in slot order
    rows, concepts = chosen // slots, cols.ravel()[chosen]
    texts: list[tuple[str, str]] = []
    text_codes = np.zeros(len(chosen), dtype=np.int64)
    # stable (by row within a concept); 16-bit keys sort by radix
    small = concepts.astype(np.int16) if len(matrix.concepts) < 2**15 else concepts
    by_concept = np.argsort(small, kind="stable")
    bounds = np.flatnonzero(np.diff(concepts[by_concept])) + 1
    for group in np.split(by_concept, bounds) if len(chosen) else []:
        concept = matrix.concepts[concepts[group[0]]]
        codes, distinct = render_concept(concept, X, rows[group], config.new_lead_days)
        text_codes[group] = len(texts) + codes
        texts.extend((concept.key, text) for text in distinct)
    members = [[features[c] for c in columns] for columns in matrix.columns]
    width = max((len(c) for c in matrix.columns), default=0)
    where = np.full((len(matrix.columns), width), -1, dtype=np.int64)
    for k, columns in enumerate(matrix.columns):
        where[k, : len(columns)] = columns
    per_feature = np.empty((len(chosen), width))
    _gather(contributions, rows, where[concepts], per_feature)
    encoded = reasons.encode_batch(
        keep.sum(axis=1),
        texts,
        text_codes,
        positive_slot[chosen % slots],
        sums[rows, concepts],
        share[rows, concepts],
        members,
        concepts,
        per_feature,
    )
    return pd.array(encoded, dtype=TEXT)


@numba.njit(cache=True, nogil=True)
def _gather(contributions: np.ndarray, rows: np.ndarray, at: np.ndarray, out: np.ndarray) -> None:
    """``out[i, m]``: row ``rows[i]``'s contribution of column ``at[i, m]`` (-1: NaN)."""
    for i in range(len(rows)):
        for m in range(at.shape[1]):
            column = at[i, m]
            out[i, m] = contributions[rows[i], column] if column >= 0 else np.nan


def render_concept(
    concept: Concept, X: pd.DataFrame, rows: np.ndarray, new_lead_days: float
) -> tuple[np.ndarray, list[str]]:
    """``concept.text`` of each of ``rows`` of ``X`` (positions), as codes into the
    distinct texts: each distinct fact is put in words once."""
    # the rows first: a whole Arrow-backed column to numpy made an object per row
    facts = concept.text_facts(concept.fact_values(lambda name: _rows_of(X[name], rows)))
    if not facts:
        return np.zeros(len(rows), dtype=np.int64), [concept.text({}, new_lead_days)]
    key = np.zeros(len(rows), dtype=np.int64)
    for values in facts.values():
        # missing values (None, NaN) as one code, -1: no null scan of a text column first
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        key, _ = pd.factorize(key * (len(uniques) + 2) + codes + 1)
    # factorize numbers the distinct facts in order of first appearance: each one's
    # first row is where the code exceeds every code before it (no sort)
    seen = np.maximum.accumulate(key)
    first = np.flatnonzero(np.concatenate([[True], key[1:] > seen[:-1]]))
    return key, _worded(concept, {n: np.asarray(v[first]) for n, v in facts.items()}, new_lead_days)


def _rows_of(column: pd.Series, rows: np.ndarray) -> np.ndarray | ExtensionArray:
    """``column``'s values at ``rows``: an Arrow text column's as its Arrow array (which
    pandas factorises in Arrow), any other's as numpy."""
    taken = column.iloc[rows]
    return taken.array if taken.dtype == TEXT else taken.to_numpy()


def _worded(concept: Concept, facts: dict[str, np.ndarray], new_lead_days: float) -> list[str]:
    """``concept.text`` of each row of ``facts`` (the distinct facts, one row each), the
    values handed over as a frame's ``to_dict`` would (:func:`_native`)."""
    names = list(facts)
    values = [v.tolist() if v.dtype != object else [_native(x) for x in v] for v in facts.values()]
    if concept.kind == "attributes":  # worded a field at a time
        return attribute_texts(concept, dict(zip(names, values, strict=True)))
    return [
        concept.text(dict(zip(names, row, strict=True)), new_lead_days)
        for row in zip(*values, strict=True)
    ]


def _native(value: object) -> object:
    """numpy scalars -> Python scalars, as a frame's ``to_dict`` hands them over."""
    return value.item() if isinstance(value, np.generic) else value
