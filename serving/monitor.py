"""``GET /v1/monitor``: the closed loop's latest word, as JSON.

The latest monitor run (the decision, its text and reasons, when it ran, the champion),
every judged batch with its metrics (live ROC-AUC of model and rules, estimate, capture,
drift summary, rows set aside) and whether it is mature, and the newest batch's drift per
attribute, worst first. Read through the store's monitor tables (``serving/store/
monitor.py``); before the monitor ever ran the answer is a 200 saying so (``ran: false``),
not a 404, so a dashboard polling it needs no special case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from leadscore.models.monitor.words import maturity
from leadscore.serving.store import ScoreStore
from leadscore.serving.store.monitor import BATCH_FIELDS as MONITOR_BATCH_FIELDS

_NOT_METRICS = MONITOR_BATCH_FIELDS
"""The columns of ``monitor_batches()`` before its expanded metrics (every other column is
a metric); the API passes them on as they are, but ``quarantine`` (reason -> rows) and
``run_id``, which it reads apart."""
BATCH_FIELDS = tuple(c for c in MONITOR_BATCH_FIELDS if c not in ("quarantine", "run_id"))


NEVER_RAN = "the monitor has not run yet: run `leadscore monitor` after a batch is published"


class MonitorRun(BaseModel):
    """One monitor run: what it decided and why."""

    run_id: str
    created_at: datetime | None
    now: datetime | None = Field(description="Outcomes known up to here.")
    champion_version: str | None
    horizon_days: int | None
    action: str = Field(description='"retrain" or "none".')
    text: str = Field(description='"retrain: PSI of lead_source 0.31 > 0.2", ...')
    reasons: list[str]
    mlflow_run_id: str | None


class MonitorBatch(BaseModel):
    """One published batch as the monitor judged it."""

    batch_id: str
    as_of: datetime | None
    model_version: str | None
    n_leads: int
    n_known: int = Field(description="Leads whose outcome is known (the rest left the source).")
    conversions: int = Field(description="Converted within the days watched so far.")
    observed_days: int
    mature: bool = Field(description="Watched for the whole horizon: final figures.")
    status: str = Field(description='"mature" or "still maturing (12 of 30 days)".')
    metrics: dict[str, float | None]
    quarantine: dict[str, int] = Field(description="Rows set aside by the data checks, by reason.")


class DriftRow(BaseModel):
    """One attribute (or ``prediction``) of the newest batch against the training leads."""

    feature: str
    kind: str
    psi: float | None
    missing_ref: float | None
    missing_now: float | None
    unseen_now: float | None
    top_shift: str | None


class MonitorDrift(BaseModel):
    batch_id: str | None
    as_of: datetime | None
    features: list[DriftRow] = Field(description="Worst first (largest PSI).")


class MonitorReport(BaseModel):
    """The latest monitor run, every judged batch (oldest first), the newest drift."""

    ran: bool
    message: str | None = None
    latest: MonitorRun | None
    batches: list[MonitorBatch]
    drift: MonitorDrift | None


def _value(value: Any) -> Any:
    """A frame's cell as JSON reads it: NaN / NaT as None, numpy scalars as Python ones."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, pd.Timestamp):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT or (isinstance(value, pd.Timestamp) and pd.isna(value)):
        return None
    return value


def _reasons(raw: Any) -> list[str]:
    if isinstance(raw, list | tuple):
        return [str(r) for r in raw]
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return [str(raw)]
    return [str(r) for r in value] if isinstance(value, list) else [str(value)]


def latest_run(store: ScoreStore) -> dict[str, Any] | None:
    """The newest monitor run, reasons decoded; None if the monitor never ran."""
    runs = store.monitor_runs(limit=1)
    if not runs:
        return None
    run = {k: _value(v) for k, v in runs[0].items()}
    run["reasons"] = _reasons(runs[0].get("reasons"))
    return run


def batch_rows(frame: pd.DataFrame, horizon_days: int | None) -> list[dict[str, Any]]:
    """``monitor_batches()`` as JSON objects: the facts, the status in words, the metrics."""
    rows = []
    metric_columns = [c for c in frame.columns if c not in _NOT_METRICS]
    for record in frame.to_dict(orient="records"):
        row = {k: _value(record.get(k)) for k in BATCH_FIELDS}
        row["mature"] = bool(row["mature"])
        row["status"] = maturity(row["mature"], int(row["observed_days"]), horizon_days or 0)
        row["metrics"] = {c: _value(record[c]) for c in metric_columns}
        quarantine = record.get("quarantine")
        row["quarantine"] = dict(quarantine) if isinstance(quarantine, dict) else {}
        rows.append(row)
    return rows


def drift_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One batch's drift, worst first (largest PSI; unmeasured last)."""
    if frame.empty:
        return []
    order = frame.assign(_psi=pd.to_numeric(frame["psi"], errors="coerce")).sort_values(
        "_psi", ascending=False, na_position="last", kind="stable"
    )
    fields = list(DriftRow.model_fields)
    return [{k: _value(r.get(k)) for k in fields} for r in order.to_dict(orient="records")]


def monitor_report(store: ScoreStore) -> dict[str, Any]:
    """The body of ``GET /v1/monitor``."""
    run = latest_run(store)
    if run is None:
        return {"ran": False, "message": NEVER_RAN, "latest": None, "batches": [], "drift": None}
    frame = store.monitor_drift(None)
    drift = {
        "batch_id": _value(frame["batch_id"].iloc[0]) if len(frame) else None,
        "as_of": _value(frame["as_of"].iloc[0]) if len(frame) else None,
        "features": drift_rows(frame),
    }
    return {
        "ran": True,
        "message": None,
        "latest": run,
        "batches": batch_rows(store.monitor_batches(), run.get("horizon_days")),
        "drift": drift,
    }


def monitor_router(store: ScoreStore, require_token: Callable[..., None]) -> APIRouter:
    """``GET /v1/monitor`` over ``store``, behind ``require_token``."""
    router = APIRouter()

    @router.get(
        "/v1/monitor",
        response_model=MonitorReport,
        dependencies=[Depends(require_token)],
        tags=["monitoring"],
    )
    def get_monitor() -> dict[str, Any]:
        """The latest monitor run (decision, reasons), every judged batch's metrics and
        whether it is mature, the newest batch's drift; ``ran: false`` before the first
        run."""
        return monitor_report(store)

    return router
