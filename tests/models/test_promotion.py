"""Gate, manual promotion and rollback against a real MLflow sqlite store.

Three small models are logged and registered through ``pipelines.tracking`` exactly as the
train flow does; the `champion` alias is then moved by the gate, by `leadscore promote`
and by `leadscore rollback` (the CLI commands, in-process), and every version is loaded
back by number to prove none was lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.models.config import ModelConfig, PromotionGate
from leadscore.models.factory import make_model
from tests.conftest import ROOT

N = 600


def _model(seed: int):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"employees": rng.normal(size=N), "visits": rng.normal(size=N)})
    y = (rng.uniform(size=N) < 1 / (1 + np.exp(-(X["visits"] * 2 - 1)))).astype(int)
    config = ModelConfig(lightgbm={"n_estimators": 5, "min_child_samples": 10})
    return make_model(config, [], ["employees", "visits"]).fit(X, y.to_numpy()), X


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder with its own sqlite store and three registered versions."""
    import mlflow

    from leadscore.pipelines import tracking
    from leadscore.pipelines.settings import load_settings

    folder = tmp_path_factory.mktemp("registry")
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    (folder / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    settings = load_settings(folder / "leadscore.yaml")
    tracking.configure(settings.tracking)
    for seed in (1, 2, 3):
        model, X = _model(seed)
        with mlflow.start_run():
            tracking.log_model(model, X, settings.tracking.model_name)
    return folder


@pytest.fixture(scope="module")
def client(project: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _cli(project: Path, *args: str) -> dict:
    from leadscore.pipelines.cli import app

    result = CliRunner().invoke(app, [*args, "--config", str(project / "leadscore.yaml")])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _champion(client) -> str:
    return str(client.get_model_version_by_alias("leadscore", "champion").version)


def test_gate_refuses_worse_or_miscalibrated_models():
    from leadscore.pipelines.tracking import gate

    config = PromotionGate(
        min_margin_over_rules=0.05, min_margin_over_champion=0.0, max_calibration_error=0.02
    )
    assert gate(0.80, 0.70, 0.79, config, calibration_error=0.01).promoted
    below_rules = gate(0.74, 0.70, None, config, calibration_error=0.01)
    assert not below_rules.promoted and "rules" in below_rules.reason
    below_champion = gate(0.78, 0.70, 0.79, config, calibration_error=0.01)
    assert not below_champion.promoted and "champion (0.7900)" in below_champion.reason
    miscalibrated = gate(0.80, 0.70, 0.79, config, calibration_error=0.05)
    assert not miscalibrated.promoted and "(ECE) 0.0500 is above" in miscalibrated.reason
    unchecked = PromotionGate(max_calibration_error=None)
    assert gate(0.80, 0.70, None, unchecked, calibration_error=0.5).promoted


def test_gate_judged_on_intervals_refuses_a_margin_within_noise():
    from leadscore.pipelines.tracking import gate

    values = {"min_margin_over_rules": 0.05, "min_margin_over_champion": 0.0}
    on_value, on_interval = PromotionGate(**values), PromotionGate(**values, judged_on="interval")
    noisy = {"rules": (0.08, 0.12), "champion": (-0.005, 0.025)}
    # +0.01 over the champion on the window, but the interval reaches below 0
    passed = gate(0.80, 0.70, 0.79, on_value, intervals=noisy)
    assert passed.promoted
    assert "over rules +0.0800 to +0.1200; over champion -0.0050 to +0.0250" in passed.reason
    refused = gate(0.80, 0.70, 0.79, on_interval, intervals=noisy)
    assert not refused.promoted
    assert refused.reason == (
        "roc_auc 0.8000 does not beat the champion (0.7900) by more than 0.0 beyond "
        "resampling noise (difference -0.0050 to +0.0250)"
    )
    clear = {"rules": (0.08, 0.12), "champion": (0.002, 0.02)}
    assert gate(0.80, 0.70, 0.79, on_interval, intervals=clear).promoted
    # the rules' margin is judged the same way: 0.05 needed beyond noise, 0.04 at worst
    near_rules = {"rules": (0.04, 0.16), "champion": (0.002, 0.02)}
    assert "the rules (0.7000)" in gate(0.80, 0.70, 0.79, on_interval, intervals=near_rules).reason
    # no interval (a champion that cannot score these features): its value decides
    assert gate(0.80, 0.70, float("-inf"), on_interval, intervals={"rules": (0.08, 0.12)}).promoted


def test_gate_on_intervals_needs_roc_auc():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"judged_on: interval needs promotion\.metric"):
        PromotionGate(metric="pr_auc", judged_on="interval")


def test_promote_and_rollback_move_the_alias_with_reasons(project: Path, client):
    from leadscore.pipelines import tracking
    from leadscore.pipelines.settings import load_settings

    settings = load_settings(project / "leadscore.yaml")
    # version 1 wins the gate, as after a first `leadscore train`
    tracking.promote(
        client, settings.tracking, "1", tracking.gate(0.8, 0.7, None, settings.promotion)
    )
    assert _champion(client) == "1"

    out = _cli(project, "promote", "--version", "3", "--reason", "hotfix of the fit features")
    assert out == {"champion": "3", "previous": "1", "history": ["1", "3"]}
    assert _champion(client) == "3"
    tags = client.get_model_version("leadscore", "3").tags
    assert tags["champion_reason"] == "promote: hotfix of the fit features"
    assert tags["promotion"] == "manual: hotfix of the fit features"
    assert (
        "promote to version 3" in client.get_model_version("leadscore", "1").tags["champion_until"]
    )

    _cli(project, "promote", "--version", "2", "--reason", "try 2")
    assert _champion(client) == "2"

    back = _cli(project, "rollback", "--reason", "2 drops the A grades")
    assert back == {"champion": "3", "rolled_back": "2", "history": ["1", "3"]}
    assert client.get_model_version("leadscore", "2").tags["rolled_back"] == "2 drops the A grades"
    assert client.get_model_version("leadscore", "3").tags["champion_reason"].startswith("rollback")

    again = _cli(project, "rollback", "--reason", "back to the first")
    assert again == {"champion": "1", "rolled_back": "3", "history": ["1"]}
    assert _champion(client) == "1"

    # nothing left to roll back to: a clear refusal, and the alias stays where it is
    from leadscore.pipelines.cli import app

    refused = CliRunner().invoke(app, ["rollback", "--config", str(project / "leadscore.yaml")])
    assert refused.exit_code == 1 and "no previous" in refused.output
    assert _champion(client) == "1"

    # a version that does not exist is refused too
    missing = CliRunner().invoke(
        app, ["promote", "--version", "99", "--config", str(project / "leadscore.yaml")]
    )
    assert missing.exit_code == 1
    assert _champion(client) == "1"

    # every version stays registered and loadable, and they are different models
    X = _model(0)[1].head(20)
    scores = [tracking.load_version(client, "leadscore", v).predict_proba(X)[:, 1] for v in "123"]
    assert not np.allclose(scores[0], scores[1]) and not np.allclose(scores[1], scores[2])
    model, version = tracking.load_champion(settings.tracking)
    assert version == "1" and np.allclose(model.predict_proba(X)[:, 1], scores[0])
