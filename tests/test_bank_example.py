"""The bank example (examples/bank-marketing.yaml) through the real train flow, out of time.

Issue #4 item 8 asks for ROC-AUC >= 0.76 on this split; the best found is the logistic
model at 0.744 (LightGBM 0.687, rules 0.668; the evidence is in the example's comments),
so the floor asserted here is what is reached, and the target stays open.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT, shared_file

REACHED_ROC_AUC = 0.74
"""Out-of-time ROC-AUC the example reaches (0.7437 measured); below it is a regression."""
MARGIN_OVER_RULES = 0.07
"""The model beat the rules by 0.076 ROC-AUC when measured."""


@pytest.mark.slow
def test_bank_example_beats_the_rules_out_of_time_with_the_logistic_model(
    tmp_path: Path, prefect_harness
):
    import mlflow

    from models.linear import LogisticLeadModel
    from pipelines.cli import train_summary
    from pipelines.flows import train_flow

    csv = shared_file("bank-marketing", "bank-additional-full.csv")
    raw = yaml.safe_load((ROOT / "examples" / "bank-marketing.yaml").read_text())
    assert raw["model"]["kind"] == "logistic"
    raw["data"]["leads"]["path"] = str(csv)
    for section in ("store", "output", "prefect"):
        raw.pop(section)  # defaults: inside tmp_path, beside the config
    raw["tracking"].update(tracking_uri="sqlite:///mlflow.db", artifact_location="mlartifacts")
    config = tmp_path / "bank.yaml"
    config.write_text(yaml.safe_dump(raw))

    result = json.loads(json.dumps(train_summary(train_flow(str(config)))))

    assert result["split"] == "out_of_time"
    assert (result["n_train"], result["n_valid"]) == (32950, 8238)
    assert "oracle" not in result  # no hidden truth for a real export
    model, rules = result["model"], result["rules"]
    assert model["roc_auc"] >= REACHED_ROC_AUC
    assert model["roc_auc"] >= rules["roc_auc"] + MARGIN_OVER_RULES
    assert model["pr_auc"] > rules["pr_auc"] and model["lift_top10"] > rules["lift_top10"]
    assert result["promoted"] is True

    # the registered artifact is the logistic model, loadable through skops, and explains
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = mlflow.MlflowClient().get_run(result["run_id"]).data.params
    assert params["leads_in"] == "41188" and params["leads_quarantined"] == "0"
    assert params["model_kind"] == "logistic"
    uri = f"models:/bank-marketing/{result['model_version']}"
    inputs = set(mlflow.models.get_model_info(uri).signature.inputs.input_names())
    assert {"nr_employed", "poutcome"} <= inputs and not inputs & {"duration", "month", "pdays"}
    loaded = mlflow.sklearn.load_model(uri)
    assert isinstance(loaded, LogisticLeadModel)
    assert loaded.coefficients["nr_employed"] < 0  # fewer employed -> more subscriptions
    sample = _sample_rows(csv, loaded.features)
    contributions, expected = loaded.contributions(sample)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + expected, loaded.raw_score(sample), atol=1e-9
    )


def _sample_rows(csv: Path, features: list[str]):
    """The newest contacts of the file, columns renamed as the example maps them."""
    import pandas as pd

    frame = pd.read_csv(csv, sep=";").tail(200)
    frame.columns = [c.replace(".", "_") for c in frame.columns]
    return frame[features]
