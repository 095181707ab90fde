"""What the monitor reads (an archived batch) and what it returns (per batch, a decision).

Declared once here: the monitor flow builds :class:`ArchivedBatch` from the archive,
:func:`leadscore.models.monitor.run.monitor` returns a :class:`MonitorResult`, the store
keeps its tables, and the report, the API and the page read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

ARCHIVE_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "probability",
    "grade",
    "rule_score",
    "rule_grade",
    "cell",
)
"""The score columns an archived batch keeps (one row per scored lead)."""

GRADE_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "as_of",
    "ranking",  # "model" | "rules"
    "grade",
    "n",  # leads of this grade whose outcome is known (or counted as not yet converted)
    "conversions",
    "predicted",  # mean predicted probability (model rows; rules: the model's on the same leads)
    "realised",  # conversions / n
    "low",  # Wilson 95% interval of realised
    "high",
    "observed_days",
    "mature",
)
"""Realised conversion per grade of one batch, model and rules (store: ``monitor_grades``)."""

DRIFT_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "as_of",
    "feature",  # a model feature, or "prediction"
    "kind",  # "numeric" | "categorical" | "prediction"
    "psi",
    "missing_ref",  # share missing in the reference rows
    "missing_now",  # share missing tonight
    "unseen_now",  # categorical: share of values the reference never had
    "top_shift",  # the bin that moved most, in words: "lead_source=partner 2.0% -> 21.3%"
)
"""Per-feature drift of one batch against the reference (store: ``monitor_drift``)."""

METRIC_NAMES: tuple[str, ...] = (
    "roc_auc",
    "roc_auc_rules",
    "pr_auc",
    "pr_auc_rules",
    "ece",
    "estimated_roc_auc",  # before outcomes: expected ROC-AUC if probabilities are calibrated
    "prediction_psi",
    "max_feature_psi",
    "quarantine_share",
    # plus capture_top_<k> and capture_top_<k>_rules for each monitor.top_percent k
)
"""Numbers of one batch; None where not computable (too few conversions, no reference)."""


@dataclass(frozen=True)
class ArchivedBatch:
    """One published batch as the archive keeps it."""

    batch_id: str
    as_of: pd.Timestamp  # UTC
    model_version: str
    scores: pd.DataFrame  # ARCHIVE_COLUMNS
    # profile.BatchCounts.to_dict(): per feature and "prediction", the bins, the reference's
    # shares and tonight's counts (self-contained: drift needs no model); None: no reference
    profile: dict[str, Any] | None
    quarantine: dict[str, int] = field(default_factory=dict)  # reason -> rows quarantined
    rows_in: int = 0  # lead rows read for the batch (quarantine share's denominator)


@dataclass(frozen=True)
class BatchResult:
    """The monitor's view of one batch."""

    batch_id: str
    as_of: pd.Timestamp
    model_version: str
    n_leads: int  # leads scored in the batch
    n_known: int  # of them, with an outcome read tonight (the rest: gone from the source)
    conversions: int  # converted within (as_of, as_of + observed_days]
    observed_days: int  # min(horizon, days since as_of)
    mature: bool  # observed_days == horizon: final figures
    metrics: dict[str, float | None]  # METRIC_NAMES + capture_top_<k>[_rules]
    grades: pd.DataFrame  # GRADE_COLUMNS
    drift: pd.DataFrame  # DRIFT_COLUMNS
    quarantine: dict[str, int]


@dataclass(frozen=True)
class Decision:
    """Retrain or not, with every reason in words ("PSI of lead_source 0.31 > 0.2")."""

    action: Literal["retrain", "none"]
    reasons: tuple[str, ...]  # each threshold crossed; empty for "none" unless the cooldown held it
    text: str  # "retrain: PSI of lead_source 0.31 > 0.2" | "no action: all within bounds"


@dataclass(frozen=True)
class MonitorResult:
    """One monitor run: every archived batch judged, and what to do about it."""

    created_at: pd.Timestamp  # when the monitor ran (UTC)
    now: pd.Timestamp  # outcomes known up to here (the source's end, or the configured as_of)
    champion_version: str | None
    horizon_days: int
    batches: tuple[BatchResult, ...]  # oldest first
    decision: Decision
    # ids of the batches taken as stored (mature when last judged: their figures are final)
    # rather than judged again by this run; the store keeps their rows as they are
    reused: tuple[str, ...] = ()
