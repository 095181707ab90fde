"""The monitor flow: published batches judged against the outcomes that arrived since,
drift watched, and a retrain started when a threshold is crossed (issue #17).

Thin glue: the archive (``pipelines.archive``), the outcomes through the one reader
(``pipelines.sources``), the champion's facts from MLflow (``pipelines.monitor_tracking``),
the judgement itself (``models.monitor.run.monitor``, pure), then the records: the store's
monitor tables, an MLflow run in ``tracking.monitor_experiment`` with the decision and the
HTML report, ``<output.report_dir>/monitoring.html``; and, when the decision is retrain
and ``monitor.retrain`` is on, the train flow (whose gate still decides promotion).
``prefect.yaml`` schedules it nightly after scoring; ``leadscore monitor`` runs it once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from leadscore.features.contract import CLOSED_AT, CONVERTED, LEAD_ID, STATUS, data_end
from leadscore.models.monitor.report import render_monitor_report
from leadscore.models.monitor.result import ArchivedBatch, BatchResult, MonitorResult
from leadscore.models.monitor.run import monitor, reusable
from leadscore.pipelines import monitor_tracking
from leadscore.pipelines.archive import archived, read_archive
from leadscore.pipelines.errors import exit_code
from leadscore.pipelines.settings import Settings, load_settings
from leadscore.pipelines.sources import load_leads, scoring_time
from leadscore.pipelines.thin import thin_task
from leadscore.serving.files import write_atomic
from leadscore.serving.store import ScoreStore

REPORT_FILE = "monitoring.html"
"""The monitor's report, in ``output.report_dir`` (replaced by every run)."""

RUNS_SEARCHED = 200
"""Stored monitor runs searched for the last retrain (newest first)."""


@dataclass(frozen=True)
class Outcomes:
    """The leads source tonight: one row per clean lead, and when it was read up to."""

    frame: pd.DataFrame  # lead_id, status (open / converted / lost), closed_at (UTC or NaT)
    end: pd.Timestamp  # the export day (NaT for a flat export without dates)
    undated: str | None  # why conversions cannot be dated (nothing is then monitored)


@thin_task
def read_outcomes(settings: Settings) -> Outcomes:
    """Status and closed_at of every lead, read and checked by the one reader."""
    checked, _ = load_leads(settings)
    leads = checked.rows
    undated = None
    converted = leads[STATUS] == CONVERTED
    if CLOSED_AT not in leads or (converted.any() and leads.loc[converted, CLOSED_AT].isna().all()):
        undated = (
            f"{settings.data.leads.label}: no closed_at for the converted leads (a flat export "
            f"without dates): a conversion cannot be placed after a batch's as_of, so nothing "
            f"is monitored; map a close date column onto closed_at to monitor"
        )
        return Outcomes(pd.DataFrame(columns=[LEAD_ID, STATUS, CLOSED_AT]), pd.NaT, undated)
    frame = leads[[LEAD_ID, STATUS, CLOSED_AT]].copy()
    frame[CLOSED_AT] = pd.to_datetime(frame[CLOSED_AT], utc=True)
    return Outcomes(frame, data_end(leads, None), None)


@dataclass(frozen=True)
class Batches:
    """Tonight's batches: those to judge (scores read) and those taken as stored."""

    fresh: list[ArchivedBatch]  # oldest first
    stored: list[BatchResult]  # mature when last judged: final, not judged again


@thin_task
def read_batches(
    settings: Settings,
    store: ScoreStore,
    listed: Collection[str],
    now: pd.Timestamp,
    full: bool = False,
) -> Batches:
    """The archived batches ``listed`` (``monitor.archive_dir``): the stored result of
    each one mature when last judged and final for tonight (``reusable``: its horizon is
    closed, its outcomes final) taken as it is, its scores not read; the others read to be
    judged. ``full``: every one read and judged again."""
    stored = (
        []
        if full
        else reusable(
            store.monitor_results(list(listed)),
            now=now,
            horizon_days=settings.snapshots.horizon_days,
            config=settings.monitor,
        )
    )
    skip, ids = {r.batch_id for r in stored}, set(listed)
    fresh = read_archive(settings.monitor.archive_dir, skip=skip)
    return Batches(fresh=[b for b in fresh if b.batch_id in ids], stored=stored)


def outcome_time(
    settings: Settings, end: pd.Timestamp, as_ofs: Iterable[pd.Timestamp]
) -> pd.Timestamp:
    """``now``: the configured as_of, else the leads source's end. Without a configured
    as_of, never before the newest batch's ``as_ofs``: that batch was scored from an
    export at least as new (its end may count activities, which the leads alone do not
    show)."""
    now = scoring_time(settings.data.as_of, end)
    stamps = [pd.Timestamp(a) for a in as_ofs]
    if settings.data.as_of or not stamps:
        return now
    newest = max(stamps)
    newest = newest.tz_localize("UTC") if newest.tzinfo is None else newest.tz_convert("UTC")
    return max(now, newest)


@thin_task
def champion(settings: Settings) -> monitor_tracking.ChampionFacts:
    client = monitor_tracking.configure_monitoring(settings.tracking)
    return monitor_tracking.champion_facts(client, settings.tracking)


@thin_task
def judge(
    settings: Settings,
    batches: Batches,
    outcomes: pd.DataFrame,
    now: pd.Timestamp,
    facts: monitor_tracking.ChampionFacts,
    last_retrain: pd.Timestamp | None,
) -> MonitorResult:
    """``models.monitor.run.monitor`` on tonight's inputs: the fresh batches judged, the
    stored final results decided on alongside them."""
    return monitor(
        batches.fresh,
        outcomes,
        now=now,
        horizon_days=settings.snapshots.horizon_days,
        config=settings.monitor,
        grade_order=list(settings.scoring.grades),
        champion_version=facts.version,
        validation_roc_auc=facts.validation_roc_auc,
        trained_at=facts.trained_at,
        last_retrain_at=last_retrain,
        previous=batches.stored,
    )


@thin_task
def record(
    settings: Settings, result: MonitorResult, store: ScoreStore, params: dict[str, Any]
) -> dict[str, Any]:
    """The MLflow run (decision, metrics, report), the store's rows, the report file."""
    html = render_monitor_report(result)
    mlflow_run_id = monitor_tracking.log_monitor_run(settings.tracking, result, params, html)
    run_id = store.save_monitor(result, mlflow_run_id=mlflow_run_id)
    path = Path(settings.output.report_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, html)
    return {"run_id": run_id, "mlflow_run_id": mlflow_run_id, "report": str(path)}


def retrain(config_path: str | None, settings: Settings, mlflow_run_id: str) -> dict[str, Any]:
    """The train flow, as a subflow; its outcome (or its expected failure) recorded on the
    monitor's MLflow run. The gate inside the train flow decides promotion."""
    from leadscore.pipelines.train_flow import train_flow

    try:
        trained = train_flow(config_path)
    except Exception as exc:
        if exit_code(exc) is None:
            raise
        outcome: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        outcome = {k: trained.get(k) for k in ("version", "promoted", "promotion", "run_id")}
    monitor_tracking.tag_retrain(settings.tracking, mlflow_run_id, outcome)
    return outcome


def batch_line(result: MonitorResult) -> dict[str, Any] | None:
    """The newest batch in a few figures (the summary's ``newest``)."""
    if not result.batches:
        return None
    batch = result.batches[-1]
    keys = ("roc_auc", "roc_auc_rules", "estimated_roc_auc", "max_feature_psi", "prediction_psi")
    return {
        "batch_id": batch.batch_id,
        "as_of": batch.as_of.isoformat(),
        "observed_days": batch.observed_days,
        "mature": batch.mature,
        "n_leads": batch.n_leads,
        "n_known": batch.n_known,
        "conversions": batch.conversions,
        **{k: None if batch.metrics.get(k) is None else round(batch.metrics[k], 4) for k in keys},
    }


@flow(name="leadscore-monitor", log_prints=True)
def monitor_flow(config_path: str | None = None, full: bool = False) -> dict[str, Any]:
    """Judge the archived batches against the outcomes read tonight; record the decision
    (store, MLflow, report) and retrain when it is asked for and ``monitor.retrain`` is on.

    A batch mature when last judged is not judged again (nor its scores read): its stored
    result is final and enters the decision as it is. ``full``: judge every batch again
    (e.g. after outcomes were corrected in the CRM). Returns the summary ``leadscore
    monitor`` prints (one JSON line)."""
    logger = get_run_logger()
    settings = load_settings(config_path)
    outcomes = read_outcomes(settings)
    if outcomes.undated is not None:
        logger.warning(outcomes.undated)
        return {"batches": 0, "decision": None, "decision_text": outcomes.undated}
    listed = archived(settings.monitor.archive_dir)
    now = outcome_time(settings, outcomes.end, listed.values())
    store = ScoreStore(settings.store)
    try:  # the store's connections are closed whatever happens
        store.create()
        batches = read_batches(settings, store, list(listed), now, full)
        facts = champion(settings)
        last = monitor_tracking.last_retrain_at(store.monitor_runs(limit=RUNS_SEARCHED))
        result = judge(settings, batches, outcomes.frame, now, facts, last)
        params = {
            "now": now.isoformat(),
            "champion_version": facts.version,
            "champion_run_id": facts.run_id,
            "validation_roc_auc": facts.validation_roc_auc,
            "trained_at": None if facts.trained_at is None else facts.trained_at.isoformat(),
            "last_retrain_at": None if last is None else last.isoformat(),
            "horizon_days": settings.snapshots.horizon_days,
            "archive_dir": str(settings.monitor.archive_dir),
            "leads_known": len(outcomes.frame),
            "retrain_enabled": settings.monitor.retrain,
            "full": full,
            "batches_judged": len(batches.fresh),
            "batches_reused": len(result.reused),
            **{f"threshold_{k}": v for k, v in settings.monitor.thresholds.model_dump().items()},
        }
        recorded = record(settings, result, store, params)
    finally:
        store.close()
    logger.info(
        "monitor: %d batches judged, %d mature ones as stored, as of %s; %s",
        len(batches.fresh),
        len(result.reused),
        now,
        result.decision.text,
    )
    started = None
    if result.decision.action == "retrain" and settings.monitor.retrain:
        started = retrain(config_path, settings, recorded["mlflow_run_id"])
        logger.info("retrain: %s", started)
    return {
        "run_id": recorded["run_id"],
        "mlflow_run_id": recorded["mlflow_run_id"],
        "now": now.isoformat(),
        "champion_version": facts.version,
        "batches": len(result.batches),
        "judged": len(batches.fresh),
        "reused": len(result.reused),
        "mature": sum(b.mature for b in result.batches),
        "newest": batch_line(result),
        "decision": result.decision.action,
        "decision_text": result.decision.text,
        "reasons": list(result.decision.reasons),
        "report": recorded["report"],
        "retrain": started,
    }
