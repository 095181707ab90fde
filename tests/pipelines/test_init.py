"""`leadscore init`: from an export to a commented config that loads and reads the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.pipelines.cli import app
from leadscore.pipelines.settings import DataConfig, load_settings
from leadscore.pipelines.sources import load_crm
from tests.conftest import shared_file

BANK = ("bank-marketing", "bank-additional-full.csv")


def _init(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["init", *map(str, args)])
    return result.exit_code, result.output


def _leads(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D")
    return pd.DataFrame(
        {
            "Lead Id": [f"L{i:04d}" for i in range(n)],
            "Created On": created.strftime("%d/%m/%Y"),
            "Country": rng.choice(["FR", "DE", "Bélgica"], n),
            "Visits": rng.integers(0, 20, n),
            "Revenue": rng.normal(10, 3, n).round(2),
            "Converted": rng.integers(0, 2, n),
        }
    )


def test_init_on_the_bank_export_writes_a_config_that_loads(tmp_path: Path):
    out = tmp_path / "bank.yaml"
    code, output = _init(shared_file(*BANK), "--out", out)
    assert code == 0, output
    settings = load_settings(out)
    data, attributes = settings.data, settings.features.attributes
    assert data.leads.csv.delimiter == ";" and data.leads.format == "csv"
    assert data.outcome is not None and data.outcome.column == "y"
    assert [str(v) for v in data.outcome.converted] == ["yes"]
    assert [str(v) for v in data.outcome.lost] == ["no"]
    assert data.lead_id_from_row and data.order == "rows" and data.activities is None
    assert {"age", "campaign", "euribor3m", "nr_employed"} <= set(attributes.numeric)
    assert {"job", "education", "poutcome", "contact"} <= set(attributes.categorical)
    assert data.column_mapping["nr.employed"] == "nr_employed"
    text = out.read_text()
    assert "# sensitive: [age, marital]" in text
    assert "  # market: {leads: 500, period_columns: [month, day_of_week]}" in text
    lines = output.splitlines()
    assert lines[0].startswith("leads: bank-additional-full.csv: 41,188 rows read (CSV")
    assert any(line.split()[:3] == ["(rows)", "order:", "rows"] for line in lines)
    assert lines[-1].startswith(f"wrote {out}")
    header = pd.read_csv(shared_file(*BANK), sep=";", nrows=0).columns
    shown = [line.split()[0] for line in lines[1:-1]]
    assert sorted(shown) == sorted([*header, "(none)", "(rows)"])  # one line per decision
    edited = out.with_name("edited.yaml")  # the README's one edit loads
    edited.write_text(text.replace("  # market: {", "  market: {"))
    assert load_settings(edited).features.market.period_columns == ["month", "day_of_week"]


def test_the_bank_leak_goes_under_exclude_with_why(tmp_path: Path):
    out = tmp_path / "bank.yaml"
    assert _init(shared_file(*BANK), "--out", out)[0] == 0
    settings = load_settings(out)
    assert "duration" in settings.data.exclude
    assert "duration" not in settings.features.attributes.names
    line = next(x for x in out.read_text().splitlines() if x.strip().startswith("- duration"))
    assert "#" in line  # its reason


def test_an_export_with_ids_day_first_dates_and_a_0_1_outcome_reads_as_proposed(
    tmp_path: Path,
):
    leads = _leads()
    export = tmp_path / "crm.csv"  # Excel on Windows: cp1252, ';', decimal comma
    leads.to_csv(export, sep=";", decimal=",", index=False, encoding="cp1252")
    out = tmp_path / "crm.yaml"
    code, output = _init(export, "--out", out)
    assert code == 0, output
    settings = load_settings(out)
    source = settings.data.leads
    assert (source.csv.delimiter, source.csv.encoding, source.csv.decimal) == (";", "cp1252", ",")
    assert source.date_format == "%d/%m/%Y"
    assert settings.data.column_mapping["Lead Id"] == "lead_id"
    assert settings.data.column_mapping["Created On"] == "created_at"
    assert settings.data.order == "time" and not settings.data.lead_id_from_row
    assert settings.features.attributes.numeric == ["Visits", "Revenue"]
    assert settings.features.attributes.categorical == ["Country"]
    crm = load_crm(settings)  # the config reads the file: every row clean
    assert len(crm.leads) == len(leads) and crm.quarantine.empty
    assert (crm.leads["status"] == "converted").sum() == leads["Converted"].sum()
    assert crm.leads["Revenue"].round(2).tolist() == leads["Revenue"].tolist()
    assert crm.leads["created_at"].min() == pd.Timestamp(
        pd.to_datetime(leads["Created On"], format="%d/%m/%Y").min(), tz="UTC"
    )


def test_a_note_written_after_the_outcome_is_excluded_with_why(tmp_path: Path):
    leads = _leads(400)
    words = {1: "won: signed the contract", 0: "lost to a competitor, closed"}
    leads["Sales Notes"] = [f"{words[c]} (call {i})" for i, c in enumerate(leads["Converted"])]
    leads.to_csv(tmp_path / "crm.csv", index=False)
    out = tmp_path / "crm.yaml"
    code, output = _init(tmp_path / "crm.csv", "--out", out)
    assert code == 0, output
    settings = load_settings(out)
    assert settings.data.exclude == ["Sales Notes"]
    assert "Sales Notes" not in settings.features.attributes.names
    line = next(x for x in output.splitlines() if x.lstrip().startswith("Sales Notes"))
    assert line.split()[2] == "exclude" and "likely leak" in line
    assert settings.features.attributes.numeric == ["Visits", "Revenue"]  # nothing else


def test_a_true_false_outcome_maps_too(tmp_path: Path):
    leads = _leads().rename(columns={"Converted": "is_won"})
    leads["is_won"] = leads["is_won"].astype(bool)
    export = tmp_path / "crm.parquet"
    leads.to_parquet(export)
    out = tmp_path / "crm.yaml"
    assert _init(export, "--out", out)[0] == 0
    settings = load_settings(out)
    assert settings.data.outcome.column == "is_won"
    crm = load_crm(settings)
    assert (crm.leads["status"] == "converted").sum() == leads["is_won"].sum()
    assert set(crm.leads["status"]) == {"converted", "lost"}


def test_an_activity_log_gives_types_with_starting_points(tmp_path: Path):
    leads = _leads().assign(
        Stage=lambda f: np.where(f["Converted"] == 1, "Closed Won", "Closed Lost"),
        Closed=lambda f: f["Created On"],
    )
    leads = leads.drop(columns="Converted")
    leads.to_csv(tmp_path / "leads.csv", index=False)
    log = pd.DataFrame(
        {
            "Lead": leads["Lead Id"].repeat(3).to_numpy(),
            "Type": ["Email Opened", "Demo Request", "Unsubscribed"] * len(leads),
            "Timestamp": "2024-01-01 10:00:00",
        }
    )
    log.to_csv(tmp_path / "log.csv", index=False)
    out = tmp_path / "crm.yaml"
    code, output = _init(tmp_path / "leads.csv", "--activities", tmp_path / "log.csv", "--out", out)
    assert code == 0, output
    settings = load_settings(out)
    types = settings.features.activity_types
    assert {k: (t.points, t.high_intent) for k, t in types.items()} == {
        "Email Opened": (1, False),
        "Demo Request": (15, True),
        "Unsubscribed": (-5, False),
    }
    mapping = settings.data.column_mapping
    assert (mapping["Lead"], mapping["Type"], mapping["Timestamp"]) == (
        "lead_id",
        "activity_type",
        "occurred_at",
    )
    assert settings.data.outcome.converted == ["Closed Won"]
    assert settings.data.column_mapping["Closed"] == "closed_at"
    assert "activities: log.csv: 180 rows read" in output


def test_an_outcomes_table_gives_its_key_date_and_status(tmp_path: Path):
    leads = _leads().drop(columns="Converted")
    leads.to_csv(tmp_path / "mql.csv", index=False)
    won = leads.sample(20, random_state=1)
    deals = pd.DataFrame({"mql_id": won["Lead Id"], "won_date": "26-02-2024 19:58"})
    deals.to_csv(tmp_path / "deals.csv", index=False)
    out = tmp_path / "crm.yaml"
    args = (tmp_path / "mql.csv", "--outcomes", tmp_path / "deals.csv", "--out", out)
    code, output = _init(*args)
    assert code == 0, output
    settings = load_settings(out)
    assert settings.data.outcome is None
    text = out.read_text()
    if "outcomes" in DataConfig.model_fields:
        table = settings.data.outcomes
        assert (table.key, table.closed_at, table.status) == ("mql_id", "won_date", None)
        assert table.date_format == "%d-%m-%Y %H:%M"
    else:
        assert "#   key: mql_id" in text and "#   status: null" in text
    assert "outcomes key" in output and "every row is a conversion" in output


def test_an_existing_config_is_kept_unless_forced_and_a_missing_file_is_one_line(
    tmp_path: Path,
):
    export = tmp_path / "crm.csv"
    _leads().to_csv(export, index=False)
    out = tmp_path / "crm.yaml"
    out.write_text("mine\n")
    code, output = _init(export, "--out", out)
    assert code == 2 and output == f"leadscore: {out} exists: give --force to replace it\n"
    assert out.read_text() == "mine\n"
    assert _init(export, "--out", out, "--force")[0] == 0
    assert load_settings(out).data.leads.path == export
    code, output = _init(tmp_path / "nope.csv", "--out", tmp_path / "x.yaml")
    assert code == 3 and output == f"leadscore: {tmp_path / 'nope.csv'}: no such file\n"
    (tmp_path / "header.csv").write_text("id;created;status\n")
    code, output = _init(tmp_path / "header.csv", "--out", tmp_path / "x.yaml")
    assert (
        code == 3 and output == f"leadscore: {tmp_path / 'header.csv'}: no rows (only a header)\n"
    )
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.slow
def test_init_one_edit_train(tmp_path: Path, prefect_harness):
    """The README's path on a small synthetic CRM: init, one edit, a trained model."""
    from leadscore.pipelines.summary import train_summary
    from leadscore.pipelines.train_flow import train_flow
    from leadscore.synthetic import generate_crm, write_crm

    write_crm(generate_crm(1500, 8), tmp_path / "crm")
    out = tmp_path / "crm.yaml"
    code, output = _init(
        tmp_path / "crm" / "leads.parquet",
        "--activities",
        tmp_path / "crm" / "activities.parquet",
        "--out",
        out,
    )
    assert code == 0, output
    raw = yaml.safe_load(out.read_text())
    assert raw["features"]["activity_types"]["demo_request"]["points"] == 15
    with out.open("a") as file:  # the one edit: a small CRM on purpose
        file.write("snapshots: {min_leads: 300, min_conversions: 30}\n")

    result = json.loads(json.dumps(train_summary(train_flow(str(out)))))

    assert result["split"] == "out_of_time"
    assert result["model"]["roc_auc"] > 0.75
    assert result["model"]["roc_auc"] > result["rules"]["roc_auc"]
