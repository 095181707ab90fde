"""``data.display``: the export's name, company, e-mail and record id columns pass through
reading untouched (as text, under the cell rules), never become features, and reach the
score row beside the scores (whole-file load and the nightly partitions)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.features.builder import build_features, entities_at
from leadscore.features.facts import lead_facts
from leadscore.pipelines.batch import with_facts
from leadscore.pipelines.partitioned import stream_crm
from leadscore.pipelines.settings import Settings
from leadscore.pipelines.sources import load_crm
from tests.conftest import ROOT

DISPLAY = {"name": "Contact", "company": "Firm", "email": "E-mail", "record_id": "crm_ref"}


def _export(path: Path) -> Path:
    n = 12
    pd.DataFrame(
        {
            "lead_id": [f"F{i}" for i in range(n)],
            "status": ["open"] * 6 + ["converted", "lost"] * 3,
            "industry": ["software", "retail"] * 6,
            "employees": np.arange(1, n + 1) * 10,
            "Contact": ["Zoë Ångström", "x" * 2000, *[f"Person {i}" for i in range(2, n)]],
            "Firm": ["Acme, Inc.", *["Ümlaut GmbH"] * (n - 1)],
            "E-mail": [f"p{i}@example.com" for i in range(n)],
            "CRM Ref": [f"{i:05d}" for i in range(n)],  # leading zeros are part of the id
        }
    ).to_csv(path, index=False)
    return path


def _settings(csv: Path, **data: object) -> Settings:
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"] = {
        "leads": {"path": str(csv)},
        "activities": None,
        "order": "none",
        "column_mapping": {"CRM Ref": "crm_ref"},
        "display": DISPLAY,
        **data,
    }
    raw["features"]["attributes"] = {"categorical": ["industry"], "numeric": ["employees"]}
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
    raw["rules"]["penalties"] = []
    return Settings.model_validate(raw)


def test_display_columns_pass_through_and_never_become_features(tmp_path: Path):
    settings = _settings(_export(tmp_path / "leads.csv"))
    crm = load_crm(settings)
    leads = crm.leads.set_index("lead_id")
    assert leads.loc["F0", "Contact"] == "Zoë Ångström" and leads.loc["F0", "Firm"] == "Acme, Inc."
    assert leads.loc["F3", "crm_ref"] == "00003"  # read as written, not as the number 3
    # an oversized display cell quarantines its row, named, as an attribute's would
    assert "F1" not in leads.index
    reason = crm.quarantine.set_index("lead_id").loc["F1", "reason"]
    assert "Contact" in reason and "1000" in reason
    features = build_features(crm.leads, None, entities_at(crm.leads, crm.end), settings.features)
    assert not {*DISPLAY.values(), "crm_ref"} & set(features.columns)


def test_the_nightly_partitions_carry_them_into_the_score_row(tmp_path: Path):
    settings = _settings(_export(tmp_path / "leads.csv"))
    streamed = stream_crm(settings, tmp_path)
    part = streamed.parts[0].load()
    scores = pd.DataFrame({"lead_id": part.leads["lead_id"].iloc[::-1].to_numpy(), "score": 1})
    row = with_facts(scores, part, streamed.end, settings.features, settings.data.display.columns())
    row = row.set_index("lead_id")
    assert row.loc["F0", ["name", "company", "email", "record_id"]].tolist() == [
        "Zoë Ångström",
        "Acme, Inc.",
        "p0@example.com",
        "00000",
    ]
    assert row.loc["F5", "attributes"] == '{"employees":60,"industry":"retail"}'
    assert row.loc["F5", "timeline"] == "[]" and pd.isna(row.loc["F5", "last_activity"])
    assert sorted(row.index) == [f"F{i}" for i in (0, 2, 3, 4, 5)]  # F1 quarantined


def test_a_display_column_the_export_lacks_is_empty_and_logged(tmp_path: Path, caplog):
    csv = _export(tmp_path / "leads.csv")
    settings = _settings(csv, display={**DISPLAY, "email": "Phone"})
    with caplog.at_level(logging.INFO):
        crm = load_crm(settings)  # still scores: display columns are for people
    assert "data.display column(s) ['Phone'] missing, shown empty" in caplog.text
    facts = lead_facts(crm.leads, None, crm.end, settings.features, DISPLAY | {"email": "Phone"})
    assert facts["email"].isna().all() and facts["name"].notna().all()


def test_a_display_column_dropped_on_load_is_a_settings_error(tmp_path: Path):
    with pytest.raises(ValueError, match=r"data\.display names a column data\.exclude"):
        _settings(_export(tmp_path / "leads.csv"), exclude=["Firm"])
