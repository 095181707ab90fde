"""The ``monitor:`` section: what the closed loop watches and when it asks for a retrain."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from leadscore.models.config import _Strict


class RetrainThresholds(_Strict):
    """Crossing any of these makes the monitor ask for a retrain (the gate still decides)."""

    max_feature_psi: float | None = Field(
        default=0.2, gt=0, description="Any feature's PSI, tonight's batch vs the reference."
    )
    max_prediction_psi: float | None = Field(
        default=0.2, gt=0, description="PSI of the predicted probability vs the reference."
    )
    max_auc_drop: float | None = Field(
        default=0.05,
        gt=0,
        description="The champion's validation ROC-AUC minus its live ROC-AUC (mature batches).",
    )
    max_calibration_error: float | None = Field(
        default=0.05, gt=0, description="Live ECE (10 equal-count bands) of mature batches."
    )
    max_days_since_training: int | None = Field(
        default=35, gt=0, description="Days between the champion's training and now."
    )


class MonitorConfig(_Strict):
    """Monitoring of published scores (``leadscore monitor``, docs/monitoring.md)."""

    archive_dir: Path = Field(
        default=Path("data/archive"),
        description="Each published batch's scores and feature counts, kept for the monitor.",
    )
    archive_days: int = Field(
        default=200, gt=0, description="Archived batches older than this are deleted."
    )
    bins: int = Field(default=10, ge=2, le=100, description="Reference bins per numeric feature.")
    reference_days: int = Field(
        default=90,
        gt=0,
        description="Reference rows: the leads open over the training data's newest N days.",
    )
    top_percent: list[float] = Field(
        default_factory=lambda: [5.0, 10.0, 20.0],
        description="Capture of conversions in the top k% of a batch (model and rules).",
    )
    min_conversions: int = Field(
        default=30, ge=1, description="Known conversions a batch needs for live metrics."
    )
    thresholds: RetrainThresholds = Field(default_factory=RetrainThresholds)
    min_days_between_retrains: int = Field(
        default=7, ge=0, description="No retrain asked sooner than this after the last one."
    )
    retrain: bool = Field(
        default=True, description="false: record the decision, never start the retrain flow."
    )
