"""Score a feature frame of open leads: probability, score, grade, rank, reasons, rules.

The output is the scores frame the store publishes (docs/architecture.md §5): the score row
declared in models/schema.py (:data:`SCORE_COLUMNS`); the reasons are their JSON only, put
in words where they are read (``models.reasons.as_text``). Rank follows the
model's raw log-odds, which orders leads exactly as the calibrated probability does but
also breaks the ties an isotonic calibration leaves, so rank 1 is the single best lead.
``rule_rank`` follows the rules' (unclipped) points; leads on equal points are ordered by
the model's log-odds, so the rule rank too is one global order whatever the partitions.
The fit and engagement sub-scores (0-100) and the quadrant cell come from
``models.subscores``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.features.accounts import AccountHistory
from leadscore.features.builder import build_features, entities_at
from leadscore.features.config import FeatureConfig
from leadscore.features.contract import LEAD_ID, OWNER, SEGMENT
from leadscore.features.market import OutcomeHistory
from leadscore.features.pieces import TEXT, labelled
from leadscore.features.registry import ENGAGEMENT, FIT, FeatureRegistry
from leadscore.models.base import LeadScorer
from leadscore.models.config import ScoringConfig
from leadscore.models.explain import family_sums, reasons_json
from leadscore.models.rules import RuleScorer, coded, grade_codes
from leadscore.models.schema import (
    DISPLAY_COLUMNS,
    FACT_COLUMNS,
    NURTURE_COLUMNS,
    SCORE_COLUMNS,
)
from leadscore.models.subscores import (
    CELLS,
    SUM_DECIMALS,
    cell_codes,
    note_missing,
    quantiles_of,
    subscores,
)


def rank_and_percentile(ranking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank 1 = highest; percentile 100 = best, 0 = worst (share of leads ranked below)."""
    n = len(ranking)
    order = np.argsort(-ranking, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    percentile = 100.0 * (n - rank) / max(n - 1, 1)
    return rank, percentile


def rule_ranks(rule_score: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Rank by rule points, 1 = most; equal points are ordered by the model's log-odds
    (``raw``), then by position: the same order whether ranked whole or in partitions."""
    order = np.lexsort((-np.asarray(raw, dtype=np.float64), -np.asarray(rule_score, np.float64)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


class StageTimes:
    """Wall seconds per named stage, summed over calls (partitions); for benchmarks/logs."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _stage(times: StageTimes | None, name: str) -> AbstractContextManager[None]:
    return times.stage(name) if times is not None else nullcontext()


RAW_SCORE = "raw_score"
"""The model's log-odds: what ranks leads (kept beside the scores until they are ranked)."""


@dataclass(frozen=True)
class Predicted:
    """What a partition's global ranks need, and the rest of the model's work on it: the
    first pass of the nightly batch (``pipelines.passes``), the "floor" a run cannot skip.

    ``raw`` (log-odds) and ``rule_points`` rank the batch; ``probability`` is calibrated
    from ``raw``; ``contributions`` are the exact additive explanations (rows x features,
    log-odds; possibly memory-mapped from the spill), ``families`` their sums per feature
    family."""

    raw: np.ndarray
    probability: np.ndarray
    contributions: np.ndarray
    families: dict[str, np.ndarray]
    rule_points: np.ndarray

    def __len__(self) -> int:
        return len(self.raw)


def predict_partition(
    features: pd.DataFrame,
    model: LeadScorer,
    rules: RuleScorer,
    registry: FeatureRegistry,
    times: StageTimes | None = None,
) -> Predicted:
    """The model's scores and exact explanations of one partition, and its rule points."""
    with _stage(times, "predict"):
        raw = model.raw_score(features)
        probability = model.calibrated(raw)
    with _stage(times, "explain"):
        contributions, _ = model.contributions(features)
        families = family_sums(contributions, model.features, registry)
    with _stage(times, "rules"):
        rule_points = np.round(rules.points(coded(features)), 2)
    return Predicted(raw, probability, contributions, families, rule_points)


def score_partition(
    features: pd.DataFrame,
    model: LeadScorer,
    rules: RuleScorer,
    registry: FeatureRegistry,
    config: ScoringConfig,
    leads: pd.DataFrame | None = None,
    times: StageTimes | None = None,
    predicted: Predicted | None = None,
) -> pd.DataFrame:
    """The scores of one partition of open leads, in input order, all but their rank.

    Everything here depends on the partition's rows only, so partitions can be scored
    anywhere and in one pass; ``rank`` and ``percentile`` are global and are added by
    :func:`with_rank` once every partition's ``raw_score`` (the model's log-odds) is
    known. ``leads`` needs only the partition's leads (owner and segment are looked up).
    ``predicted``: the partition's :func:`predict_partition`, already run (the batch's
    first pass); None runs it here.
    """
    if predicted is None:
        predicted = predict_partition(features, model, rules, registry, times)
    raw, probability, families = predicted.raw, predicted.probability, predicted.families
    score = np.rint(100 * probability).astype(np.int64)
    names = model.features
    with _stage(times, "reasons"):
        reasons = reasons_json(predicted.contributions, features, names, registry, config)
    with _stage(times, "rules"):
        coded_features = coded(features)  # each column the rules read factorised once
        rule_points = predicted.rule_points
        rule_grades = _grades(rule_points, rules._rules().grades)
        rule_reasons = rules.reasons_json(coded_features)
    quantiles = quantiles_of(model)
    if quantiles is None:
        note_missing(model)
    sub = subscores(families, quantiles, len(raw))
    context = _lead_context(features[LEAD_ID], leads)
    zeros = np.zeros(len(raw))
    return pd.DataFrame(
        {
            LEAD_ID: _text(features[LEAD_ID]),
            OWNER: context[OWNER],
            SEGMENT: context[SEGMENT],
            "probability": probability,
            "score": score,
            "grade": _grades(score, config.grades),
            FIT: np.round(families.get(FIT, zeros), SUM_DECIMALS),
            ENGAGEMENT: np.round(families.get(ENGAGEMENT, zeros), SUM_DECIMALS),
            "rule_score": rule_points,
            "rule_grade": rule_grades,
            "reasons": reasons,
            "fit_score": sub["fit_score"],
            "engagement_score": sub["engagement_score"],
            "cell": labelled(
                cell_codes(sub["fit_score"], sub["engagement_score"], config.cells.model_dump()),
                CELLS,
            ),
            "rule_reasons": rule_reasons,
            RAW_SCORE: raw,
            **_v4_placeholders(len(raw)),
        }
    )


def _v4_placeholders(n: int) -> dict[str, object]:
    """Score-row columns not computed here yet, as nulls: display columns and lead
    facts (features/facts.py), the nurture list's next step (models/nurture/)."""
    nulls = np.full(n, None, dtype=object)
    out: dict[str, object] = {c: nulls for c in (*DISPLAY_COLUMNS, *FACT_COLUMNS, *NURTURE_COLUMNS)}
    out["next_step_gain"] = np.full(n, np.nan)
    return out


def with_rank(
    frame: pd.DataFrame, rank: np.ndarray, percentile: np.ndarray, rule_rank: np.ndarray
) -> pd.DataFrame:
    """A partition's scores with their global rank, percentile and rule rank, in
    SCORE_COLUMNS order."""
    ranked = frame.assign(rank=rank, percentile=np.round(percentile, 2), rule_rank=rule_rank)
    extra = [c for c in ranked.columns if c not in SCORE_COLUMNS]
    return ranked[[*SCORE_COLUMNS, *extra]]


def score_frame(
    features: pd.DataFrame,
    model: LeadScorer,
    rules: RuleScorer,
    registry: FeatureRegistry,
    config: ScoringConfig,
    leads: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The scores of every row of ``features`` (one per open lead), best first."""
    frame = score_partition(features, model, rules, registry, config, leads)
    raw = frame[RAW_SCORE].to_numpy()
    rank, percentile = rank_and_percentile(raw)
    rule_rank = rule_ranks(frame["rule_score"].to_numpy(), raw)
    ranked = with_rank(frame, rank, percentile, rule_rank)
    return ranked.sort_values("rank").reset_index(drop=True)


def _grades(values: np.ndarray, cutoffs: Mapping[str, float]) -> pd.api.extensions.ExtensionArray:
    """``rules.grade_of`` as the frames' text, without a Python string per lead."""
    return labelled(grade_codes(values, cutoffs), list(cutoffs))


def _text(values: pd.Series) -> pd.api.extensions.ExtensionArray:
    """A column as the frames' text: as it is when it already is."""
    if values.dtype == TEXT:
        return values.array
    return pd.array(values.to_numpy(dtype=object), dtype=TEXT)


def _lead_context(
    lead_ids: pd.Series, leads: pd.DataFrame | None
) -> dict[str, pd.api.extensions.ExtensionArray]:
    """Owner and segment of each scored lead, for filtering downstream (null if unknown)."""
    at = None if leads is None else _positions(leads[LEAD_ID], lead_ids)
    out = {}
    for column in (OWNER, SEGMENT):
        if leads is not None and column in leads and at is not None:
            values = pa.array(_text(leads[column]))
            out[column] = pd.array(values.take(pa.array(at, mask=at < 0)), dtype=TEXT)
        else:
            out[column] = pd.array(np.full(len(lead_ids), None, dtype=object), dtype=TEXT)
    return out


def _positions(ids: pd.Series, wanted: pd.Series) -> np.ndarray:
    """Where each of ``wanted`` is in ``ids`` (-1: absent); a partition's features keep
    its leads' order, which one comparison tells, without hashing an id."""
    same_kind = len(ids) == len(wanted) and ids.dtype == wanted.dtype == TEXT
    if same_kind and ids.array.equals(wanted.array):
        return np.arange(len(ids))
    return pd.Index(ids).get_indexer(wanted)


@dataclass(frozen=True)
class Partition:
    """A slice of the open leads and exactly their activities: the unit of scoring work."""

    leads: pd.DataFrame
    activities: pd.DataFrame | None


def partition_leads(
    leads: pd.DataFrame, activities: pd.DataFrame | None, rows: int
) -> list[Partition]:
    """Cut ``leads``, in ``lead_id`` order, into slices of ``rows`` leads with their activities.

    Id order makes each partition one contiguous range of ids, so the store's indexes
    (keyed on lead_id) fill in order: SQLite inserted a batch ~4x faster than in input
    order. Activities are reordered once so each partition's activities are one
    contiguous slice (a view, not a copy); activities of leads not in ``leads`` are left
    out.
    """
    if rows < 1:
        raise ValueError("partition rows must be >= 1")
    leads = leads.sort_values(LEAD_ID, kind="stable")
    starts = list(range(0, len(leads), rows)) or [0]
    if activities is None:
        return [Partition(leads.iloc[a : a + rows], None) for a in starts]
    code = pd.Index(leads[LEAD_ID]).get_indexer(activities[LEAD_ID])
    mine = np.flatnonzero(code >= 0)
    positions = mine[np.argsort(code[mine], kind="stable")]
    ordered = activities.iloc[positions]
    cuts = np.searchsorted(code[positions], [*starts, len(leads)])
    return [
        Partition(leads.iloc[a : a + rows], ordered.iloc[cuts[i] : cuts[i + 1]])
        for i, a in enumerate(starts)
    ]


def partition_features(
    part: Partition,
    as_of: pd.Timestamp,
    config: FeatureConfig,
    history: OutcomeHistory | None = None,
    accounts: AccountHistory | None = None,
) -> pd.DataFrame:
    """The partition's open leads' features as of the scoring time (the one feature path).

    With ``features.market`` on, ``history`` must be the whole leads table's outcomes: a
    partition holds open leads only, whose own history would say nothing. ``accounts``
    (``data.joins``) likewise: every clean lead's and activity's accounts.
    """
    if config.market.enabled and history is None:
        raise ValueError("features.market is on: scoring needs the leads table's outcome history")
    entities = entities_at(part.leads, as_of)
    return build_features(
        part.leads, part.activities, entities, config, history=history, accounts=accounts
    )
