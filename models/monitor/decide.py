"""Retrain or not, and why, in words: every threshold crossed is one reason.

What is read (thresholds: ``monitor.thresholds``, docs/monitoring.md):

- drift, on the NEWEST batch (it needs no outcomes): each feature whose PSI exceeds
  ``max_feature_psi`` ("PSI of lead_source 0.31 > 0.2"), and the prediction's PSI against
  ``max_prediction_psi``;
- live performance, on the newest MATURE batch of the champion's version with at least
  ``monitor.min_conversions`` conversions (young batches are censored and never read
  here): its ROC-AUC drop from the champion's validation ROC-AUC against ``max_auc_drop``,
  its ECE against ``max_calibration_error``;
- the days between the champion's training (its data's as-of) and ``now`` against
  ``max_days_since_training``.

A threshold set to null is not checked. When something is crossed but the last retrain is
fewer than ``min_days_between_retrains`` days before ``now``, the action is "none" and the
text says the retrain is held back (the reasons are kept, so the record shows why it
would have).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from leadscore.models.monitor.config import MonitorConfig
from leadscore.models.monitor.profile import PREDICTION
from leadscore.models.monitor.result import BatchResult, Decision

NO_ACTION = "no action: all within bounds"


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def _limit(value: float) -> str:
    return f"{value:g}"


def drift_reasons(newest: BatchResult, config: MonitorConfig) -> list[str]:
    """PSI of each feature (highest first), then of the prediction, above its threshold."""
    limits = config.thresholds
    drift = newest.drift
    if drift.empty:
        return []
    reasons = []
    if limits.max_feature_psi is not None:
        features = drift[(drift["feature"] != PREDICTION) & drift["psi"].notna()]
        over = features[features["psi"] > limits.max_feature_psi]
        for row in over.sort_values("psi", ascending=False, kind="stable").itertuples():
            reasons.append(
                f"PSI of {row.feature} {_number(row.psi)} > {_limit(limits.max_feature_psi)}"
            )
    if limits.max_prediction_psi is not None:
        rows = drift.loc[drift["feature"] == PREDICTION, "psi"].dropna()
        if not rows.empty and float(rows.iloc[0]) > limits.max_prediction_psi:
            value = float(rows.iloc[0])
            reasons.append(
                f"PSI of the prediction {_number(value)} > {_limit(limits.max_prediction_psi)}"
            )
    return reasons


def judged_batch(
    batches: Sequence[BatchResult], champion_version: str | None, min_conversions: int
) -> BatchResult | None:
    """The newest mature batch of the champion's version with enough conversions."""
    candidates = [
        b
        for b in batches
        if b.mature
        and b.conversions >= min_conversions
        and (champion_version is None or b.model_version == champion_version)
    ]
    return max(candidates, key=lambda b: b.as_of) if candidates else None


def performance_reasons(
    judged: BatchResult | None, config: MonitorConfig, validation_roc_auc: float | None
) -> list[str]:
    """Live ROC-AUC drop and ECE of the judged batch, above their thresholds."""
    if judged is None:
        return []
    limits = config.thresholds
    reasons = []
    live = judged.metrics.get("roc_auc")
    if (
        limits.max_auc_drop is not None
        and live is not None
        and validation_roc_auc is not None
        and math.isfinite(live)
    ):
        drop = validation_roc_auc - live
        if drop > limits.max_auc_drop:
            reasons.append(
                f"live ROC-AUC {live:.3f} is {drop:.3f} below validation "
                f"{validation_roc_auc:.3f} > {_limit(limits.max_auc_drop)} "
                f"(batch {judged.batch_id})"
            )
    ece = judged.metrics.get("ece")
    if (
        limits.max_calibration_error is not None
        and ece is not None
        and math.isfinite(ece)
        and ece > limits.max_calibration_error
    ):
        reasons.append(
            f"ECE {ece:.3f} > {_limit(limits.max_calibration_error)} (batch {judged.batch_id})"
        )
    return reasons


def _days(later: pd.Timestamp, earlier: pd.Timestamp) -> int:
    return math.floor((pd.Timestamp(later) - pd.Timestamp(earlier)) / pd.Timedelta(days=1))


def decide(
    batches: Sequence[BatchResult],
    *,
    config: MonitorConfig,
    now: pd.Timestamp,
    champion_version: str | None,
    validation_roc_auc: float | None,
    trained_at: pd.Timestamp | None,
    last_retrain_at: pd.Timestamp | None,
) -> Decision:
    """Every crossed threshold as a reason; retrain unless held back by the cooldown."""
    reasons: list[str] = []
    if batches:
        newest = max(batches, key=lambda b: b.as_of)
        reasons += drift_reasons(newest, config)
    judged = judged_batch(batches, champion_version, config.min_conversions)
    reasons += performance_reasons(judged, config, validation_roc_auc)
    limit = config.thresholds.max_days_since_training
    if limit is not None and trained_at is not None:
        days = _days(now, trained_at)
        if days > limit:
            reasons.append(f"{days} days since training > {limit}")
    if not reasons:
        return Decision(action="none", reasons=(), text=NO_ACTION)
    if last_retrain_at is not None:
        since = _days(now, last_retrain_at)
        if since < config.min_days_between_retrains:
            return Decision(
                action="none",
                reasons=tuple(reasons),
                text=(
                    f"no action: last retrain {since} days ago < "
                    f"{config.min_days_between_retrains} (held back: {'; '.join(reasons)})"
                ),
            )
    return Decision(action="retrain", reasons=tuple(reasons), text="retrain: " + "; ".join(reasons))
