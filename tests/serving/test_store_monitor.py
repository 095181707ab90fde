"""Schema 5 (issue #17): the store keeps each monitor run and, per judged batch, its latest
figures; a rerun replaces a batch's rows; a version-4 store is migrated (the new tables
created, its batches kept). SQLite, and PostgreSQL with ``$LEADSCORE_TEST_PG_URL``."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, select

from leadscore.models.monitor.result import (
    DRIFT_COLUMNS,
    GRADE_COLUMNS,
    BatchResult,
    Decision,
    MonitorResult,
)
from leadscore.serving.store import (
    MONITOR_TABLES,
    SCHEMA_VERSION,
    ScoreStore,
    StoreConfig,
    schema_version_table,
)
from tests.serving.test_store import AS_OF, BACKENDS, _frame, backend_url
from tests.serving.test_store_leftovers import upgraded_from

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-03-02 03:00", tz="UTC")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path):
    with backend_url(request.param, tmp_path) as url:
        created = ScoreStore(StoreConfig(url=url, chunk_rows=3))
        created.create()
        yield created
        created.close()


def _grades(batch_id: str, as_of: pd.Timestamp, observed: int, mature: bool) -> pd.DataFrame:
    rows = []
    # the monitor's grade order (not alphabetical: the store must keep it)
    for ranking, grade, n, conv, predicted in (
        ("model", "hot", 10, 4, 0.35),
        ("model", "warm", 20, 3, 0.12),
        ("model", "cold", 30, 1, None),
        ("rules", "hot", 12, 2, 0.2),
        ("rules", "cold", 48, 6, 0.1),
    ):
        realised = conv / n
        low, high = realised / 2, min(1.0, realised * 2)
        head = (batch_id, as_of, ranking, grade, n, conv, predicted)
        rows.append((*head, realised, low, high, observed, mature))
    return pd.DataFrame(rows, columns=list(GRADE_COLUMNS))


def _drift(batch_id: str, as_of: pd.Timestamp, psi: float) -> pd.DataFrame:
    shift = "lead_source=partner 2.0% -> 21.3%"
    rows = [
        (batch_id, as_of, "prediction", "prediction", 0.02, 0.0, 0.0, None, None),
        (batch_id, as_of, "lead_source", "categorical", psi, 0.0, 0.01, 0.05, shift),
        (batch_id, as_of, "employees", "numeric", None, 0.1, 0.3, None, "missing 10% -> 30%"),
    ]
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


def _batch(batch_id: str, as_of: pd.Timestamp, *, observed: int, roc: float | None) -> BatchResult:
    mature = observed == 30
    return BatchResult(
        batch_id=batch_id,
        as_of=as_of,
        model_version="3",
        n_leads=60,
        n_known=58,
        conversions=8,
        observed_days=observed,
        mature=mature,
        metrics={
            "roc_auc": roc,
            "roc_auc_rules": 0.61,
            "pr_auc": float("nan"),
            "ece": 0.04,
            "max_feature_psi": 0.31,
            "capture_top_10": 0.5,
            "capture_top_10_rules": 0.25,
        },
        grades=_grades(batch_id, as_of, observed, mature),
        drift=_drift(batch_id, as_of, 0.31),
        quarantine={"bad_email": 3},
    )


def _result(created: pd.Timestamp, *batches: BatchResult, retrain: bool = True) -> MonitorResult:
    decision = (
        Decision(
            "retrain", ("PSI of lead_source 0.31 > 0.2",), "retrain: PSI of lead_source 0.31 > 0.2"
        )
        if retrain
        else Decision("none", (), "no action: all within bounds")
    )
    return MonitorResult(
        created_at=created,
        now=created - pd.Timedelta(hours=3),
        champion_version="3",
        horizon_days=30,
        batches=batches,
        decision=decision,
    )


def test_a_monitor_result_round_trips(store):
    old = _batch("b-old", T0, observed=30, roc=0.74)
    young = _batch("b-young", T0 + 20 * DAY, observed=12, roc=None)
    result = _result(T0 + 32 * DAY, young, old)  # out of order: the store sorts by as_of
    run_id = store.save_monitor(result, mlflow_run_id="abc123")

    [run] = store.monitor_runs()
    assert run["run_id"] == run_id and run["mlflow_run_id"] == "abc123"
    assert (run["action"], run["text"]) == ("retrain", "retrain: PSI of lead_source 0.31 > 0.2")
    assert run["reasons"] == ["PSI of lead_source 0.31 > 0.2"]
    assert (run["champion_version"], run["horizon_days"]) == ("3", 30)
    assert pd.Timestamp(run["created_at"]) == result.created_at
    assert pd.Timestamp(run["now"]) == result.now

    batches = store.monitor_batches()
    assert batches["batch_id"].tolist() == ["b-old", "b-young"]
    assert batches["mature"].tolist() == [True, False]
    assert batches["observed_days"].tolist() == [30, 12]
    assert batches["n_known"].tolist() == [58, 58]
    assert batches["as_of"].tolist() == [T0, T0 + 20 * DAY]
    assert batches["roc_auc"].iloc[0] == 0.74 and math.isnan(batches["roc_auc"].iloc[1])
    assert math.isnan(batches["pr_auc"].iloc[0])  # NaN stored as null, read back as NaN
    assert batches["capture_top_10_rules"].tolist() == [0.25, 0.25]
    assert "estimated_roc_auc" in batches.columns  # every METRIC_NAMES column, NaN here
    assert batches["quarantine"].tolist() == [{"bad_email": 3}] * 2
    assert set(batches["run_id"]) == {run_id}

    grades = store.monitor_grades(["b-old"])
    expected = old.grades.astype({"predicted": "float64"})
    pd.testing.assert_frame_equal(grades, expected, check_dtype=False)
    assert grades["grade"].tolist() == ["hot", "warm", "cold", "hot", "cold"]  # kept order
    assert store.monitor_grades()["batch_id"].tolist() == ["b-old"] * 5 + ["b-young"] * 5

    drift = store.monitor_drift()  # the newest batch
    assert drift["batch_id"].unique().tolist() == ["b-young"]
    pd.testing.assert_frame_equal(drift, young.drift.astype({"psi": "float64"}), check_dtype=False)
    assert drift.loc[1, "top_shift"] == "lead_source=partner 2.0% -> 21.3%"
    assert store.monitor_drift("b-old")["psi"].tolist()[:2] == [0.02, 0.31]
    assert store.monitor_drift("unknown").empty


def test_a_rerun_replaces_the_batches_it_judged_and_keeps_the_others(store):
    first = _result(T0 + 25 * DAY, _batch("b1", T0, observed=25, roc=0.70))
    store.save_monitor(first, mlflow_run_id=None)
    b2 = _batch("b2", T0 + 25 * DAY, observed=0, roc=None)
    b1 = _batch("b1", T0, observed=30, roc=0.76)
    b1 = replace(b1, grades=b1.grades.iloc[:3], drift=b1.drift.iloc[:1])
    second = _result(T0 + 31 * DAY, b1, b2, retrain=False)
    run_id = store.save_monitor(second, mlflow_run_id="r2")

    runs = store.monitor_runs()
    assert [r["text"] for r in runs] == [
        "no action: all within bounds",
        "retrain: PSI of lead_source 0.31 > 0.2",
    ]
    assert runs[0]["reasons"] == [] and store.monitor_runs(limit=1)[0]["run_id"] == run_id
    batches = store.monitor_batches().set_index("batch_id")
    assert batches.loc["b1", "roc_auc"] == 0.76 and bool(batches.loc["b1", "mature"])
    assert batches.loc["b1", "run_id"] == run_id
    assert len(store.monitor_grades(["b1"])) == 3  # old rows gone, not duplicated
    assert store.monitor_drift("b1")["feature"].tolist() == ["prediction"]

    # a third run that no longer sees b1 (pruned from the archive) leaves its figures
    store.save_monitor(_result(T0 + 32 * DAY, b2), mlflow_run_id=None)
    assert store.monitor_batches()["batch_id"].tolist() == ["b1", "b2"]
    assert len(store.monitor_grades(["b1"])) == 3


def test_empty_store_reads_empty_frames_with_their_columns(store):
    assert store.monitor_runs() == []
    assert store.monitor_batches().empty and "roc_auc" in store.monitor_batches().columns
    assert list(store.monitor_grades().columns) == list(GRADE_COLUMNS)
    assert list(store.monitor_drift().columns) == list(DRIFT_COLUMNS)


def test_a_version_4_store_is_migrated_to_5(store):
    first = store.publish(_frame([("a", 30, "B", None)]), model_version="7", as_of=AS_OF)
    drops = [f"DROP TABLE {t.name}" for t in reversed(MONITOR_TABLES)]
    old = upgraded_from(store, 4, *drops)
    with old.engine.connect() as conn:
        assert conn.scalar(select(schema_version_table.c.version)) == SCHEMA_VERSION
        tables = set(inspect(conn).get_table_names())
    assert {t.name for t in MONITOR_TABLES} <= tables
    assert old.current_batch() == first  # the batches survive
    old.save_monitor(_result(T0, _batch("b1", T0, observed=30, roc=0.7)), mlflow_run_id=None)
    assert old.monitor_batches()["batch_id"].tolist() == ["b1"]
    old.create()  # idempotent
    assert len(old.monitor_runs()) == 1
    old.close()


def test_monitor_results_rebuild_the_batch_results_as_saved(store):
    old = _batch("b-old", T0, observed=30, roc=0.74)
    young = _batch("b-young", T0 + 20 * DAY, observed=12, roc=None)
    store.save_monitor(_result(T0 + 32 * DAY, young, old), mlflow_run_id=None)

    read = store.monitor_results(["b-young", "missing", "b-old"])
    assert [r.batch_id for r in read] == ["b-old", "b-young"]  # oldest first, unknown absent
    assert [r.batch_id for r in store.monitor_results()] == ["b-old", "b-young"]
    assert store.monitor_results([]) == []
    for got, saved in zip(read, (old, young), strict=True):
        assert got.as_of == saved.as_of and got.as_of.tzinfo is not None
        scalars = ("model_version", "n_leads", "n_known", "conversions", "observed_days")
        assert [getattr(got, k) for k in scalars] == [getattr(saved, k) for k in scalars]
        assert got.mature is saved.mature and got.quarantine == {"bad_email": 3}
        # NaN is kept as None (not computable), every other figure exactly
        assert got.metrics == {k: None if v != v else v for k, v in saved.metrics.items()}
        pd.testing.assert_frame_equal(
            got.grades, saved.grades.astype({"predicted": "float64"}), check_dtype=False
        )
        pd.testing.assert_frame_equal(
            got.drift, saved.drift.astype({"psi": "float64"}), check_dtype=False
        )


def test_the_decision_on_stored_mature_results_equals_judging_everything(store):
    from leadscore.models.monitor.run import monitor
    from tests.models.test_monitor_run import judged_world

    batches, outcomes, kwargs = judged_world()
    everything = monitor(batches, outcomes, **kwargs)
    first = store.save_monitor(everything, mlflow_run_id=None)

    # the next night: the mature batches read back from the store, only the young judged
    stored = store.monitor_results(["old", "mid", "new"])
    mature = [r for r in stored if r.mature]
    assert [r.batch_id for r in mature] == ["old", "mid"]
    tonight = monitor(batches[2:], outcomes, previous=mature, **kwargs)
    assert tonight.decision == everything.decision and tonight.decision.action == "retrain"
    assert tonight.reused == ("old", "mid")
    for got, judged in zip(tonight.batches, everything.batches, strict=True):
        assert got.metrics == judged.metrics and got.conversions == judged.conversions
        pd.testing.assert_frame_equal(got.grades, judged.grades, check_dtype=False)
        pd.testing.assert_frame_equal(got.drift, judged.drift, check_dtype=False)

    # saving it replaces the young batch's rows only: the reused keep theirs and their run
    second = store.save_monitor(tonight, mlflow_run_id=None)
    runs = store.monitor_batches().set_index("batch_id")["run_id"].to_dict()
    assert runs == {"old": first, "mid": first, "new": second}
    assert len(store.monitor_grades(["old"])) == len(everything.batches[0].grades)
    assert len(store.monitor_drift("mid")) == len(everything.batches[1].drift)
