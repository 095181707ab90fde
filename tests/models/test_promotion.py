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

from leadscore.models.config import ModelConfig
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


def test_promote_and_rollback_move_the_alias_with_reasons(project: Path, client):
    from leadscore.models.gate import gate
    from leadscore.pipelines import tracking
    from leadscore.pipelines.settings import load_settings

    settings = load_settings(project / "leadscore.yaml")
    # version 1 wins the gate, as after a first `leadscore train`
    tracking.promote(client, settings.tracking, "1", gate(0.8, 0.7, None, settings.promotion))
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
    assert refused.exit_code == 5 and "no previous" in refused.output  # ExitCode.REGISTRY
    assert _champion(client) == "1"

    # a version that does not exist is refused too
    missing = CliRunner().invoke(
        app, ["promote", "--version", "99", "--config", str(project / "leadscore.yaml")]
    )
    assert missing.exit_code == 5  # ExitCode.REGISTRY
    assert _champion(client) == "1"

    # every version stays registered and loadable, and they are different models
    X = _model(0)[1].head(20)
    scores = [tracking.load_version(client, "leadscore", v).predict_proba(X)[:, 1] for v in "123"]
    assert not np.allclose(scores[0], scores[1]) and not np.allclose(scores[1], scores[2])
    model, version = tracking.load_champion(settings.tracking)
    assert version == "1" and np.allclose(model.predict_proba(X)[:, 1], scores[0])


def test_a_model_with_its_registry_round_trips_through_the_mlflow_store(project: Path, client):
    """skops saves and loads the registry and input columns the model carries (trusted
    types in ``tracking.TRUSTED_TYPES``), and the loaded model scores identically."""
    import mlflow

    from leadscore.features.config import AttributeConfig, FeatureConfig
    from leadscore.features.registry import build_registry
    from leadscore.models import training
    from leadscore.pipelines import tracking
    from leadscore.pipelines.settings import load_settings

    settings = load_settings(project / "leadscore.yaml")
    tracking.configure(settings.tracking)
    _, X = _model(5)
    y = (X["visits"] > 0.5).astype(int).to_numpy()
    features = FeatureConfig(
        attributes=AttributeConfig(categorical=[], numeric=["employees", "visits"])
    )
    registry = build_registry(features, behaviour=False)
    config = ModelConfig(lightgbm={"n_estimators": 5, "min_child_samples": 10})
    model = training.fit_model(X, y, registry, config)
    with mlflow.start_run():
        version = tracking.log_model(model, X, "roundtrip")
    loaded = tracking.load_version(client, "roundtrip", version)
    assert loaded.input_columns_ == ["employees", "visits"]
    assert loaded.registry_.names == registry.names
    assert [spec for spec in loaded.registry_] == [spec for spec in registry]
    # the sub-scores' reference quantiles travel with the model
    assert set(loaded.subscore_quantiles_) == {"fit"}
    np.testing.assert_array_equal(
        loaded.subscore_quantiles_["fit"], model.subscore_quantiles_["fit"]
    )
    assert np.array_equal(loaded.predict_proba(X)[:, 1], model.predict_proba(X)[:, 1])
