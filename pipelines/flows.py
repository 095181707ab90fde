"""Prefect flows: `train` (snapshots -> model vs rules -> MLflow) and `score` (nightly batch).

Flows are thin glue: each task calls one pure function from ``features``/``models``/
``serving`` (or one tracking call) and the flow wires them. Tasks neither cache nor persist
results: their inputs are large frames that are cheap to recompute and costly to hash.
Both flows run locally with no server (Prefect starts a temporary one when
``PREFECT_API_URL`` is unset); ``prefect.yaml`` schedules them as deployments.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.builder import build_features, entities_at
from features.contract import OPEN, STATUS
from features.registry import build_registry
from features.snapshots import LABEL, Snapshots, make_snapshots, out_of_time_split
from models import training
from models.evaluate import evaluate
from models.scoring import score_frame
from pipelines import tracking
from pipelines.settings import Settings, load_settings
from pipelines.sources import CRMData, load_crm
from serving.export import write_csv_atomic, write_scores_csv
from serving.store import ScoreStore

thin_task = partial(task, cache_policy=NO_CACHE, persist_result=False)


@thin_task
def load(settings: Settings) -> CRMData:
    return load_crm(settings)


@thin_task
def snapshots(crm: CRMData, settings: Settings) -> Snapshots:
    return make_snapshots(crm.leads, crm.end, settings.snapshots)


@thin_task
def features(crm: CRMData, entities: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    return build_features(crm.leads, crm.activities, entities, settings.features)


@thin_task
def fit_model(X: pd.DataFrame, y: np.ndarray, settings: Settings) -> Any:
    return training.fit_model(X, y, build_registry(settings.features), settings.model)


@thin_task
def fit_rules(X: pd.DataFrame, y: np.ndarray | None, settings: Settings) -> Any:
    points = {t: settings.features.type_points(t) for t in settings.features.type_names}
    return training.fit_rules(X, y, settings.rules, points)


@thin_task
def oracle_metrics(
    crm: CRMData, entities: pd.DataFrame, y: np.ndarray, settings: Settings
) -> dict[str, float] | None:
    """The hidden propensity's metrics on the validation window (synthetic CRM only)."""
    truth_path = settings.data.truth
    if truth_path is None or not Path(truth_path).is_file() or crm.activities is None:
        return None
    from pipelines.synthetic import oracle_probability

    truth = pd.read_parquet(truth_path)
    p = oracle_probability(truth, crm.activities, entities, settings.snapshots.horizon_days)
    return evaluate(y, p, p)


@thin_task
def track(
    settings: Settings,
    model: Any,
    rules: Any,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    metrics: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Log the run, register the model, and move `champion` only if the gate passes."""
    import mlflow

    client = tracking.configure(settings.tracking)
    gate = settings.promotion
    champion = tracking.champion_metric_on(
        client,
        settings.tracking,
        X_valid,
        y_valid,
        lambda m, X, y: training.model_metrics(m, X, y)[gate.metric],
    )
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        for side in ("model", "rules", "oracle"):
            for key, value in (metrics.get(side) or {}).items():
                mlflow.log_metric(f"{side}_{key}", value)
        tracking.log_json(settings.model_dump(mode="json"), "settings.json")
        tracking.log_json(metrics, "metrics.json")
        version = tracking.log_model(model, X_valid[model.features], settings.tracking.model_name)
        decision = tracking.gate(
            metrics["model"][gate.metric],
            metrics["rules"][gate.metric],
            None if champion is None else champion[1],
            gate,
        )
        mlflow.set_tags({"promoted": decision.promoted, "promotion": decision.reason})
    tracking.promote(client, settings.tracking, version, decision)
    return {
        "run_id": run.info.run_id,
        "version": version,
        "promoted": decision.promoted,
        "promotion": decision.reason,
    }


@flow(name="leadscore-train", log_prints=True)
def train_flow(config_path: str | None = None) -> dict[str, Any]:
    """Snapshots of closed history -> model and rules -> same out-of-time window -> MLflow."""
    logger = get_run_logger()
    settings = load_settings(config_path)
    crm = load(settings)
    snaps = snapshots(crm, settings)
    logger.info(
        "%d snapshots (%d censored) of %d leads", len(snaps.rows), snaps.n_censored, len(crm.leads)
    )
    X = features(crm, snaps.rows, settings)
    y = snaps.rows[LABEL].to_numpy()
    split = out_of_time_split(snaps, settings.snapshots)
    X_train, y_train = X.iloc[split.train], y[split.train]
    X_valid, y_valid = X.iloc[split.valid], y[split.valid]
    model = fit_model(X_train, y_train, settings)
    rules = fit_rules(X_train, y_train, settings)
    metrics: dict[str, Any] = {
        "model": training.model_metrics(model, X_valid, y_valid),
        "rules": training.rules_metrics(rules, X_valid, y_valid),
    }
    oracle = oracle_metrics(crm, snaps.rows.iloc[split.valid], y_valid, settings)
    if oracle is not None:
        metrics["oracle"] = oracle
    params = {
        "split": split.kind,
        "n_train": len(y_train),
        "n_valid": len(y_valid),
        "train_positive_rate": float(y_train.mean()),
        "valid_positive_rate": float(y_valid.mean()),
        "valid_start": split.valid_start.isoformat(),
        "train_end": split.train_end.isoformat(),
        "n_features": len(model.features),
        "horizon_days": settings.snapshots.horizon_days,
        **{f"lgbm_{k}": v for k, v in settings.model.lightgbm.model_dump().items()},
    }
    tracked = track(settings, model, rules, X_valid, y_valid, metrics, params)
    logger.info("model version %s: %s", tracked["version"], tracked["promotion"])
    return {
        **metrics,
        "split": split.kind,
        "n_train": len(y_train),
        "n_valid": len(y_valid),
        **tracked,
    }


@thin_task
def load_champion(settings: Settings) -> tuple[Any, str]:
    tracking.configure(settings.tracking)
    return tracking.load_champion(settings.tracking)


@thin_task
def score(
    X: pd.DataFrame, model: Any, rules: Any, crm: CRMData, settings: Settings
) -> pd.DataFrame:
    registry = build_registry(settings.features)
    return score_frame(X, model, rules, registry, settings.scoring, crm.leads)


@thin_task
def publish(
    scores: pd.DataFrame,
    quarantine: pd.DataFrame,
    version: str,
    as_of: pd.Timestamp,
    settings: Settings,
) -> dict[str, Any]:
    """Make the batch current in the store (atomic), then export it and the quarantine."""
    store = ScoreStore(settings.store)
    store.create()
    batch = store.publish(scores, model_version=version, as_of=as_of.to_pydatetime())
    published = store.read_batch(batch.batch_id)
    csv = write_scores_csv(published, settings.output.scores_csv)
    write_csv_atomic(quarantine, settings.output.quarantine_csv)
    return {
        "batch_id": batch.batch_id,
        "n_rows": batch.n_rows,
        "csv": str(csv),
        "quarantine_csv": str(settings.output.quarantine_csv),
    }


@flow(name="leadscore-score", log_prints=True)
def score_flow(config_path: str | None = None) -> dict[str, Any]:
    """Score every open lead as of now, explain it, put the rules beside it, publish."""
    logger = get_run_logger()
    settings = load_settings(config_path)
    crm = load(settings)
    model, version = load_champion(settings)
    as_of = pd.Timestamp(settings.data.as_of) if settings.data.as_of else crm.end
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    open_leads = crm.leads[crm.leads[STATUS] == OPEN]
    entities = entities_at(open_leads, as_of)
    X = features(crm, entities, settings)
    rules = fit_rules(X, None, settings)
    scores = score(X, model, rules, crm, settings)
    published = publish(scores, crm.quarantine, version, as_of, settings)
    n_quarantined = crm.quarantined(str(settings.data.leads.path))
    n_closed = len(crm.leads) - len(open_leads)
    if len(scores) + n_closed + n_quarantined != crm.n_leads_in:
        raise RuntimeError(
            f"lead conservation broken: {crm.n_leads_in} in != {len(scores)} scored + "
            f"{n_closed} closed + {n_quarantined} quarantined"
        )
    logger.info(
        "batch %s: %d open leads scored as of %s", published["batch_id"], len(scores), as_of
    )
    return {
        **published,
        "as_of": as_of.isoformat(),
        "model_version": version,
        "leads_in": crm.n_leads_in,
        "scored": len(scores),
        "closed": n_closed,
        "quarantined": n_quarantined,
        "activities_in": crm.n_activities_in,
        "activities_quarantined": crm.quarantined(str(settings.data.activities.path))
        if settings.data.activities
        else 0,
        "store": settings.store.url,
        "top": scores.head(10).to_dict(orient="records"),
    }
