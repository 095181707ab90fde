"""prefect.yaml declares schedules that Prefect accepts, pointing at real flows."""

from __future__ import annotations

import importlib

import yaml
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule

from tests.conftest import ROOT


def _deployments() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def test_nightly_scoring_and_weekly_retraining_are_declared():
    deployments = _deployments()
    assert set(deployments) == {"nightly-scoring", "weekly-retraining", "nightly-monitoring"}
    nightly = CronSchedule(**deployments["nightly-scoring"]["schedules"][0])
    weekly = CronSchedule(**deployments["weekly-retraining"]["schedules"][0])
    monitoring = CronSchedule(**deployments["nightly-monitoring"]["schedules"][0])
    assert nightly.cron == "0 2 * * *"
    assert weekly.cron.endswith("* * 0")
    assert monitoring.cron == "0 3 * * *"  # an hour after scoring: tonight's batch is in


def test_entrypoints_are_prefect_flows():
    for deployment in _deployments().values():
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module("leadscore." + path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        assert isinstance(flow, Flow)
        assert set(deployment["parameters"]) <= set(flow.parameters.properties)
