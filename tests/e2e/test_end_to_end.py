"""The whole path on a ~2k-lead synthetic CRM: real Prefect flows, MLflow store, scores store.

The flows run in-process inside one Prefect test harness, in a project folder of their
own so nothing touches the working tree. The train result goes through the same
``train_summary`` the CLI prints as its JSON line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT
from tests.serving.test_webhooks_deliver import SECRET, SECRET_ENV, Receiver

pytestmark = pytest.mark.slow

N_LEADS = 2000


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 for the whole module, and its signing secret."""
    server = Receiver()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, SECRET)
        yield server
    server.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_harness, hooks: Receiver) -> Path:
    folder = tmp_path_factory.mktemp("project")
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    # the shipped demo team routes the leads; alerts go to the test's receiver
    raw["webhooks"]["endpoints"] = [{"name": "crm", "url": hooks.url, "secret_env": SECRET_ENV}]
    raw["snapshots"].update(min_leads=500, min_conversions=50)  # a small CRM on purpose
    # 2k leads give a ~1.7k-row validation window whose ECE is ~0.06 (the 20k demo: ~0.02);
    # the calibration gate itself is tested in test_promotion.py
    raw["promotion"]["max_calibration_error"] = None
    (folder / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    return folder


def _train(config: Path) -> dict:
    from leadscore.pipelines.summary import train_summary
    from leadscore.pipelines.train_flow import train_flow

    # exactly what `leadscore train` prints, through JSON and back
    return json.loads(json.dumps(train_summary(train_flow(str(config)))))


@pytest.fixture(scope="module")
def trained(project: Path) -> dict:
    from dataclasses import replace

    from leadscore.synthetic import generate_crm, write_crm

    crm = generate_crm(N_LEADS, seed=3)
    # a column sales fill in after the outcome, in the export but not a model attribute:
    # the run warns about it, and its figures are those of the CRM without it
    notes = crm.leads["status"].map({"converted": "Closed Won: signed", "lost": "closed lost"})
    write_crm(
        replace(crm, leads=crm.leads.assign(deal_notes=notes)), project / "data" / "synthetic"
    )
    return _train(project / "leadscore.yaml")


@pytest.fixture(scope="module")
def scored(project: Path, trained: dict) -> dict:
    from leadscore.pipelines.score_flow import score_flow

    return score_flow(str(project / "leadscore.yaml"))


def test_train_prints_the_metrics_line(trained: dict):
    for side in ("model", "rules", "oracle"):
        assert set(trained[side]) == {"roc_auc", "pr_auc", "brier", "lift_top10", "ece"}
    assert trained["split"] == "out_of_time"
    assert trained["n_train"] > 1000 and trained["n_valid"] > 300
    assert len(trained["run_id"]) == 32
    quality = trained["quality"]
    margin = trained["model"]["roc_auc"] - trained["rules"]["roc_auc"]
    assert quality["model_minus_rules_roc_auc"] == pytest.approx(margin, abs=2e-4)
    gap = trained["oracle"]["roc_auc"] - trained["model"]["roc_auc"]
    assert quality["oracle_minus_model_roc_auc"] == pytest.approx(gap, abs=2e-4)
    # leadscore.yaml's targets, each judged on its value, with an interval around it
    targets = {t["target"]: t for t in trained["targets"]}
    assert list(targets) == ["model_minus_rules_roc_auc", "oracle_minus_model_roc_auc", "ece"]
    assert targets["model_minus_rules_roc_auc"]["value"] == pytest.approx(margin, abs=2e-4)
    assert targets["oracle_minus_model_roc_auc"]["value"] == pytest.approx(gap, abs=2e-4)
    assert targets["ece"]["value"] == pytest.approx(trained["model"]["ece"], abs=2e-4)
    for target, bound, met in (
        (targets["model_minus_rules_roc_auc"], 0.05, margin >= 0.05),
        (targets["oracle_minus_model_roc_auc"], 0.01, gap <= 0.01),
    ):
        assert target["rule"].endswith(f" {bound:g}") and target["met"] is met
        low, high = target["interval"]
        assert low <= target["value"] <= high and high - low > 0.005  # 2k leads: wide


def test_model_beats_rules_out_of_time(trained: dict):
    assert trained["model"]["roc_auc"] > trained["rules"]["roc_auc"] + 0.03
    assert trained["model"]["roc_auc"] <= trained["oracle"]["roc_auc"] + 0.03
    assert trained["promoted"] is True


def test_run_and_registered_model_are_in_mlflow(project: Path, trained: dict):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["model_roc_auc"] == pytest.approx(trained["model"]["roc_auc"], 1e-3)
    assert run.data.params["split"] == "out_of_time"
    # the calibrator was chosen on evidence, and which one is on the run
    assert run.data.params["calibration"] == "auto"
    assert run.data.params["calibration_chosen"] in {"sigmoid", "isotonic"}
    # model.kind auto (the default): the family chosen on the training rows, and why
    assert run.data.params["model_kind"] == "auto"
    chosen = run.data.params["model_chosen"]
    assert chosen == trained["model_family"]
    families = ("logistic", "lightgbm_regularised", "lightgbm")
    inner = {name: run.data.metrics[f"selection_{name}_roc_auc"] for name in families}
    assert inner[chosen] >= max(inner.values()) - 0.002  # the tie margin
    assert (
        "judged on the newest 20% of the training rows (from " in run.data.tags["model_selection"]
    )
    assert "(the horizon embargo)" in run.data.tags["model_selection"]
    champion = client.get_model_version_by_alias("leadscore", "champion")
    assert champion.run_id == trained["run_id"]
    # a name saying what, when and on what data; a description with the headline figures
    assert re.fullmatch(
        rf"train 20\d\d-\d\d-\d\d \d\d:\d\d {chosen} on leads.parquet, 2k leads to 2026-1\d-\d\d",
        run.info.run_name,
    )
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(f"Trained a **{chosen}** model on {trained['n_train']:,} examples")
    roc = f"| {trained['model']['roc_auc']:.4f} | {trained['rules']['roc_auc']:.4f} |"
    assert f"| ROC-AUC (ranking, 0.5 = chance) {roc}" in note
    assert f"\n\nRegistered as version {champion.version}, promoted to champion: " in note
    # the training and validation examples as dataset inputs: source, digest, row count
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert {i.tags[0].key for i in run.inputs.dataset_inputs} == {"mlflow.data.context"}
    assert set(inputs) == {"training", "validation"}
    for context, rows in (("training", trained["n_train"]), ("validation", trained["n_valid"])):
        dataset = inputs[context]
        assert dataset.name == f"leads-{context}" and len(dataset.digest) == 8
        assert json.loads(dataset.source) == {
            "uri": str(project / "data" / "synthetic" / "leads.parquet")
        }
        assert json.loads(dataset.profile)["num_rows"] == rows
        schema = {c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
        assert {"lead_id", "converted"} <= schema
    assert inputs["training"].digest != inputs["validation"].digest
    # artifacts live beside the project, not in ./mlruns of the current directory
    assert (project / "mlartifacts").is_dir()
    logged = {a.path for a in client.list_artifacts(trained["run_id"], "validation")}
    assert {"validation/leads.html", "validation/activities.html"} <= logged
    assert not (Path.cwd() / "mlruns").exists()


def test_evaluation_report_is_logged_and_written(project: Path, trained: dict):
    from mlflow import MlflowClient

    path = project / "reports" / f"{trained['run_id']}.html"
    assert trained["report"] == str(path)
    page = path.read_text()
    assert (project / "reports" / "latest.html").read_text() == page
    assert f"{trained['model']['roc_auc']:.4f}" in page
    assert f"{trained['rules']['roc_auc']:.4f}" in page
    assert f"{trained['model']['ece']:.4f}" in page
    assert "Calling the top 10% by the model would have reached" in page
    assert "<td>not in US, GB, DE, FR, NL</td>" in page  # the rules card, from the window
    assert "(auto; Brier on the newer half of the calibration slice: sigmoid 0." in page
    assert "<th>model family</th>" in page and " (auto: inner ROC-AUC 0." in page
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert "report.html" in {a.path for a in client.list_artifacts(trained["run_id"])}
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["model_ece"] == pytest.approx(trained["model"]["ece"], abs=1e-4)
    # the targets: a table in the report, a verdict per target on the run
    gap = next(t for t in trained["targets"] if t["target"] == "oracle_minus_model_roc_auc")
    low, high = gap["interval"]
    assert "<h3>Quality targets</h3>" in page
    assert "oracle ROC-AUC minus the model's &lt;= 0.01" in page
    assert f"{low:.4f} to {high:.4f}" in page
    verdict = run.data.metrics["target_oracle_minus_model_roc_auc_met"]
    assert verdict == float(gap["met"])


def test_every_open_lead_has_exactly_one_score_with_reasons(project: Path, scored: dict):
    from leadscore.serving.store import ScoreStore, StoreConfig

    leads = pd.read_parquet(project / "data" / "synthetic" / "leads.parquet")
    open_ids = set(leads.loc[leads["status"] == "open", "lead_id"])
    store = ScoreStore(StoreConfig(url=f"sqlite:///{project / 'data' / 'scores.db'}"))
    batch = store.read_batch()
    assert len(batch) == len(open_ids) == scored["scored"]
    assert set(batch["lead_id"]) == open_ids
    assert batch["lead_id"].is_unique
    reasons = batch["reasons"].map(json.loads)
    assert (reasons.map(len) > 0).all()
    assert batch["rank"].tolist() == list(range(1, len(batch) + 1))
    assert batch["probability"].is_monotonic_decreasing
    # the rules' points are not clipped: rule_rank orders the batch by them
    by_rule = batch.sort_values("rule_rank")
    assert by_rule["rule_rank"].tolist() == list(range(1, len(batch) + 1))
    assert by_rule["rule_score"].is_monotonic_decreasing and batch["rule_score"].max() > 100
    for column in ("fit_score", "engagement_score"):
        assert batch[column].notna().all() and batch[column].between(0, 100).all()
    assert set(batch["cell"]) == {"call_now", "nurture", "educate", "deprioritise"}
    assert scored["leads_in"] == scored["scored"] + scored["closed"] + scored["quarantined"]
    csv = pd.read_csv(scored["csv"])
    assert len(csv) == len(open_ids)


def test_a_reps_call_list_is_in_the_api_and_on_the_page(project: Path, scored: dict):
    """After the score run (the demo's), each rep of the shipped team has today's call
    list: within capacity, best first, in the API (token) and on the page (page token).
    (Runs before the tests below publish other batches.)"""
    from fastapi.testclient import TestClient

    from leadscore.pipelines.settings import load_settings
    from leadscore.serving.api import create_app
    from leadscore.serving.config import ApiConfig

    settings = load_settings(project / "leadscore.yaml")
    routing = scored["routing"]
    assert routing["assigned"] > 0 and routing["method"] == "score_aware"
    api = ApiConfig(tokens=["e2e-token"], page_tokens=["e2e-page"])
    app = create_app(settings.store, api, team=settings.routing.reps)
    client = TestClient(app)
    auth = {"Authorization": "Bearer e2e-token"}
    team = client.get("/v1/reps", headers=auth).json()
    busiest = max(team["reps"], key=lambda r: r["assigned"])
    capacity = {r.id: r.capacity for r in settings.routing.reps}
    assert all(r["assigned"] <= capacity[r["id"]] for r in team["reps"])
    assert sum(r["assigned"] for r in team["reps"]) == routing["assigned"]
    calls = client.get(f"/v1/reps/{busiest['id']}/calls", headers=auth).json()
    assert calls["batch_id"] == scored["batch_id"]
    positions = [c["position"] for c in calls["calls"]]
    assert positions == list(range(1, busiest["assigned"] + 1))
    expected = [c["expected"] for c in calls["calls"]]
    assert expected == sorted(expected, reverse=True)
    assert client.get("/v1/reps", headers={"Authorization": "Bearer e2e-page"}).status_code == 401
    login = {"token": "e2e-page", "next": "/ui"}
    assert client.post("/ui/login", data=login, follow_redirects=False).status_code == 303
    page = client.get(f"/ui/calls/{busiest['id']}")
    assert page.status_code == 200
    for call in calls["calls"]:
        assert f"/ui/leads/{call['lead_id']}" in page.text


def test_the_published_batch_is_archived_with_its_drift_counts(project: Path, scored: dict):
    """The train flow attached the reference before logging the model, so the champion
    read back from MLflow carries it, and the score flow archived the batch's counts."""
    from leadscore.models.monitor.profile import BatchCounts
    from leadscore.pipelines.archive import read_archive

    batches = {b.batch_id: b for b in read_archive(project / "data" / "archive")}
    batch = batches[scored["batch_id"]]
    assert batch.profile is not None and len(batch.scores) == scored["scored"]
    assert BatchCounts.from_dict(batch.profile).rows == scored["scored"]


def test_a_worse_model_does_not_take_the_champion_alias(project: Path, scored: dict):
    from mlflow import MlflowClient

    raw = yaml.safe_load((project / "leadscore.yaml").read_text())
    raw["model"]["lightgbm"].update(n_estimators=2, num_leaves=2, learning_rate=0.01)
    raw["model"]["lightgbm"]["colsample_bytree"] = 0.05
    worse = project / "worse.yaml"
    worse.write_text(yaml.safe_dump(raw))
    result = _train(worse)
    assert result["promoted"] is False
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("leadscore", "champion")
    assert champion.version != result["model_version"]
    version = client.get_model_version("leadscore", result["model_version"])
    assert "does not beat" in version.tags["promotion"]
    assert "(difference -" in version.tags["promotion"]  # with its interval over leads
    # the champion's own promotion quoted its interval over the rules
    assert (
        " over rules +0."
        in client.get_model_version("leadscore", champion.version).tags["promotion"]
    )
    # the refused version is still registered, and the alias history did not move
    history = json.loads(client.get_registered_model("leadscore").tags["champion_history"])
    assert history == [str(champion.version)]


def test_the_next_score_run_rewrites_a_csv_left_one_batch_behind(project: Path, scored: dict):
    """A run killed after its batch became current, before its CSV was written, leaves
    latest.csv one batch behind; the next run rewrites it first, even one that then stops
    (here: its leads file is gone)."""
    from leadscore.models.schema import SCORE_COLUMNS
    from leadscore.pipelines.score_flow import score_flow
    from leadscore.serving.export import csv_batch_id
    from leadscore.serving.store import ScoreStore, StoreConfig

    latest = Path(scored["csv"])
    assert csv_batch_id(latest) == scored["batch_id"]  # the file names its batch
    store = ScoreStore(StoreConfig(url=f"sqlite:///{project / 'data' / 'scores.db'}"))
    killed = store.publish(  # the killed run's flip; its CSV was never written
        store.read_batch()[list(SCORE_COLUMNS)],
        model_version=scored["model_version"],
        as_of=pd.Timestamp(scored["as_of"]).to_pydatetime(),
    )
    store.close()
    assert csv_batch_id(latest) == scored["batch_id"] != killed.batch_id

    raw = yaml.safe_load((project / "leadscore.yaml").read_text())
    raw["data"]["leads"]["path"] = "data/synthetic/gone.parquet"
    broken = project / "gone.yaml"
    broken.write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match=r"gone\.parquet"):
        score_flow(str(broken))
    assert csv_batch_id(latest) == killed.batch_id
    assert len(pd.read_csv(latest)) == scored["scored"]


def test_a_column_filled_after_the_outcome_is_warned_about_and_nothing_else(
    project: Path, trained: dict
):
    from mlflow import MlflowClient

    # the synthetic CRM's honest attributes raise no false alarm
    assert {(s["column"], s["kind"]) for s in trained["leakage"]} == {
        ("deal_notes", "alone_predicts"),
        ("deal_notes", "outcome_words"),
    }
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    run = client.get_run(trained["run_id"])
    assert run.data.tags["leakage_suspects"] == "deal_notes"
    assert run.data.params["leakage_suspects"] == "2"
    assert "leakage.json" in {a.path for a in client.list_artifacts(trained["run_id"])}
    page = Path(trained["report"]).read_text()
    assert (
        "<h3>Possible leaks</h3>" in page and "possible leak: column &#x27;deal_notes&#x27;" in page
    )


def test_the_demo_ends_with_where_to_look(project: Path, scored: dict, monkeypatch):
    """`leadscore demo`'s closing lines, through the CLI, on the project the flows above
    trained and scored (the demo's steps themselves are not run again): the page with the
    command that serves it and a token that opens it, the report, MLflow, the scores."""
    import shlex

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from leadscore.pipelines import cli, runtime
    from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV, ApiConfig, create_app
    from leadscore.serving.store import StoreConfig

    monkeypatch.chdir(project)
    monkeypatch.setattr(runtime, "prepare_environment", lambda settings: None)
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"))
    for step in ("generate", "train"):  # done by the fixtures: not again
        monkeypatch.setattr(cli, step, lambda **kwargs: None)
    monkeypatch.setattr(cli, "score", lambda **kwargs: scored)  # the fixture's run
    monkeypatch.setattr(cli, "flow_runs", contextlib.nullcontext)
    done = CliRunner().invoke(cli.app, ["demo", "--config", "leadscore.yaml"])
    assert done.exit_code == 0, done.output
    lines = done.stderr.splitlines()
    start = lines.index("Where to look:")
    page, login, report, mlflow, scores, calls, nurture, loop, took = lines[start + 1 : start + 10]
    assert page.startswith('  Page:   LEADSCORE_PAGE_TOKENS="$(cat data/demo-page-token)" ')
    assert page.endswith(" serve --config leadscore.yaml")
    token = (project / "data" / "demo-page-token").read_text().strip()
    assert len(token) >= 32 and (project / "data" / "demo-page-token").stat().st_mode & 0o077 == 0
    assert login == (
        "          then open http://127.0.0.1:8000/ui and log in with the page token "
        f"{token} (kept in data/demo-page-token)"
    )
    assert report == "  Report: reports/latest.html (open it in a browser)"
    assert (project / "reports" / "latest.html").is_file()
    assert mlflow.startswith("  MLflow: ") and mlflow.endswith(
        " ui --backend-store-uri sqlite:///mlflow.db --port 5000, then open http://127.0.0.1:5000"
    )
    assert scores == (
        "  Scores: data/scores/latest.csv (CRM import: docs/crm-import.md); "
        "store sqlite:///data/scores.db"
    )
    assigned = f"{scored['routing']['assigned']:,}"
    assert calls.startswith(f"  Calls: {assigned} leads on ") and "(score_aware)" in calls
    assert calls.endswith(", in data/scores/calls.csv")
    listed = f"{scored['nurture']['leads']:,}"
    assert (
        nurture.startswith(f"  Nurture: {listed} leads, ") and "data/scores/nurture.csv" in nurture
    )
    assert loop.startswith("  Loop:   ") and " monitor --config leadscore.yaml once " in loop
    assert loop.endswith(" demo --nights 8 --every 14 (docs/drift-simulation.md)")
    assert re.fullmatch(r"Demo took \d+s", took)
    # a second demo keeps the token (a page server started with it stays valid)
    again = CliRunner().invoke(cli.app, ["demo", "--config", "leadscore.yaml"])
    assert again.exit_code == 0 and f"page token {token} " in again.stderr

    # the printed command's environment opens the page with that token
    exported = shlex.split(page.split("Page:", 1)[1])[0]
    assert exported == f"{PAGE_TOKENS_ENV}=$(cat data/demo-page-token)"
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.setenv(PAGE_TOKENS_ENV, token)
    store = StoreConfig(url=f"sqlite:///{project / 'data' / 'scores.db'}")
    client = TestClient(create_app(store, ApiConfig()))
    ok = client.post("/ui/login", data={"token": token, "next": "/ui"}, follow_redirects=False)
    assert ok.status_code == 303
    listing = client.get("/ui")
    assert listing.status_code == 200 and scored["top"][0]["lead_id"] in listing.text


def test_a_second_batch_pushes_signed_grade_changes(project: Path, scored: dict, hooks):
    """The next night's batch (three weeks later: behaviour decays) changes grades; the
    receiver gets each change once, signed with the endpoint's secret."""
    from leadscore.pipelines.score_flow import score_flow
    from leadscore.serving.webhooks.signing import verify

    assert scored["alerts"]["dead"] == 0
    first = len(hooks.requests)
    assert first == scored["alerts"]["delivered"] > 0  # the first night: leads assigned
    raw = yaml.safe_load((project / "leadscore.yaml").read_text())
    raw["data"]["as_of"] = (pd.Timestamp(scored["as_of"]) + pd.Timedelta(days=21)).isoformat()
    later = project / "later.yaml"
    later.write_text(yaml.safe_dump(raw))
    night = score_flow(str(later))
    assert night["alerts"]["delivered"] > 0 and night["alerts"]["dead"] == 0
    bodies = [json.loads(r.body) for r in hooks.requests[first:]]
    changes = [b for b in bodies if b["type"] in ("grade_up", "grade_down")]
    assert changes and all(b["batch_id"] == night["batch_id"] for b in bodies)
    for request in hooks.requests[first:]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert verify(request.body, headers["leadscore-signature"], SECRET) > 0
        assert headers["idempotency-key"] == json.loads(request.body)["id"]
    ids = [b["id"] for b in bodies]
    assert len(ids) == len(set(ids))
