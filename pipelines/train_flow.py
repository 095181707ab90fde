"""The train flow: examples of closed history -> model and rules -> one validation window
-> MLflow (run, report, registered version) -> the gate moves the `champion` alias or not.

Thin glue: each task calls one function of ``models.recipe`` / ``models.gate`` (or one
tracking call) and records what came out. Runs with no server (Prefect starts a temporary
one when ``PREFECT_API_URL`` is unset); ``prefect.yaml`` schedules it weekly.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger

from leadscore.features import leakage
from leadscore.models import gate, quality, recipe, training
from leadscore.models.base import LeadScorer
from leadscore.models.evaluate import full_metrics
from leadscore.models.report import ReportInputs, render_report, report_metrics
from leadscore.models.report.groups import validation_entities
from leadscore.models.report.header import RunHeader, window_dates
from leadscore.models.rules import RuleScorer
from leadscore.pipelines import tracking
from leadscore.pipelines.run_card import run_data
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.pipelines.sources import CRMData, load_crm
from leadscore.pipelines.thin import thin_task
from leadscore.serving.export import write_csv_atomic


@thin_task
def load(settings: Settings) -> CRMData:
    return load_crm(settings)


@thin_task
def write_quarantine(crm: CRMData, settings: Settings) -> str:
    """Rows refused by the contract, one reason each, where ops can read them."""
    return str(write_csv_atomic(crm.quarantine, settings.output.quarantine_csv))


@thin_task
def examples(crm: CRMData, settings: Settings) -> recipe.TrainingData:
    return recipe.examples(crm.leads, crm.activities, crm.end, settings, crm.accounts)


@thin_task
def leak_suspects(
    crm: CRMData, data: recipe.TrainingData, settings: Settings
) -> list[leakage.Suspect]:
    """Columns of the training leads likely filled in after the outcome (a warning: the
    run goes on). Read on the training examples' leads only; with an activity log, on
    those whose outcome was known before the validation window."""
    outcome = settings.data.outcome
    return leakage.sniff_leads(
        crm.leads,
        lead_ids=data.X_train["lead_id"],
        known_by=None if crm.flat else data.split.valid_start,
        skip=[outcome.column] if outcome else [],
        outcome_words=[str(v) for v in (*outcome.converted, *outcome.lost)] if outcome else [],
        config=settings.data.leakage,
    )


@thin_task
def fit_model(data: recipe.TrainingData, settings: Settings) -> LeadScorer:
    return recipe.fit_model(data, settings.model, settings.promotion.metric)


@thin_task
def monitor_reference(
    model: LeadScorer, data: recipe.TrainingData, crm: CRMData, settings: Settings
) -> LeadScorer:
    """The model carrying the monitor's reference, set before it is logged
    (``recipe.attach_reference`` over ``recipe.reference_rows``, the open leads of the
    newest days): the champion carries it to the score flow."""
    recent = recipe.reference_rows(
        crm.leads, crm.activities, crm.end, settings, settings.monitor, crm.accounts
    )
    return recipe.attach_reference(model, data, settings.monitor, recent)


@thin_task
def fit_rules(data: recipe.TrainingData, settings: Settings) -> RuleScorer:
    return recipe.fit_rules(data, settings.rules, settings.features)


@thin_task
def oracle_probabilities(
    crm: CRMData, entities: pd.DataFrame, settings: Settings
) -> np.ndarray | None:
    """The hidden propensity of each validation row (synthetic CRM only, else None)."""
    truth_path = settings.data.truth
    if truth_path is None or not Path(truth_path).is_file() or crm.activities is None:
        return None
    from leadscore.synthetic import oracle_probability

    truth = pd.read_parquet(truth_path)
    return oracle_probability(truth, crm.activities, entities, settings.snapshots.horizon_days)


@thin_task
def quality_targets(
    window: ReportInputs, leads: pd.Series, oracle: np.ndarray | None, settings: Settings
) -> ReportInputs:
    """The window with the configured quality targets assessed on it (``models.quality``)."""
    targets = quality.assess(
        settings.quality,
        window.y,
        leads.to_numpy(),
        window.model_ranking,
        window.model_probability,
        window.rule_points,
        oracle,
    )
    return replace(window, targets=targets)


@thin_task
def validation_window(
    model: LeadScorer,
    rules: RuleScorer,
    data: recipe.TrainingData,
    oracle: dict[str, float] | None,
    settings: Settings,
    context: dict[str, Any] | None = None,
) -> ReportInputs:
    """The model and the rules scored on the validation window, as the report reads it."""
    return recipe.validation_window(
        model, rules, data, settings.scoring.grades, oracle=oracle, context=context
    )


@thin_task
def evaluation_report(
    settings: Settings,
    window: ReportInputs,
    data: recipe.TrainingData,
    crm: CRMData,
    tracked: dict[str, Any],
) -> str:
    """The report, rendered once the run is logged and its model registered (its header
    names both), written to ``output.report_dir`` and logged to the run as report.html."""
    client = tracking.configure(settings.tracking)
    run = client.get_run(tracked["run_id"]).info
    header = RunHeader(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        model_name=settings.tracking.model_name,
        model_version=str(tracked["version"]),
        promotion=(
            f"promoted to {settings.tracking.champion_alias}: "
            if tracked["promoted"]
            else "not promoted: "
        )
        + str(tracked["promotion"]),
        tracking_uri=settings.tracking.tracking_uri,
        dates=window_dates(
            data.snapshots.rows,
            data.split,
            data.snapshots.data_end,
            settings.snapshots.horizon_days,
        ),
    )
    entities = validation_entities(data.valid_entities, crm.leads)
    report = render_report(replace(window, header=header, entities=entities))
    client.log_text(run.run_id, report, "report.html")
    return str(tracking.write_report(report, settings.output.report_dir, run.run_id))


@thin_task
def promotion(
    settings: Settings, window: ReportInputs, X_valid: pd.DataFrame, metrics: dict[str, Any]
) -> gate.Promotion:
    """The gate's decision (``models.gate.decide``): the current champion re-scored on the
    validation window beside the model's and the rules' scores of ``window``."""
    champion = tracking.champion_on(tracking.configure(settings.tracking), settings.tracking)
    return gate.decide(window, X_valid, metrics, champion, settings.promotion, settings.quality)


@thin_task
def track(
    settings: Settings,
    model: LeadScorer,
    decision: gate.Promotion,
    X_valid: pd.DataFrame,
    metrics: dict[str, Any],
    params: dict[str, Any],
    crm: CRMData,
    report: str = "",
    leaks: list[dict[str, Any]] | None = None,
    data: recipe.TrainingData | None = None,
) -> dict[str, Any]:
    """Log the run (named, described, its examples as dataset inputs), register the
    model, record the gate's decision, move the alias."""
    return tracking.log_training_run(
        settings,
        model,
        decision,
        X_valid,
        metrics,
        params,
        crm.validations,
        crm.quarantine,
        report,
        suspects=leaks or (),
        data=None if data is None else run_data(data, crm, settings.data),
    )


@flow(name="leadscore-train", log_prints=True)
def train_flow(config_path: str | None = None, force: bool = False) -> dict[str, Any]:
    """Examples of closed history -> model and rules -> same validation window -> MLflow."""
    logger = get_run_logger()
    settings = load_settings(config_path)
    crm = load(settings)
    logger.info(
        "leads: %d in = %d clean + %d quarantined; activities: %d in, %d undeclared types%s",
        crm.n_leads_in,
        len(crm.leads),
        crm.quarantined(settings.data.leads.label),
        crm.n_activities_in,
        crm.unknown_activity_types,
        "".join(f"; {k.replace('_', ' ')}: {v}" for k, v in crm.notes.items() if v),
    )
    write_quarantine(crm, settings)
    data = examples(crm, settings)
    snaps, split = data.snapshots, data.split
    logger.info(
        "%d examples (%d censored) of %d leads, %s split",
        len(snaps.rows),
        snaps.n_censored,
        len(crm.leads),
        split.kind,
    )
    X_valid, y_train, y_valid = data.X_valid, data.y_train, data.y_valid
    counts = training.check_minimum(
        data.X_train["lead_id"],
        y_train,
        0 if force else settings.snapshots.min_leads,
        0 if force else settings.snapshots.min_conversions,
    )
    suspects = leak_suspects(crm, data, settings)
    for line in leakage.warning_lines(suspects):
        logger.info(line)
    model = monitor_reference(fit_model(data, settings), data, crm, settings)
    rules = fit_rules(data, settings)
    oracle_p = oracle_probabilities(crm, data.valid_entities, settings)
    oracle = None if oracle_p is None else full_metrics(y_valid, oracle_p, oracle_p)
    context = recipe.window_context(data, model, settings.model)
    window = validation_window(model, rules, data, oracle, settings, context)
    window = quality_targets(window, X_valid["lead_id"], oracle_p, settings)
    window = replace(window, leakage=tuple(leakage.warning_lines(suspects)))
    metrics: dict[str, Any] = report_metrics(window)
    if oracle is not None:
        metrics["oracle"] = oracle
    metrics["targets"] = [t.as_dict() for t in window.targets]
    params = {
        **counts,
        "leads_in": crm.n_leads_in,
        "leads_quarantined": crm.quarantined(settings.data.leads.label),
        "activities_in": crm.n_activities_in,
        "activities_quarantined": (
            crm.quarantined(settings.data.activities.label) if settings.data.activities else 0
        ),
        "second_tables_quarantined": sum(
            crm.quarantined(t.label) for t in [settings.data.outcomes, *settings.data.joins] if t
        ),
        "unknown_activity_types": crm.unknown_activity_types,
        **{f"input_{k}": v for k, v in crm.notes.items()},
        "split": split.kind,
        "n_train": len(y_train),
        "n_valid": len(y_valid),
        "train_positive_rate": float(y_train.mean()),
        "valid_positive_rate": float(y_valid.mean()),
        "valid_start": str(split.valid_start),
        "train_end": str(split.train_end),
        "n_features": len(model.features),
        "horizon_days": settings.snapshots.horizon_days,
        "model_kind": settings.model.kind,
        "calibration": settings.model.calibration,
        "calibration_chosen": getattr(model, "calibration_", "per segment"),
        "segment_column": settings.model.segments.column,
        "sensitive_columns": ",".join(settings.data.sensitive) or None,
        "leakage_suspects": len(suspects),
        **recipe.learner_params(settings.model),
    }
    decision = promotion(settings, window, X_valid, metrics)
    leaks = [s.as_dict() for s in suspects]
    tracked = track(settings, model, decision, X_valid, metrics, params, crm, "", leaks, data)
    tracked["report"] = evaluation_report(settings, window, data, crm, tracked)
    logger.info("model version %s: %s", tracked["version"], tracked["promotion"])
    return {
        **metrics,
        "split": split.kind,
        "n_train": len(y_train),
        "n_valid": len(y_valid),
        "leakage": leaks,
        **tracked,
    }
