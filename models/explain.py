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

from leadscore.features.concepts import Concept, sign_allowed
from leadscore.features.registry import FeatureRegistry
from leadscore.models import reasons
from leadscore.models.config import ScoringConfig
from leadscore.models.treeshap import KERNEL_LOCK


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
    log-odds and in share, and its sign allowed by the concept's direction)."""
    ok = (np.abs(concept_sums) >= config.min_abs_contribution) & (share >= config.min_reason_share)
    for k, concept in enumerate(concepts):
        column = concept_sums[:, k]
        if concept.direction == 0:
            ok[:, k] &= column != 0
            continue
        facts = concept.fact_values(lambda name: X[name].to_numpy())
        ok[:, k] &= sign_allowed(concept.direction, concept.absent(facts), column)
    return ok


@numba.njit(cache=True, parallel=True)
def _top_kernel(signed: np.ndarray, k: int, idx: np.ndarray) -> None:
    """Per row, the columns of the k largest values, largest first (ties: lower column)."""
    n, m = signed.shape
    for r in numba.prange(n):
        best = np.full(k, -np.inf)
        cols = np.zeros(k, dtype=np.int64)
        filled = 0
        for j in range(m):
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
        for i in range(k):
            idx[r, i] = cols[i]


def _top(
    contributions: np.ndarray, k: int, sign: int, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the k strongest contributions of one sign per row, and a validity mask.

    One pass per row (numba) instead of a partition and a sort: 1M x 100 in ~0.1 s.
    Equal contributions are taken in column order; ``-inf`` is never valid.
    """
    k = min(k, contributions.shape[1])
    if k == 0:
        shape = (len(contributions), 0)
        return np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=bool)
    signed = np.ascontiguousarray(contributions * sign)
    idx = np.empty((len(signed), k), dtype=np.int64)
    if len(signed):
        with KERNEL_LOCK:
            _top_kernel(signed, k, idx)
    chosen = np.take_along_axis(signed, idx, axis=1)
    return idx, (chosen >= floor) & (chosen > -np.inf)


def select(
    concept_sums: np.ndarray, ok: np.ndarray, config: ScoringConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the chosen concepts (columns), a validity mask and their directions:
    positives first (strongest first), then negatives (most negative first)."""
    positive = np.where(ok & (concept_sums > 0), concept_sums, -np.inf)
    negative = np.where(ok & (concept_sums < 0), concept_sums, np.inf)
    pos, pos_ok = _top(positive, config.top_positive, 1, 0.0)
    neg, neg_ok = _top(negative, config.top_negative, -1, 0.0)
    signs = [reasons.POSITIVE] * pos.shape[1] + [reasons.NEGATIVE] * neg.shape[1]
    cols = np.concatenate([pos, neg], axis=1)
    return cols, np.concatenate([pos_ok, neg_ok], axis=1), np.array(signs, dtype=object)


def reason_codes(
    contributions: np.ndarray,
    X: pd.DataFrame,
    features: Sequence[str],
    registry: FeatureRegistry,
    config: ScoringConfig,
) -> list[str]:
    """One JSON array of reasons per row (reasons JSON v2, models/reasons.py)."""
    return reasons_json_and_text(contributions, X, features, registry, config)[0]


def reasons_json_and_text(
    contributions: np.ndarray,
    X: pd.DataFrame,
    features: Sequence[str],
    registry: FeatureRegistry,
    config: ScoringConfig,
) -> tuple[list[str], list[str]]:
    """:func:`reason_codes`, and the same reasons as one line each for people and CSVs:
    ``"text (+); text (-)"`` (``models.reasons.as_text`` of the JSON, without parsing a
    million JSON arrays back). Both are written through the codec of models/reasons.py.

    Vectorised by concept: every row citing a concept is rendered at once, each distinct
    fact (e.g. "3 views, last 1 day ago") formatted once, every number written once per
    distinct rounded value.
    """
    matrix = ConceptMatrix.of(features, registry)
    sums = matrix.sums(contributions)
    share = shares(sums)
    ok = eligible(sums, share, matrix.concepts, X, config)
    cols, keep, direction = select(sums, ok, config)
    n, slots = cols.shape
    rows = np.repeat(np.arange(n), slots)
    flat_cols, flat_dir = cols.ravel(), np.tile(direction, n)
    fragments = np.full(n * slots, "", dtype=object)
    lines = np.full(n * slots, "", dtype=object)
    chosen = np.flatnonzero(keep.ravel())
    by_col = chosen[np.argsort(flat_cols[chosen], kind="stable")]
    bounds = np.flatnonzero(np.diff(flat_cols[by_col])) + 1
    plus, minus = reasons.marker(reasons.POSITIVE), reasons.marker(reasons.NEGATIVE)
    for group in np.split(by_col, bounds) if len(by_col) else []:
        k = flat_cols[group[0]]
        concept, group_rows = matrix.concepts[k], rows[group]
        plain = render_concept(concept, X, group_rows, config.new_lead_days)
        suffix = np.where(flat_dir[group] == reasons.POSITIVE, plus, minus).astype(object)
        lines[group] = plain + suffix
        members = [features[c] for c in matrix.columns[k]]
        per_feature = contributions[np.ix_(group_rows, matrix.columns[k])]
        fragments[group] = reasons.fragments(
            concept.key,
            reasons.quote_many(plain),
            flat_dir[group],
            sums[group_rows, k],
            share[group_rows, k],
            members,
            per_feature,
        )
    # rows from the slot columns (zip): no list per row kept alive, which the garbage
    # collector would otherwise walk again and again (~1 s per million rows)
    json_cols = [fragments[j::slots].tolist() for j in range(slots)]
    text_cols = [lines[j::slots].tolist() for j in range(slots)]
    as_json = [reasons.join_fragments(row) for row in zip(*json_cols, strict=True)]
    as_text = [reasons.join_lines(row) for row in zip(*text_cols, strict=True)]
    if not slots:
        as_json, as_text = ["[]"] * n, [""] * n
    return as_json, as_text


def render_concept(
    concept: Concept, X: pd.DataFrame, rows: np.ndarray, new_lead_days: float
) -> np.ndarray:
    """``concept.text`` of each of ``rows`` of ``X`` (positions), once per distinct fact."""
    facts = concept.text_facts(concept.fact_values(lambda name: X[name].to_numpy()[rows]))
    if not facts:
        return np.full(len(rows), concept.text({}, new_lead_days), dtype=object)
    key = np.zeros(len(rows), dtype=np.int64)
    for values in facts.values():
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        key, _ = pd.factorize(key * (len(uniques) + 1) + codes)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = [
        concept.text({name: _native(v[i]) for name, v in facts.items()}, new_lead_days)
        for i in first
    ]
    return np.array(texts, dtype=object)[inverse.ravel()]


def _native(value: object) -> object:
    """numpy scalars -> Python scalars, as a frame's ``to_dict`` hands them over."""
    return value.item() if isinstance(value, np.generic) else value
