"""`leadscore serve --workers N` runs each worker's app from an import string
(pipelines/cli.py ``serve_app``), built from the same config as one process's."""

from __future__ import annotations

import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadscore.pipelines.cli import app as cli
from leadscore.pipelines.cli import default_workers, serve_app
from leadscore.pipelines.settings import CONFIG_ENV
from leadscore.serving.api import PAGE_TOKENS_ENV, TOKENS_ENV
from tests.serving.test_api import _config_with_store, two_batches


def test_serve_runs_workers_through_the_app_factory(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKENS_ENV, "w-token")
    monkeypatch.delenv(PAGE_TOKENS_ENV, raising=False)
    monkeypatch.setenv(CONFIG_ENV, "unset")  # restored after: `serve` sets it
    monkeypatch.delenv(CONFIG_ENV)
    url = f"sqlite:///{tmp_path}/s.db"
    store, (_, second) = two_batches(url)
    store.close()
    config = _config_with_store(tmp_path, url)
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))

    one = CliRunner().invoke(cli, ["serve", "--port", "8123", "-c", str(config)])
    assert one.exit_code == 0, one.output
    two = CliRunner().invoke(cli, ["serve", "--workers", "2", "-c", str(config)])
    assert two.exit_code == 0, two.output
    (app, kw_one), (target, kw_two) = calls
    assert not isinstance(app, str)  # one process: the app itself
    assert default_workers() == 1 and "workers" not in kw_one and kw_one["port"] == 8123
    assert target == "leadscore.pipelines.cli:serve_app"
    assert kw_two["factory"] is True and kw_two["workers"] == 2
    assert {kw_one["loop"], kw_one["http"]} == {"auto"}

    # a worker's app: the config `serve` named, through $LEADSCORE_CONFIG
    with TestClient(serve_app()) as client:
        assert client.get("/healthz").json()["current_batch"] == second.batch_id
        lead = client.get("/v1/leads/a", headers={"Authorization": "Bearer w-token"})
        assert lead.status_code == 200 and lead.json()["lead_id"] == "a"
        assert client.get("/v1/leads/a").status_code == 401
