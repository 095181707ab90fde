"""Sources as users have them: a SQL database through a SQLAlchemy URL, European CSVs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import create_engine

from leadscore.pipelines.settings import Settings
from leadscore.pipelines.sources import load_crm
from leadscore.synthetic import generate_crm
from tests.conftest import ROOT


def _raw(data: dict, attributes: dict | None = None) -> Settings:
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"] = data
    if attributes is not None:  # an export with only these columns: a missing one stops
        raw["features"]["attributes"] = attributes
        raw.pop("routing")  # the demo team routes by country and segment
        raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
        raw["rules"]["penalties"] = []
    return Settings.model_validate(raw)


def test_leads_and_activities_from_a_sql_database(tmp_path: Path):
    crm = generate_crm(300, seed=8)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = create_engine(url)
    # a CRM's own naming, mapped onto the contract in config; timestamps as ISO text
    leads = crm.leads.rename(columns={"lead_id": "Id", "status": "Stage"})
    leads["Stage"] = leads["Stage"].map(
        {"open": "Working", "converted": "Closed Won", "lost": "Closed Lost"}
    )
    for frame, table in (
        (leads, "leads"),
        (crm.activities.rename(columns={"lead_id": "Id"}), "activities"),
    ):
        out = frame.copy()
        for column in out.select_dtypes("datetimetz"):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        out.to_sql(table, engine, index=False)
    engine.dispose()
    settings = _raw(
        {
            "leads": {"sql": {"url": url, "query": "SELECT * FROM leads"}},
            "activities": {"sql": {"url": url, "query": "SELECT * FROM activities"}},
            "column_mapping": {"Id": "lead_id"},
            "outcome": {
                "column": "Stage",
                "converted": ["Closed Won"],
                "lost": ["Closed Lost"],
                "open": ["Working"],
            },
        }
    )
    loaded = load_crm(settings)
    assert len(loaded.leads) == 300 and len(loaded.quarantine) == 0
    assert len(loaded.activities) == len(crm.activities)
    assert loaded.leads["status"].value_counts().to_dict() == (
        crm.leads["status"].value_counts().to_dict()
    )
    first = loaded.leads.set_index("lead_id").loc["L0000001", "created_at"]
    assert first == crm.leads.set_index("lead_id").loc["L0000001", "created_at"]
    assert str(loaded.leads["created_at"].dtype) == "datetime64[ns, UTC]"


def test_a_european_csv_with_semicolons_and_decimal_commas(tmp_path: Path):
    csv = tmp_path / "export.csv"
    csv.write_text(
        "Lead;Created;Outcome;Closed;industry;employees\n"
        "007;01.02.2026 10:00;ja;03.03.2026 12:00;software;1.250,5\n"
        "008;02.02.2026 11:30;nein;04.03.2026 09:00;retail;12,0\n",
        encoding="cp1252",
    )
    settings = _raw(
        {
            "leads": {
                "path": str(csv),
                "csv": {"delimiter": ";", "decimal": ",", "thousands": ".", "encoding": "cp1252"},
                "date_format": "%d.%m.%Y %H:%M",
            },
            "column_mapping": {"Lead": "lead_id", "Created": "created_at", "Closed": "closed_at"},
            "outcome": {"column": "Outcome", "converted": ["ja"], "lost": ["nein"]},
        },
        {"categorical": ["industry"], "numeric": ["employees"]},
    )
    loaded = load_crm(settings).leads.set_index("lead_id")
    assert loaded.index.tolist() == ["007", "008"]  # ids stay text: leading zeros kept
    assert loaded.loc["007", "employees"] == 1250.5
    assert loaded.loc["007", "status"] == "converted"
    assert loaded.loc["008", "created_at"] == pd.Timestamp("2026-02-02T11:30", tz="UTC")
