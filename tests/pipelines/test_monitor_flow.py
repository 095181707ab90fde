"""The monitor flow on a real project: a champion trained and a batch scored on the CRM as
its export read 100 days before its end, then the whole CRM read: the batch is judged
(mature: the 90-day horizon has passed), the decision is recorded on an MLflow run in the
monitoring experiment and in the store, the report written, and the retrain it asks for
(days since training > 1, forced cheaply) trains and registers a new version.

One scenario for the module (train, score, monitor with its retrain): the flows are the
costly part. The CLI's lines and a flat export without dates are checked without flows.
"""

from __future__ import annotations

import html
import json
import math
import re
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from tests.conftest import ROOT

N_LEADS = 2000
BEFORE_END = pd.Timedelta(days=100)


def _export_as_of(crm, cutoff: pd.Timestamp):
    """The CRM as its export read at ``cutoff``: leads created before, those closed later
    still open, activities before."""
    from leadscore.synthetic.frames import SyntheticCRM

    leads = crm.leads.loc[crm.leads["created_at"] < cutoff].copy()
    later = ~(leads["closed_at"] < cutoff)
    leads.loc[later, "status"] = "open"
    leads.loc[later, "closed_at"] = pd.NaT
    acts = crm.activities
    acts = acts.loc[acts["lead_id"].isin(leads["lead_id"]) & (acts["occurred_at"] < cutoff)]
    truth = crm.truth.loc[crm.truth["lead_id"].isin(leads["lead_id"])]
    return SyntheticCRM(
        leads=leads.reset_index(drop=True),
        activities=acts.reset_index(drop=True),
        truth=truth.reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory, prefect_harness) -> dict:
    from leadscore.pipelines.monitor_flow import monitor_flow
    from leadscore.pipelines.score_flow import score_flow
    from leadscore.pipelines.train_flow import train_flow
    from leadscore.synthetic import generate_crm, write_crm

    folder = tmp_path_factory.mktemp("monitored")
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["snapshots"].update(min_leads=500, min_conversions=50)  # a small CRM on purpose
    raw["promotion"]["max_calibration_error"] = None  # as tests/e2e: 2k leads, wide ECE
    raw["model"]["kind"] = "logistic"  # the fastest family: the flows are under test here
    raw["monitor"]["min_conversions"] = 5
    # only the days since training can ask for a retrain, and it does (a cheap, sure trigger)
    raw["monitor"]["thresholds"] = {
        "max_feature_psi": None,
        "max_prediction_psi": None,
        "max_auc_drop": None,
        "max_calibration_error": None,
        "max_days_since_training": 1,
    }
    config = folder / "leadscore.yaml"
    config.write_text(yaml.safe_dump(raw))
    crm = generate_crm(N_LEADS, seed=5)
    cutoff = crm.leads["created_at"].max().floor("D") + pd.Timedelta(days=1) - BEFORE_END
    write_crm(_export_as_of(crm, cutoff), folder / "data" / "synthetic")
    trained = train_flow(str(config))
    scored = score_flow(str(config))
    write_crm(crm, folder / "data" / "synthetic")  # 100 days later: the outcomes arrived
    monitored = monitor_flow(str(config))
    return {
        "folder": folder,
        "crm": crm,
        "trained": trained,
        "scored": scored,
        "monitored": monitored,
    }


@pytest.mark.slow
def test_a_monitor_run_judges_the_batch_records_the_decision_and_retrains(world):
    from mlflow import MlflowClient

    from leadscore.pipelines.settings import load_settings
    from leadscore.serving.store import ScoreStore

    folder, summary, scored = world["folder"], world["monitored"], world["scored"]
    settings = load_settings(folder / "leadscore.yaml")
    json.dumps(summary)  # the CLI prints it as one JSON line

    # the batch: mature, its leads all known, judged on what happened within 90 days
    store = ScoreStore(settings.store)
    [batch] = store.monitor_batches().to_dict("records")
    assert batch["batch_id"] == scored["batch_id"] == summary["newest"]["batch_id"]
    assert (batch["n_leads"], batch["n_known"]) == (scored["n_rows"], scored["n_rows"])
    assert batch["observed_days"] == 90 and batch["mature"]
    published = store.read_batch(scored["batch_id"]).set_index("lead_id")
    truth = world["crm"].leads.set_index("lead_id").loc[published.index]
    as_of = pd.Timestamp(scored["as_of"])
    y = (truth["status"] == "converted") & (truth["closed_at"] > as_of)
    y &= truth["closed_at"] <= as_of + pd.Timedelta(days=90)
    assert batch["conversions"] == int(y.sum()) >= 5
    # the published probabilities against the outcomes, computed here by hand
    expected = roc_auc_score(y.to_numpy(), published["probability"].to_numpy())
    assert batch["roc_auc"] == pytest.approx(expected, abs=1e-3)  # float32 in the archive
    expected_rules = roc_auc_score(y.to_numpy(), published["rule_score"].to_numpy())
    assert batch["roc_auc_rules"] == pytest.approx(expected_rules, abs=1e-6)
    grades = store.monitor_grades([batch["batch_id"]])
    model = grades[grades["ranking"] == "model"]
    assert model["grade"].tolist() == list(settings.scoring.grades)
    assert model["n"].sum() == scored["n_rows"] and model["conversions"].sum() == y.sum()

    # the decision: days since the champion's data end, in words, on MLflow and in the store
    client = MlflowClient(tracking_uri=settings.tracking.tracking_uri)
    training = client.get_run(world["trained"]["run_id"])
    trained_at = pd.Timestamp(training.data.params["data_end"])
    days = math.floor((pd.Timestamp(summary["now"]) - trained_at) / pd.Timedelta(days=1))
    assert days >= 100
    assert summary["decision"] == "retrain"
    assert summary["decision_text"] == f"retrain: {days} days since training > 1"
    [run] = store.monitor_runs()
    assert (run["action"], run["text"]) == ("retrain", summary["decision_text"])
    assert run["reasons"] == [f"{days} days since training > 1"]
    assert run["mlflow_run_id"] == summary["mlflow_run_id"] and run["champion_version"] == "1"
    monitored = client.get_run(summary["mlflow_run_id"])
    experiment = client.get_experiment(monitored.info.experiment_id)
    assert experiment.name == settings.tracking.monitor_experiment == "leadscore-monitoring"
    assert monitored.data.tags["decision"] == "retrain"
    assert monitored.data.tags["decision_text"] == summary["decision_text"]
    assert monitored.data.metrics["mature_roc_auc"] == pytest.approx(batch["roc_auc"])
    assert monitored.data.metrics["newest_observed_days"] == 90
    assert monitored.data.params["champion_version"] == "1"
    artifacts = {a.path for a in client.list_artifacts(summary["mlflow_run_id"])}
    assert "monitoring.html" in artifacts
    report = Path(summary["report"])
    assert report == settings.output.report_dir / "monitoring.html"
    assert html.escape(summary["decision_text"], quote=False) in report.read_text()

    # the retrain ran: a second version trained on the whole CRM, the gate's word recorded
    retrain = summary["retrain"]
    assert retrain["version"] == "2" and retrain["run_id"] != world["trained"]["run_id"]
    assert isinstance(retrain["promoted"], bool) and retrain["promotion"]
    assert monitored.data.tags["retrain_version"] == "2"
    again = client.get_run(retrain["run_id"])
    assert pd.Timestamp(again.data.params["data_end"]) > trained_at + pd.Timedelta(days=90)
    versions = client.search_model_versions(f"name = '{settings.tracking.model_name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]

    # the next run: the batch was mature, so its stored figures stand (not read, not judged)
    from leadscore.pipelines.monitor_flow import monitor_flow

    again = monitor_flow(str(folder / "leadscore.yaml"))
    assert (again["batches"], again["judged"], again["reused"]) == (1, 0, 1)
    assert again["retrain"] is None  # the retrain above is too recent to ask again
    [kept] = store.monitor_batches().to_dict("records")
    assert kept["run_id"] == run["run_id"] and kept["roc_auc"] == batch["roc_auc"]
    assert [r["run_id"] for r in store.monitor_runs()][1] == run["run_id"]


def test_the_monitor_command_prints_a_json_line_and_the_decision(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from leadscore.pipelines import cli, monitor_flow

    summary = {
        "run_id": "20260301T030000Z-abcdef",
        "mlflow_run_id": "f" * 32,
        "now": "2026-03-01T00:00:00+00:00",
        "champion_version": "3",
        "batches": 4,
        "mature": 1,
        "newest": {"batch_id": "b4", "observed_days": 2, "roc_auc": None}
        | {"estimated_roc_auc": 0.7412},
        "decision": "retrain",
        "decision_text": "retrain: PSI of lead_source 0.31 > 0.2",
        "reasons": ["PSI of lead_source 0.31 > 0.2"],
        "report": "reports/monitoring.html",
        "retrain": {"version": "4", "promoted": False, "promotion": "ROC-AUC below champion"},
    }
    calls: list[bool] = []
    monkeypatch.setattr(
        monitor_flow, "monitor_flow", lambda config, full=False: calls.append(full) or summary
    )
    monkeypatch.setattr(cli, "flow_runs", nullcontext)
    for key, value in (("PREFECT_LOGGING_LEVEL", "WARNING"), ("GX_ANALYTICS_ENABLED", "false")):
        monkeypatch.setenv(key, value)  # restored after the test (the CLI sets defaults)
    (tmp_path / "leadscore.yaml").write_text((ROOT / "leadscore.yaml").read_text())
    result = CliRunner().invoke(
        cli.app, ["monitor", "--config", str(tmp_path / "leadscore.yaml")], env={"COLUMNS": "240"}
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == summary
    assert result.stderr.strip() == (
        "4 batches judged (1 mature); newest b4 (2 days watched): estimated ROC-AUC 0.741; "
        "retrain: PSI of lead_source 0.31 > 0.2; "
        "retrained: version 4 not promoted (ROC-AUC below champion)"
    )
    again = CliRunner().invoke(
        cli.app, ["monitor", "--full", "--config", str(tmp_path / "leadscore.yaml")]
    )
    assert again.exit_code == 0, again.output
    assert calls == [False, True]  # --full: every archived batch judged again


def test_a_flat_export_without_dates_is_not_monitored(tmp_path):
    from leadscore.pipelines.monitor_flow import read_outcomes
    from leadscore.pipelines.settings import Settings

    rng = np.random.default_rng(4)
    csv = tmp_path / "flat.csv"
    pd.DataFrame(
        {
            "lead_id": [f"F{i}" for i in range(50)],
            "status": rng.choice(["converted", "lost", "open"], 50),
            "industry": rng.choice(["software", "retail"], 50),
        }
    ).to_csv(csv, index=False)
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"] = {"leads": {"path": str(csv)}, "activities": None, "order": "none"}
    raw["features"]["attributes"] = {"categorical": ["industry"], "numeric": []}
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
    raw["rules"]["penalties"] = []
    outcomes = read_outcomes.fn(Settings.model_validate(raw))
    assert outcomes.frame.empty and pd.isna(outcomes.end)
    assert re.search(r"no closed_at .* nothing is monitored", outcomes.undated)


def test_the_last_retrain_is_the_newest_run_that_asked_for_one():
    from leadscore.pipelines.monitor_tracking import last_retrain_at

    runs = [  # newest first, as ScoreStore.monitor_runs returns them
        {"action": "none", "now": pd.Timestamp("2026-03-09", tz="UTC")},
        {"action": "retrain", "now": pd.Timestamp("2026-03-05 03:00", tz="UTC")},
        {"action": "retrain", "now": pd.Timestamp("2026-02-01", tz="UTC")},
    ]
    assert last_retrain_at(runs) == pd.Timestamp("2026-03-05 03:00", tz="UTC")
    assert last_retrain_at(runs[:1]) is None and last_retrain_at([]) is None


def test_now_is_never_before_the_newest_batch_unless_configured():
    from leadscore.models.monitor.result import ArchivedBatch
    from leadscore.pipelines.monitor_flow import outcome_time
    from leadscore.pipelines.settings import load_settings

    settings = load_settings(ROOT / "leadscore.yaml")
    end = pd.Timestamp("2026-03-01", tz="UTC")  # the leads' end; the batch saw activities later
    batch = ArchivedBatch("b", pd.Timestamp("2026-03-02", tz="UTC"), "1", pd.DataFrame(), None)
    assert outcome_time(settings, end, []) == end
    older = pd.Timestamp("2026-02-01", tz="UTC")  # the archive's as-ofs, any order
    assert outcome_time(settings, end, [batch.as_of, older]) == batch.as_of
    pinned = settings.model_copy(
        update={"data": settings.data.model_copy(update={"as_of": "2026-02-20"})}
    )
    assert outcome_time(pinned, end, [batch.as_of]) == pd.Timestamp("2026-02-20", tz="UTC")


def test_a_second_run_reads_and_judges_only_the_batches_not_yet_mature(tmp_path, monkeypatch):
    """The flow's read step on a real archive and a real SQLite store: the first night
    reads every batch, the next reads only the young one (the mature ones' stored results
    decide alongside it, as if judged again), ``full`` reads them all again."""
    from leadscore.models.monitor.run import monitor
    from leadscore.pipelines.archive import archived, write_batch
    from leadscore.pipelines.monitor_flow import read_batches
    from leadscore.pipelines.settings import load_settings
    from leadscore.pipelines.spilled import write_arrow
    from leadscore.serving.store import ScoreStore
    from tests.models.test_monitor_run import NOW, judged_world

    world, outcomes, kwargs = judged_world()
    folder = tmp_path / "archive"
    (tmp_path / "spill").mkdir()
    for b in world:
        part = write_arrow(b.scores, tmp_path / "spill" / f"{b.batch_id}.arrow")
        write_batch(
            folder,
            [part],
            batch_id=b.batch_id,
            as_of=b.as_of,
            model_version=b.model_version,
            profile=b.profile,
            quarantine=b.quarantine,
            rows_in=b.rows_in,
        )
    settings = load_settings(ROOT / "leadscore.yaml")
    settings = settings.model_copy(
        update={
            "monitor": settings.monitor.model_copy(update={"archive_dir": folder}),
            "store": settings.store.model_copy(update={"url": f"sqlite:///{tmp_path}/s.db"}),
        }
    )
    store = ScoreStore(settings.store)
    store.create()
    read: list[str] = []
    real = pd.read_parquet
    monkeypatch.setattr(
        pd, "read_parquet", lambda path, **kw: read.append(path.parent.name) or real(path, **kw)
    )

    def night(full: bool = False):
        read.clear()
        batches = read_batches.fn(settings, store, list(archived(folder)), NOW, full)
        result = monitor(batches.fresh, outcomes, previous=batches.stored, **kwargs)
        store.save_monitor(result, mlflow_run_id=None)
        return batches, result

    first_batches, first = night()
    assert sorted(read) == ["mid", "new", "old"] and first_batches.stored == []
    second_batches, second = night()
    assert read == ["new"]  # the mature batches' scores are not read again
    assert [r.batch_id for r in second_batches.stored] == ["old", "mid"]
    assert second.reused == ("old", "mid") and second.decision == first.decision
    assert [b.batch_id for b in second.batches] == ["old", "mid", "new"]
    full_batches, full = night(full=True)
    assert sorted(read) == ["mid", "new", "old"] and full_batches.stored == []
    assert full.reused == () and full.decision == first.decision
