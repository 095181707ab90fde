"""Score a feature frame of open leads: probability, score, grade, rank, reasons, rules.

The output is the scores frame the store publishes (DESIGN.md section 5). Rank follows the
model's raw log-odds, which orders leads exactly as the calibrated probability does but
also breaks the ties an isotonic calibration leaves, so rank 1 is the single best lead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import LEAD_ID, OWNER, SEGMENT
from features.registry import ENGAGEMENT, FIT, FeatureRegistry
from models.config import ScoringConfig
from models.explain import family_sums, reason_codes
from models.factory import LeadModel
from models.rules import RuleScorer, grade_of

SCORE_COLUMNS = (
    LEAD_ID,
    OWNER,
    SEGMENT,
    "probability",
    "score",
    "grade",
    "rank",
    "percentile",
    FIT,
    ENGAGEMENT,
    "rule_score",
    "rule_grade",
    "reasons",
)


def rank_and_percentile(ranking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank 1 = highest; percentile 100 = best, 0 = worst (share of leads ranked below)."""
    n = len(ranking)
    order = np.argsort(-ranking, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    percentile = 100.0 * (n - rank) / max(n - 1, 1)
    return rank, percentile


def score_frame(
    features: pd.DataFrame,
    model: LeadModel,
    rules: RuleScorer,
    registry: FeatureRegistry,
    config: ScoringConfig,
    leads: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The scores of every row of ``features`` (one per open lead), best first."""
    raw = model.raw_score(features)
    probability = model.predict_proba(features)[:, 1]
    score = np.rint(100 * probability).astype(np.int64)
    contributions, _ = model.contributions(features)
    names = model.features
    families = family_sums(contributions, names, registry)
    rank, percentile = rank_and_percentile(raw)
    rule_points = rules.points(features)
    context = _lead_context(features[LEAD_ID], leads)
    frame = pd.DataFrame(
        {
            LEAD_ID: features[LEAD_ID].to_numpy(),
            OWNER: context[OWNER],
            SEGMENT: context[SEGMENT],
            "probability": probability,
            "score": score,
            "grade": grade_of(score, config.grades),
            "rank": rank,
            "percentile": np.round(percentile, 2),
            FIT: np.round(families.get(FIT, np.zeros(len(raw))), 4),
            ENGAGEMENT: np.round(families.get(ENGAGEMENT, np.zeros(len(raw))), 4),
            "rule_score": np.round(rule_points, 2),
            "rule_grade": grade_of(rule_points, rules._rules().grades),
            "reasons": reason_codes(contributions, features, names, registry, config),
        }
    )
    return frame.sort_values("rank").reset_index(drop=True)


def _lead_context(lead_ids: pd.Series, leads: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Owner and segment of each scored lead, for filtering downstream (null if unknown)."""
    out = {}
    for column in (OWNER, SEGMENT):
        if leads is not None and column in leads:
            out[column] = lead_ids.map(leads.set_index(LEAD_ID)[column]).to_numpy(dtype=object)
        else:
            out[column] = np.full(len(lead_ids), None, dtype=object)
    return out
