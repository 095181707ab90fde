"""``GET /v1/monitor`` (serving/monitor.py) over a real SQLite store filled through
``save_monitor`` with a hand-built monitor run (tests/models/monitor_sample.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from leadscore.serving.api import ApiConfig, create_app
from leadscore.serving.monitor import NEVER_RAN
from leadscore.serving.store import ScoreStore, StoreConfig
from tests.models.monitor_sample import sample_result

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def store(tmp_path):
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path}/scores.db"))
    store.create()
    yield store
    store.close()


@pytest.fixture
def client(store):
    app = create_app(store.config, ApiConfig(tokens=["t"], page_tokens=["rep"]), store=store)
    with TestClient(app) as c:
        yield c


def test_a_token_is_needed_and_a_page_token_is_not_enough(client):
    assert client.get("/v1/monitor").status_code == 401
    assert client.get("/v1/monitor", headers={"Authorization": "Bearer rep"}).status_code == 401
    assert client.get("/v1/monitor", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_before_the_first_run_the_answer_says_so(client):
    response = client.get("/v1/monitor", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "ran": False,
        "message": NEVER_RAN,
        "latest": None,
        "batches": [],
        "drift": None,
    }


def test_the_latest_run_its_batches_and_the_newest_drift(client, store):
    store.save_monitor(sample_result("none", ran="2026-03-19 03:00"), mlflow_run_id=None)
    store.save_monitor(sample_result("retrain"), mlflow_run_id="mlflow-run-1")
    body = client.get("/v1/monitor", headers=AUTH).json()
    assert body["ran"] is True and body["message"] is None
    latest = body["latest"]
    assert latest["action"] == "retrain"
    assert latest["text"] == "retrain: PSI of lead_source 0.31 > 0.2"
    assert latest["reasons"] == ["PSI of lead_source 0.31 > 0.2"]
    assert latest["champion_version"] == "3" and latest["horizon_days"] == 30
    assert latest["mlflow_run_id"] == "mlflow-run-1"
    assert latest["created_at"].startswith("2026-03-20T03:00:00")
    assert latest["now"].startswith("2026-03-20T00:00:00")

    batches = body["batches"]
    assert [b["batch_id"] for b in batches] == ["b1", "b2", "b3", "b4"]
    first, newest = batches[0], batches[-1]
    assert first["as_of"].startswith("2026-01-05")
    assert (first["n_leads"], first["n_known"], first["conversions"]) == (1000, 980, 60)
    assert first["mature"] is True and first["status"] == "mature"
    assert first["metrics"]["roc_auc"] == pytest.approx(0.812)
    assert first["metrics"]["roc_auc_rules"] == pytest.approx(0.731)
    assert first["metrics"]["capture_top_10_rules"] == pytest.approx(0.28)
    assert newest["mature"] is False and newest["observed_days"] == 12
    assert newest["status"] == "still maturing (12 of 30 days)"
    assert newest["metrics"]["roc_auc"] is None
    assert newest["metrics"]["estimated_roc_auc"] == pytest.approx(0.787)
    assert newest["metrics"]["max_feature_psi"] == pytest.approx(0.31)
    assert newest["quarantine"] == {"bad email": 20, "missing lead_id": 11}
    assert "quarantine" not in newest["metrics"] and "run_id" not in newest["metrics"]

    drift = body["drift"]
    assert drift["batch_id"] == "b4" and drift["as_of"].startswith("2026-03-08")
    features = drift["features"]
    assert [f["feature"] for f in features] == [
        "lead_source", "employees", "prediction", "pricing_views",
    ]  # fmt: skip
    assert features[0]["psi"] == pytest.approx(0.31)
    assert features[0]["unseen_now"] == pytest.approx(0.004)
    assert features[0]["top_shift"] == "lead_source=partner 2.0% -> 21.3%"
    assert features[-1]["psi"] is None and features[-1]["missing_now"] == pytest.approx(0.4)
