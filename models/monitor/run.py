"""The monitor in one call: every archived batch judged, then the decision.

A batch that was mature when last judged cannot change (its horizon is closed: the
outcomes of its window are final), so the flow passes its stored result as ``previous``
instead of the archived batch, and :func:`monitor` decides on both, as if it had judged
everything (:func:`reusable` says which stored results qualify).

:func:`monitor` is pure: the flow (``pipelines/monitor_flow.py``) reads the archive, the
outcomes and the champion's facts, and records what comes back (store, MLflow, report).
Per batch: labels with censoring (``outcomes``), live metrics and realised conversion per
grade, model and rules (``performance``), the expected ROC-AUC from the probabilities alone
(``estimate``), drift against the reference from the archived counts (``drift``) and the
quarantine share; then :func:`~leadscore.models.monitor.decide.decide`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from leadscore.models.monitor.config import MonitorConfig
from leadscore.models.monitor.decide import decide
from leadscore.models.monitor.drift import drift_table, max_feature_psi, prediction_psi
from leadscore.models.monitor.estimate import expected_roc_auc
from leadscore.models.monitor.outcomes import as_utc, label_batch
from leadscore.models.monitor.performance import grade_table, metric_keys, ranking_metrics
from leadscore.models.monitor.result import ArchivedBatch, BatchResult, MonitorResult


def judge_batch(
    batch: ArchivedBatch,
    outcomes: pd.DataFrame,
    *,
    now: pd.Timestamp,
    horizon_days: int,
    config: MonitorConfig,
    grade_order: Sequence[str],
) -> BatchResult:
    """One archived batch: labels so far, live and estimated metrics, grades, drift."""
    scores = batch.scores
    as_of = as_utc(batch.as_of)
    labels = label_batch(
        scores["lead_id"], outcomes, as_of=as_of, now=now, horizon_days=horizon_days
    )
    known = labels.known
    probability = scores["probability"].to_numpy(dtype="float64")
    metrics: dict[str, float | None] = dict.fromkeys(metric_keys(config.top_percent))
    metrics.update(
        ranking_metrics(
            labels.y[known],
            probability[known],
            scores["rule_score"].to_numpy(dtype="float64")[known],
            top_percent=config.top_percent,
            min_conversions=config.min_conversions,
        )
    )
    metrics["estimated_roc_auc"] = expected_roc_auc(probability)
    drift = drift_table(batch.profile, batch_id=batch.batch_id, as_of=as_of)
    top = max_feature_psi(drift)
    metrics["max_feature_psi"] = None if top is None else top[1]
    metrics["prediction_psi"] = prediction_psi(drift)
    quarantined = sum(batch.quarantine.values())
    metrics["quarantine_share"] = quarantined / batch.rows_in if batch.rows_in > 0 else None
    grades = grade_table(
        scores, labels, batch_id=batch.batch_id, as_of=as_of, grade_order=grade_order
    )
    return BatchResult(
        batch_id=batch.batch_id,
        as_of=as_of,
        model_version=batch.model_version,
        n_leads=len(scores),
        n_known=labels.n_known,
        conversions=labels.conversions,
        observed_days=labels.observed_days,
        mature=labels.mature,
        metrics=metrics,
        grades=grades,
        drift=drift,
        quarantine=dict(batch.quarantine),
    )


def reusable(
    previous: Sequence[BatchResult],
    *,
    now: pd.Timestamp,
    horizon_days: int,
    config: MonitorConfig,
) -> list[BatchResult]:
    """The stored results whose figures are final for tonight's settings: mature for the
    same horizon (and so at ``now``: its horizon closed before it), with every metric
    tonight's ``monitor.top_percent`` asks for. Any other (young, another horizon, other
    capture levels, a ``now`` moved back before its horizon) must be judged again."""
    keys = set(metric_keys(config.top_percent))
    closed = as_utc(now) - pd.Timedelta(days=horizon_days)
    return [
        r
        for r in previous
        if r.mature
        and r.observed_days == horizon_days
        and as_utc(r.as_of) <= closed
        and keys <= set(r.metrics)
    ]


def monitor(
    batches: Sequence[ArchivedBatch],
    outcomes: pd.DataFrame,
    *,
    now: pd.Timestamp,
    horizon_days: int,
    config: MonitorConfig,
    grade_order: Sequence[str],
    champion_version: str | None,
    validation_roc_auc: float | None,
    trained_at: pd.Timestamp | None,
    last_retrain_at: pd.Timestamp | None,
    previous: Sequence[BatchResult] = (),
) -> MonitorResult:
    """Every batch judged against the outcomes known at ``now``, oldest first, and the
    decision (``decide``). ``outcomes``: lead_id, status (open / converted / lost),
    closed_at (UTC or NaT), one row per lead of the source tonight.

    ``previous``: stored results of batches mature when last judged, taken as they are
    (the archived batch of the same id, if also given, is judged and wins); each must be
    :func:`reusable`, else ValueError (a young batch's stored figures are stale)."""
    now = as_utc(now)
    final = {id(r) for r in reusable(previous, now=now, horizon_days=horizon_days, config=config)}
    stale = [r.batch_id for r in previous if id(r) not in final]
    if stale:
        raise ValueError(f"stored results not final, judge them again: {stale}")
    fresh = [
        judge_batch(
            b,
            outcomes,
            now=now,
            horizon_days=horizon_days,
            config=config,
            grade_order=grade_order,
        )
        for b in batches
    ]
    ids = {r.batch_id for r in fresh}
    kept = [r for r in previous if r.batch_id not in ids]
    judged = tuple(sorted([*fresh, *kept], key=lambda r: (r.as_of, r.batch_id)))
    decision = decide(
        judged,
        config=config,
        now=now,
        champion_version=champion_version,
        validation_roc_auc=validation_roc_auc,
        trained_at=None if trained_at is None else as_utc(trained_at),
        last_retrain_at=None if last_retrain_at is None else as_utc(last_retrain_at),
    )
    return MonitorResult(
        created_at=pd.Timestamp.now(tz="UTC"),
        now=now,
        champion_version=champion_version,
        horizon_days=horizon_days,
        batches=judged,
        decision=decision,
        reused=tuple(r.batch_id for r in kept),
    )
