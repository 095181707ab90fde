"""MLflow for the closed loop: the champion's facts the monitor judges against, and the
monitor's own run (experiment ``tracking.monitor_experiment``) with its decision.

Kept beside ``pipelines/tracking.py`` (training runs, registry, alias) in its style: the
monitor's runs live in their own experiment, so they never mix with training runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from leadscore.models.monitor.result import BatchResult, MonitorResult
from leadscore.pipelines import tracking
from leadscore.pipelines.settings import TrackingConfig

VALIDATION_METRIC = "model_roc_auc"
"""The training run's validation ROC-AUC of the model (``tracking.log_training_run``)."""

DATA_END_PARAM = "data_end"
"""The training run's data end (its as-of), logged by ``tracking.log_training_run``."""


@dataclass(frozen=True)
class ChampionFacts:
    """What the monitor compares production with: the champion's validation ROC-AUC and
    when it was trained (its data's as-of; the run's start for runs logged before it)."""

    version: str | None
    validation_roc_auc: float | None
    trained_at: pd.Timestamp | None
    run_id: str | None = None


def _utc(value: Any) -> pd.Timestamp | None:
    """A UTC timestamp from a logged text, or None when missing or unreadable."""
    if value in (None, "", "NaT", "None"):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def champion_facts(client: MlflowClient, config: TrackingConfig) -> ChampionFacts:
    """The champion's version, its training run's validation ROC-AUC and its as-of.

    No champion (before the first promotion): every fact None, the monitor still judges
    the archived batches, and nothing depending on the champion is decided.
    """
    version = tracking.champion_version(client, config)
    if version is None:
        return ChampionFacts(None, None, None)
    run_id = client.get_model_version(config.model_name, version).run_id
    if not run_id:
        return ChampionFacts(version, None, None)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return ChampionFacts(version, None, None, run_id)
    auc = run.data.metrics.get(VALIDATION_METRIC)
    trained_at = _utc(run.data.params.get(DATA_END_PARAM))
    if trained_at is None:  # a run logged before the data end was: its wall-clock start
        trained_at = pd.Timestamp(run.info.start_time, unit="ms", tz="UTC")
    return ChampionFacts(version, None if auc is None else float(auc), trained_at, run_id)


def last_retrain_at(runs: list[dict[str, Any]]) -> pd.Timestamp | None:
    """When the newest stored monitor run that asked for a retrain ran (its ``now``)."""
    for run in runs:  # newest first
        if run["action"] == "retrain":
            return _utc(run["now"])
    return None


def _finite(metrics: dict[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def batch_metrics(result: MonitorResult) -> dict[str, float]:
    """The run's metrics: the newest batch's (``newest_<name>``) and the newest mature
    batch's (``mature_<name>``), each with its observed days and known leads."""
    chosen: list[tuple[str, BatchResult | None]] = [
        ("newest", result.batches[-1] if result.batches else None),
        ("mature", next((b for b in reversed(result.batches) if b.mature), None)),
    ]
    metrics: dict[str, float] = {"batches": float(len(result.batches))}
    for prefix, batch in chosen:
        if batch is None:
            continue
        figures = {
            **batch.metrics,
            "observed_days": batch.observed_days,
            "n_leads": batch.n_leads,
            "n_known": batch.n_known,
            "conversions": batch.conversions,
        }
        metrics.update({f"{prefix}_{k}": v for k, v in _finite(figures).items()})
    return metrics


def configure_monitoring(config: TrackingConfig) -> MlflowClient:
    """The tracking store, with the monitor's experiment (created beside the training one,
    its artifacts under the same artifact location)."""
    client = tracking.configure(config)
    name = config.monitor_experiment
    if client.get_experiment_by_name(name) is None:
        location = Path(config.artifact_location) / "monitoring"
        location.mkdir(parents=True, exist_ok=True)
        client.create_experiment(name, artifact_location=location.as_uri())
    return client


def log_monitor_run(
    config: TrackingConfig,
    result: MonitorResult,
    params: dict[str, Any],
    report_html: str | None,
) -> str:
    """One run in ``tracking.monitor_experiment``: params, the newest and newest mature
    batches' metrics, the decision as tags (``decision``, ``decision_text``, one
    ``reason_<i>`` per threshold crossed) and the HTML report; returns its run id."""
    configure_monitoring(config)
    experiment = mlflow.get_experiment_by_name(config.monitor_experiment)
    assert experiment is not None
    name = f"monitor {result.now:%Y-%m-%d}: {result.decision.action}"
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=name) as run:
        mlflow.log_params({k: v for k, v in params.items() if v is not None})
        mlflow.log_metrics(batch_metrics(result))
        mlflow.set_tags(
            {
                "decision": result.decision.action,
                "decision_text": result.decision.text[:5000],
                **{f"reason_{i}": r[:500] for i, r in enumerate(result.decision.reasons)},
                "mlflow.note.content": result.decision.text,
            }
        )
        if report_html is not None:
            mlflow.log_text(report_html, "monitoring.html")
    mlflow.set_experiment(config.experiment)  # leave the process on the training experiment
    return run.info.run_id


def tag_retrain(config: TrackingConfig, run_id: str, outcome: dict[str, Any]) -> None:
    """Record on the monitor run what the retrain it started did (version, promoted)."""
    client = MlflowClient(tracking_uri=config.tracking_uri)
    for key in ("version", "promoted", "promotion", "run_id"):
        if outcome.get(key) is not None:
            client.set_tag(run_id, f"retrain_{key}", str(outcome[key])[:5000])
