"""The store's monitor half (schema 5, issue #17): what each monitor run found, kept.

A monitor run judges again every archived batch not yet mature (outcomes keep arriving
until then), so :meth:`StoreMonitor.save_monitor` records the run and *replaces* the rows
of each batch it judged, in one transaction: readers see either the previous figures of
a batch or the new ones, never a mix. Batches the run did not judge (gone from the
archive, or mature when last judged and taken as stored: ``MonitorResult.reused``, read
back whole by :meth:`StoreMonitor.monitor_results`) keep their rows and their run id.
The report, ``GET /v1/monitor`` and the page's "How did past grades do" tab read these
tables through the methods below.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, delete, insert, select

from leadscore.models.monitor.result import (
    DRIFT_COLUMNS,
    GRADE_COLUMNS,
    METRIC_NAMES,
    BatchResult,
    MonitorResult,
)
from leadscore.serving.store.base import StoreBase
from leadscore.serving.store.checks import new_batch_id
from leadscore.serving.store.schema import (
    TEXT_DTYPE,
    monitor_batches_table,
    monitor_drift_table,
    monitor_grades_table,
    monitor_runs_table,
)

BATCH_FIELDS: tuple[str, ...] = (
    "batch_id",
    "as_of",
    "model_version",
    "n_leads",
    "n_known",
    "conversions",
    "observed_days",
    "mature",
    "quarantine",
    "run_id",
)
"""The columns of :meth:`StoreMonitor.monitor_batches` before the expanded metrics."""

_INT = ("n_leads", "n_known", "conversions", "observed_days", "n")
_FLOAT = ("predicted", "realised", "low", "high", "psi", "missing_ref", "missing_now", "unseen_now")


def _stamp(value: Any) -> datetime:
    """A UTC-aware datetime from a Timestamp (naive values are read as UTC)."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _number(value: Any) -> float | None:
    """A JSON- and SQL-safe float: None for missing or not finite."""
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    """A text cell, None when missing."""
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _rows(frame: pd.DataFrame, columns: Sequence[str], batch: BatchResult) -> list[dict[str, Any]]:
    """One batch's grade or drift frame as insert rows, in the frame's order."""
    rows: list[dict[str, Any]] = []
    for position, record in enumerate(frame.to_dict("records")):
        row: dict[str, Any] = {"position": position}
        for name in columns:
            value = record.get(name)
            if name == "batch_id":
                value = batch.batch_id
            elif name == "as_of":
                value = _stamp(batch.as_of if value is None or pd.isna(value) else value)
            elif name in _INT:
                value = int(value)
            elif name in _FLOAT:
                value = _number(value)
            elif name == "mature":
                value = bool(value)
            else:
                value = _text(value)
            row[name] = value
        rows.append(row)
    return rows


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes of a frame read back: UTC stamps, int64, float64, bool, text."""
    for name in frame.columns:
        if name == "as_of":
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif name in _INT:
            frame[name] = frame[name].astype("int64")
        elif name in _FLOAT:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif name == "mature":
            frame[name] = frame[name].astype(bool)
        elif frame[name].dtype == object and name not in ("quarantine",):
            frame[name] = frame[name].astype(TEXT_DTYPE)
    return frame


class StoreMonitor(StoreBase):
    """Monitor runs and their per-batch figures: saved whole, read by the report and API."""

    def save_monitor(self, result: MonitorResult, *, mlflow_run_id: str | None) -> str:
        """Record one monitor run and replace the rows of every batch it judged; its id.

        One transaction: the run row, then per judged batch its ``monitor_batches`` row,
        grades and drift (the previous rows of those batches deleted first). The batches
        the run reused as stored (``result.reused``) are left as they are.
        """
        self._require_schema()
        run_id = new_batch_id(_stamp(result.created_at))
        reused = set(result.reused)
        fresh = [b for b in result.batches if b.batch_id not in reused]
        judged = [b.batch_id for b in fresh]
        with self.engine.begin() as conn:
            conn.execute(
                insert(monitor_runs_table).values(
                    run_id=run_id,
                    created_at=_stamp(result.created_at),
                    now=_stamp(result.now),
                    champion_version=result.champion_version,
                    horizon_days=int(result.horizon_days),
                    action=result.decision.action,
                    text=result.decision.text,
                    reasons=json.dumps(list(result.decision.reasons)),
                    mlflow_run_id=mlflow_run_id,
                )
            )
            for table in (monitor_grades_table, monitor_drift_table, monitor_batches_table):
                for start in range(0, len(judged), 500):
                    chunk = judged[start : start + 500]
                    conn.execute(delete(table).where(table.c.batch_id.in_(chunk)))
            for batch in fresh:
                self._insert_batch(conn, batch, run_id)
        return run_id

    @staticmethod
    def _insert_batch(conn: Connection, batch: BatchResult, run_id: str) -> None:
        metrics = {str(k): _number(v) for k, v in batch.metrics.items()}
        quarantine = {str(k): int(v) for k, v in batch.quarantine.items()}
        conn.execute(
            insert(monitor_batches_table).values(
                batch_id=batch.batch_id,
                as_of=_stamp(batch.as_of),
                model_version=str(batch.model_version),
                n_leads=int(batch.n_leads),
                n_known=int(batch.n_known),
                conversions=int(batch.conversions),
                observed_days=int(batch.observed_days),
                mature=bool(batch.mature),
                metrics=json.dumps(metrics),
                quarantine=json.dumps(quarantine),
                run_id=run_id,
            )
        )
        for table, frame, columns in (
            (monitor_grades_table, batch.grades, GRADE_COLUMNS),
            (monitor_drift_table, batch.drift, DRIFT_COLUMNS),
        ):
            rows = _rows(frame, columns, batch)
            if rows:
                conn.execute(insert(table), rows)

    def monitor_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``limit`` monitor runs, newest first (``reasons`` as a list)."""
        self._require_schema()
        table = monitor_runs_table
        query = select(table).order_by(table.c.created_at.desc(), table.c.run_id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        runs = [dict(row) for row in rows]
        for run in runs:
            run["reasons"] = json.loads(run["reasons"])
        return runs

    def monitor_batches(self) -> pd.DataFrame:
        """Every judged batch's latest figures, oldest first; the metrics one column each
        (``METRIC_NAMES`` first, then the capture columns), ``quarantine`` a dict."""
        self._require_schema()
        table = monitor_batches_table
        query = select(table).order_by(table.c.as_of, table.c.batch_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        metrics = [json.loads(row["metrics"]) for row in rows]
        names = list(METRIC_NAMES)
        for found in metrics:
            names += [name for name in found if name not in names]
        data: dict[str, Any] = {
            name: [json.loads(r[name]) if name == "quarantine" else r[name] for r in rows]
            for name in BATCH_FIELDS
        }
        for name in names:
            data[name] = np.array([m.get(name) for m in metrics], dtype="float64")
        frame = pd.DataFrame(data, columns=[*BATCH_FIELDS, *names])
        frame["quarantine"] = frame["quarantine"].astype(object)
        return _typed(frame)

    def monitor_results(self, batch_ids: Sequence[str] | None = None) -> list[BatchResult]:
        """The stored figures of the given batches (None: every judged batch) rebuilt as
        the monitor returned them, oldest first: what a run reuses for a batch that was
        mature when last judged instead of judging it again. Ids not stored are absent."""
        self._require_schema()
        table = monitor_batches_table
        query = select(table).order_by(table.c.as_of, table.c.batch_id)
        wanted = None if batch_ids is None else list(dict.fromkeys(batch_ids))
        rows: list[Any] = []
        with self.engine.connect() as conn:
            if wanted is None:
                rows = list(conn.execute(query).mappings().all())
            for start in range(0, len(wanted or ()), 500):
                chunk = (wanted or [])[start : start + 500]
                found = conn.execute(query.where(table.c.batch_id.in_(chunk)))
                rows += found.mappings().all()
        rows.sort(key=lambda r: (_stamp(r["as_of"]), r["batch_id"]))
        ids = [r["batch_id"] for r in rows]
        grades = self._per_batch(monitor_grades_table, GRADE_COLUMNS, ids)
        drift = self._per_batch(monitor_drift_table, DRIFT_COLUMNS, ids)
        return [
            BatchResult(
                batch_id=str(row["batch_id"]),
                as_of=pd.Timestamp(_stamp(row["as_of"])),
                model_version=str(row["model_version"]),
                n_leads=int(row["n_leads"]),
                n_known=int(row["n_known"]),
                conversions=int(row["conversions"]),
                observed_days=int(row["observed_days"]),
                mature=bool(row["mature"]),
                metrics=json.loads(row["metrics"]),
                grades=grades.get(row["batch_id"], _typed(_empty(GRADE_COLUMNS))),
                drift=drift.get(row["batch_id"], _typed(_empty(DRIFT_COLUMNS))),
                quarantine={str(k): int(v) for k, v in json.loads(row["quarantine"]).items()},
            )
            for row in rows
        ]

    def _per_batch(
        self, table: Table, columns: Sequence[str], ids: Sequence[str]
    ) -> dict[str, pd.DataFrame]:
        """A per-batch table's rows of ``ids``, one frame per batch (index from 0)."""
        frames = [
            self._read_rows(table, columns, table.c.batch_id.in_(list(ids[i : i + 500])))
            for i in range(0, len(ids), 500)
        ]
        if not frames:
            return {}
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return {
            str(batch_id): part.reset_index(drop=True)
            for batch_id, part in frame.groupby("batch_id", sort=False)
        }

    def monitor_grades(self, batch_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Realised conversion per grade (GRADE_COLUMNS) of the given batches (None:
        every judged batch), oldest batch first, each in the order the monitor gave."""
        table = monitor_grades_table
        where = None if batch_ids is None else table.c.batch_id.in_(list(batch_ids))
        return self._read_rows(table, GRADE_COLUMNS, where)

    def monitor_drift(self, batch_id: str | None = None) -> pd.DataFrame:
        """Per-feature drift (DRIFT_COLUMNS) of one batch; None: the newest judged batch."""
        self._require_schema()
        if batch_id is None:
            newest = select(monitor_batches_table.c.batch_id).order_by(
                monitor_batches_table.c.as_of.desc(), monitor_batches_table.c.batch_id.desc()
            )
            with self.engine.connect() as conn:
                batch_id = conn.scalar(newest.limit(1))
        table = monitor_drift_table
        return self._read_rows(table, DRIFT_COLUMNS, table.c.batch_id == (batch_id or ""))

    def _read_rows(self, table: Table, columns: Sequence[str], where: Any) -> pd.DataFrame:
        """Rows of a per-batch table with canonical dtypes, oldest batch first."""
        self._require_schema()
        query = select(*(table.c[name] for name in columns))
        if where is not None:
            query = query.where(where)
        query = query.order_by(table.c.as_of, table.c.batch_id, table.c.position)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame([tuple(row) for row in rows], columns=list(columns))
        return _typed(frame)
