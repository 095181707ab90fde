"""A two-table export end to end: the synthetic CRM written as leads + deals + accounts
(+ the activity log), trained with the account features and scored through the nightly
partitions, the same feature set on both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from leadscore.features.builder import build_features, entities_at
from leadscore.models import recipe
from leadscore.models.base import registry_of
from leadscore.models.scoring import partition_features
from leadscore.pipelines.partitioned import stream_crm
from leadscore.pipelines.passes import PartitionRun, score_and_spill
from leadscore.pipelines.settings import load_settings
from leadscore.pipelines.sources import load_crm
from leadscore.synthetic import generate_crm
from tests.conftest import ROOT


def _write_export(folder: Path) -> Path:
    crm = generate_crm(1500, seed=3)
    leads = crm.leads.copy()
    rng = np.random.default_rng(0)
    leads["account_id"] = [f"AC{i // 3:04d}" for i in range(len(leads))]  # 3 contacts each
    closed = leads[leads["status"] != "open"]
    deals = pd.DataFrame(
        {
            "lead": closed["lead_id"],
            "outcome": closed["status"].map({"converted": "Won", "lost": "Lost"}),
            "closed_on": closed["closed_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    accounts = pd.DataFrame({"account_id": sorted(set(leads["account_id"]))})
    accounts["tier"] = rng.choice(["gold", "silver"], size=len(accounts))
    leads.drop(columns=["status", "closed_at"]).to_csv(folder / "leads.csv", index=False)
    deals.to_csv(folder / "deals.csv", index=False)
    accounts.to_csv(folder / "accounts.csv", index=False)
    crm.activities.to_parquet(folder / "activities.parquet")
    config = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    config["data"].update(
        leads={"path": "leads.csv"},
        activities={"path": "activities.parquet"},
        truth=None,
        outcomes={
            "path": "deals.csv",
            "key": "lead",
            "closed_at": "closed_on",
            "status": {"column": "outcome", "converted": ["won"], "lost": ["lost"]},
        },
        joins=[{"path": "accounts.csv", "name": "account", "key": "account_id"}],
    )
    config["features"]["attributes"]["categorical"].append("account_tier")
    config["snapshots"].update(min_leads=100, min_conversions=20)
    path = folder / "leadscore.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_a_two_table_export_trains_and_scores_with_account_features(tmp_path: Path):
    settings = load_settings(_write_export(tmp_path))
    crm = load_crm(settings)
    assert len(crm.quarantine) == 0 and len(crm.leads) == 1500
    assert crm.leads["status"].value_counts().to_dict() == {
        "lost": 1116,
        "open": 228,
        "converted": 156,
    }
    trained = recipe.train(crm.leads, crm.activities, crm.end, settings, crm.accounts)
    names = trained.data.registry.names
    assert {"account_tier", "account_contacts", "account_engagement"} <= set(names)
    data = trained.data
    probability = trained.model.predict_proba(data.X_valid)[:, 1]
    assert roc_auc_score(data.y_valid, probability) > 0.7

    # scoring: the nightly partitions give the open leads the very features training would
    streamed = stream_crm(settings, tmp_path)
    part = streamed.parts[0].load()
    scored = partition_features(part, crm.end, settings.features, accounts=streamed.accounts)
    open_leads = crm.leads[crm.leads["status"] == "open"]
    entities = entities_at(open_leads, crm.end)
    expected = build_features(
        crm.leads, crm.activities, entities, settings.features, accounts=crm.accounts
    )
    key = ["lead_id"]
    pd.testing.assert_frame_equal(
        scored[names + key].sort_values(key).reset_index(drop=True),
        expected[names + key].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    assert (scored["account_contacts"] > 0).all()  # 3 contacts an account, created before
    rules = recipe.scoring_rules(settings.rules, settings.features)
    run = PartitionRun(crm.end, trained.model, rules, settings, tmp_path, None, streamed.accounts)
    spilled = score_and_spill(part, 0, run)
    assert registry_of(trained.model).names == names
    assert len(spilled) == 228
