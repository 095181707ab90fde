"""The bank example (examples/bank-marketing.yaml) through the real flows, out of time.

Issue #4 item 8 asks for ROC-AUC >= 0.76 on this split. The logistic model with the
recent conversion rate (features.market, per contact day) reaches 0.767 (without it 0.744;
LightGBM 0.687; rules 0.668): the evidence is in the example's comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT, shared_file

TARGET_ROC_AUC = 0.76
"""Issue #4's out-of-time target (0.7665 measured)."""
MARGIN_OVER_RULES = 0.09
"""The model beat the rules by 0.099 ROC-AUC when measured."""


def _config(folder: Path, csv: Path, **data: object) -> Path:
    """The example's config with its data at ``csv`` and every output inside ``folder``."""
    raw = yaml.safe_load((ROOT / "examples" / "bank-marketing.yaml").read_text())
    raw["data"]["leads"]["path"] = str(csv)
    raw["data"].update(data)
    for section in ("store", "output", "prefect"):
        raw.pop(section)  # defaults: inside folder, beside the config
    raw["tracking"].update(tracking_uri="sqlite:///mlflow.db", artifact_location="mlartifacts")
    config = folder / "bank.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


@pytest.mark.slow
def test_bank_example_beats_the_rules_out_of_time_with_the_logistic_model(
    tmp_path: Path, prefect_harness
):
    import mlflow

    from leadscore.models.linear import LogisticLeadModel
    from leadscore.pipelines.summary import train_summary
    from leadscore.pipelines.train_flow import train_flow

    csv = shared_file("bank-marketing", "bank-additional-full.csv")
    raw = yaml.safe_load((ROOT / "examples" / "bank-marketing.yaml").read_text())
    assert raw["model"]["kind"] == "auto"  # chosen on evidence, not pinned
    config = _config(tmp_path, csv)

    result = json.loads(json.dumps(train_summary(train_flow(str(config)))))

    assert result["split"] == "out_of_time"
    assert (result["n_train"], result["n_valid"]) == (32950, 8238)
    assert "oracle" not in result  # no hidden truth for a real export
    model, rules = result["model"], result["rules"]
    assert model["roc_auc"] >= TARGET_ROC_AUC
    # the example's declared target: judged on the value, its interval one row per contact
    (target,) = result["targets"]
    assert (target["target"], target["rule"], target["met"]) == ("roc_auc", ">= 0.76", True)
    assert target["value"] == model["roc_auc"]
    low, high = target["interval"]
    assert low < target["value"] < high and 0.01 < high - low < 0.04  # 8k contacts
    assert model["roc_auc"] >= rules["roc_auc"] + MARGIN_OVER_RULES
    assert model["pr_auc"] > rules["pr_auc"] and model["lift_top10"] > rules["lift_top10"]
    assert result["promoted"] is True
    report = Path(result["report"]).read_text()
    assert "row 32951 of 41188 (no dates: file order)" in report
    assert (
        "Both scored on the same validation rows, the last 20% of rows in file order (the file "
        "has no dates; out of time as far as the file lists leads in time order)" in report
    )
    assert "recent_conversion_rate" in report and "market" in report  # its own family

    # the registered artifact is the logistic model, loadable through skops, and explains
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = mlflow.MlflowClient().get_run(result["run_id"]).data.params
    assert params["leads_in"] == "41188" and params["leads_quarantined"] == "0"
    assert (params["model_kind"], params["model_chosen"]) == ("auto", "logistic")
    assert result["model_family"].startswith("logistic")
    uri = f"models:/bank-marketing/{result['model_version']}"
    inputs = set(mlflow.models.get_model_info(uri).signature.inputs.input_names())
    assert {"recent_conversion_rate", "poutcome"} <= inputs
    assert not inputs & {"duration", "month", "pdays", "nr_employed"}
    loaded = mlflow.sklearn.load_model(uri)
    assert isinstance(loaded, LogisticLeadModel)
    assert loaded.coefficients["recent_conversion_rate"] > 0  # a warmer market, likelier
    sample = _sample_rows(csv, loaded.features)
    contributions, expected = loaded.contributions(sample)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + expected, loaded.raw_score(sample), atol=1e-9
    )


@pytest.mark.slow
def test_open_contacts_are_scored_with_the_rate_of_the_days_before(tmp_path: Path, prefect_harness):
    """The newest 300 contacts still open: the score flow (which reads the leads table
    apart from the partitions it scores) publishes for each exactly the probability of
    the champion on features built from the whole table, the recent rate included."""
    import mlflow
    import pandas as pd

    from leadscore.features.builder import build_features, entities_at
    from leadscore.features.market import RECENT_CONVERSION_RATE
    from leadscore.pipelines.score_flow import score_flow
    from leadscore.pipelines.settings import load_settings
    from leadscore.pipelines.sources import load_crm
    from leadscore.pipelines.train_flow import train_flow

    frame = pd.read_csv(shared_file("bank-marketing", "bank-additional-full.csv"), sep=";")
    frame.loc[frame.index[-300:], "y"] = "pending"
    csv = tmp_path / "bank-open.csv"
    frame.to_csv(csv, sep=";", index=False)
    outcome = {"column": "y", "converted": ["yes"], "lost": ["no"], "open": ["pending"]}
    config = _config(tmp_path, csv, outcome=outcome)
    train_flow(str(config))
    result = score_flow(str(config))

    assert (result["scored"], result["closed"], result["quarantined"]) == (300, 40888, 0)
    published = pd.read_csv(result["csv"]).set_index("lead_id")
    settings = load_settings(config)
    crm = load_crm(settings)
    open_leads = crm.leads[crm.leads["status"] == "open"]
    X = build_features(
        crm.leads, None, entities_at(open_leads, pd.Timestamp(result["as_of"])), settings.features
    )
    mlflow.set_tracking_uri(settings.tracking.tracking_uri)
    champion = mlflow.sklearn.load_model("models:/bank-marketing@champion")
    expected = pd.Series(champion.calibrated(champion.raw_score(X)), index=X["lead_id"])
    from leadscore.serving.store import ScoreStore

    store = ScoreStore(settings.store)
    stored = store.read_batch().set_index("lead_id")["probability"]
    store.close()
    np.testing.assert_allclose(stored.loc[expected.index], expected.to_numpy(), atol=1e-9)
    # the CSV a CRM imports: the same probabilities, rounded to 4 places
    np.testing.assert_array_equal(
        published.loc[expected.index, "probability"], stored.loc[expected.index].round(4)
    )
    rate = X[RECENT_CONVERSION_RATE]
    assert rate.notna().all() and rate.between(0.2, 0.8).all()  # late 2010: a warm market


def _sample_rows(csv: Path, features: list[str]):
    """The newest contacts of the file, columns renamed as the example maps them, with a
    spread of recent conversion rates (additivity holds for any value)."""
    import pandas as pd

    frame = pd.read_csv(csv, sep=";").tail(200)
    frame.columns = [c.replace(".", "_") for c in frame.columns]
    frame["recent_conversion_rate"] = np.linspace(0.02, 0.6, len(frame))
    return frame[features]
