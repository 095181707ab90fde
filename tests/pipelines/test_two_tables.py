"""data.outcomes and data.joins: small CSV exports through the settings loader and the
loaders (whole and nightly), with exact statuses, dates, attributes and quarantine rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadscore.features.validation import ContractError
from leadscore.pipelines.partitioned import stream_crm
from leadscore.pipelines.settings import SettingsError, load_settings
from leadscore.pipelines.sources import load_crm

LEADS = """id,created,account_id,channel
L1,2024-01-01,A1,web
L2,2024-01-05,A1,web
L3,2024-01-10,A2,ads
L4,2024-02-01,,ads
L5,2024-02-03,A9,web
L6,2024-02-04,A3,web
L7,2024-02-05,A2,web
"""
DEALS = """lead,stage,closed
L1,Won,01-02-2024
L3,Lost,01-03-2024
L8,Won,01-03-2024
L2,Lost,not a date
"""
ACCOUNTS = """account_id,industry,employees,gender
A1,retail,100,x
A2,software,20,y
A3,x,1,z
A3,y,2,z
A4,unused,5,z
"""
ACTIVITIES = """lead_id,activity_type,occurred_at
L1,email_open,2024-01-02
L2,email_open,2024-01-06
L3,email_open,2024-01-11
L7,email_open,2024-02-06
"""


def _export(tmp_path: Path, deals: str = DEALS, **data: object) -> Path:
    (tmp_path / "leads.csv").write_text(LEADS)
    (tmp_path / "deals.csv").write_text(deals)
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    config = {
        "data": {
            "leads": {"path": "leads.csv"},
            "column_mapping": {"id": "lead_id", "created": "created_at"},
            "outcomes": {
                "path": "deals.csv",
                "date_format": "%d-%m-%Y",
                "key": "lead",
                "closed_at": "closed",
                "status": {"column": "stage", "converted": ["won"], "lost": ["lost"]},
            },
            "joins": [{"path": "accounts.csv", "name": "account", "key": "account_id"}],
            "sensitive": ["gender"],
            "validation": {"ranges": {}, "max_bad_row_share": 0.9},
            **data,
        },
        "features": {
            "attributes": {
                "categorical": ["channel", "account_industry"],
                "numeric": ["account_employees"],
            },
            "activity_types": {
                "email_open": {"label": "email open", "family": "email", "points": 1}
            },
        },
        "rules": {"icp": {}, "penalties": []},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_outcomes_and_accounts_join_onto_the_leads(tmp_path: Path):
    crm = load_crm(load_settings(_export(tmp_path)))
    leads = crm.leads.set_index("lead_id")
    assert list(leads.index) == ["L1", "L3", "L4", "L7"]
    assert leads["status"].to_dict() == {
        "L1": "converted",
        "L3": "lost",
        "L4": "open",
        "L7": "open",
    }
    assert leads.loc["L1", "closed_at"] == pd.Timestamp("2024-02-01", tz="UTC")
    assert leads.loc["L3", "closed_at"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert pd.isna(leads.loc["L4", "closed_at"])
    assert leads.loc["L3", "account_industry"] == "software"
    assert leads.loc["L1", "account_employees"] == 100.0
    assert pd.isna(leads.loc["L4", "account_industry"])  # no account: attributes unknown
    assert "account_gender" not in leads.columns  # data.sensitive applies to joined columns
    assert crm.accounts is not None and crm.accounts.names == ("account",)


def test_orphans_and_repeats_are_quarantined_with_their_reason(tmp_path: Path):
    crm = load_crm(load_settings(_export(tmp_path)))
    rows = {(Path(r.source).name, r.row, r.lead_id): r.reason for r in crm.quarantine.itertuples()}
    assert rows == {
        ("leads.csv", 1, "L2"): "its outcome row in "
        f"{tmp_path / 'deals.csv'} (line 5) is quarantined: closed is not a timestamp: "
        "'not a date'",
        ("leads.csv", 4, "L5"): f"account_id 'A9' matches no row of {tmp_path / 'accounts.csv'} "
        "(data.joins account)",
        ("leads.csv", 5, "L6"): f"account_id 'A3' is on several rows of "
        f"{tmp_path / 'accounts.csv'} (lines 4, 5)",
        ("deals.csv", 3, "L2"): "closed is not a timestamp: 'not a date'",
        ("deals.csv", 2, "L8"): f"lead 'L8' matches no lead in {tmp_path / 'leads.csv'}",
        ("accounts.csv", 2, "A3"): "account_id is on several rows (lines 4, 5)",
        ("accounts.csv", 3, "A3"): "account_id is on several rows (lines 4, 5)",
    }
    # conservation: every lead row is clean or quarantined
    assert len(crm.leads) + crm.quarantined(str(tmp_path / "leads.csv")) == crm.n_leads_in == 7


def test_two_outcome_rows_for_one_lead_are_refused_in_one_line(tmp_path: Path):
    deals = DEALS + "L3,Won,05-03-2024\n"
    with pytest.raises(ContractError) as refused:
        load_crm(load_settings(_export(tmp_path, deals)))
    message = str(refused.value)
    assert "\n" not in message
    assert message == (
        f"{tmp_path / 'deals.csv'}: 1 lead(s) have more than one outcome row, e.g. lead 'L3' "
        "on lines 3, 6; keep one row per lead, or set data.outcomes.duplicates: first "
        "(the earliest counts)"
    )


def test_duplicates_first_keeps_the_earliest_outcome_and_counts_the_rest(tmp_path: Path):
    deals = DEALS + "L3,Won,05-03-2024\nL1,Lost,15-01-2024\n"
    config = _export(tmp_path, deals)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["outcomes"]["duplicates"] = "first"
    config.write_text(yaml.safe_dump(raw))
    crm = load_crm(load_settings(config))
    leads = crm.leads.set_index("lead_id")
    assert leads.loc["L1", "status"] == "lost"  # lost on Jan 15th, before the win
    assert leads.loc["L1", "closed_at"] == pd.Timestamp("2024-01-15", tz="UTC")
    assert leads.loc["L3", "status"] == "lost"
    assert crm.notes["duplicate_outcomes_dropped"] == 2


def test_a_won_deals_table_makes_every_row_a_conversion(tmp_path: Path):
    deals = "lead,closed\nL1,01-02-2024\nL4,03-02-2024\n"
    config = _export(tmp_path, deals)
    raw = yaml.safe_load(config.read_text())
    del raw["data"]["outcomes"]["status"]
    config.write_text(yaml.safe_dump(raw))
    leads = load_crm(load_settings(config)).leads.set_index("lead_id")
    assert leads["status"].to_dict() == {
        "L1": "converted",
        "L2": "open",
        "L3": "open",
        "L4": "converted",
        "L7": "open",
    }


def test_outcome_and_outcomes_together_are_a_settings_error(tmp_path: Path):
    outcome = {"column": "stage", "converted": ["won"], "lost": ["lost"]}
    with pytest.raises(SettingsError, match=r"data\.outcome and data\.outcomes both give"):
        load_settings(_export(tmp_path, outcome=outcome))
    config = _export(tmp_path, activities={"path": "activities.csv"})
    raw = yaml.safe_load(config.read_text())
    del raw["data"]["outcomes"]["closed_at"]
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match=r"data\.outcomes needs closed_at with an activity log"):
        load_settings(config)


def test_the_nightly_stream_joins_the_same_way(tmp_path: Path):
    config = _export(tmp_path)
    (tmp_path / "activities.csv").write_text(ACTIVITIES)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["activities"] = {"path": "activities.csv"}
    raw["data"]["chunk_rows"] = 3  # the leads and the log in several chunks
    config.write_text(yaml.safe_dump(raw))
    settings = load_settings(config)
    whole = load_crm(settings)
    streamed = stream_crm(settings, tmp_path)
    columns = ["source", "row", "lead_id", "reason"]
    order = ["source", "row"]
    assert_same = pd.testing.assert_frame_equal
    assert_same(
        streamed.quarantine[columns].sort_values(order).reset_index(drop=True),
        whole.quarantine[columns].sort_values(order).reset_index(drop=True),
    )
    open_leads = pd.concat([p.load().leads for p in streamed.parts])
    assert sorted(open_leads["lead_id"]) == ["L4", "L7"]
    assert open_leads.set_index("lead_id").loc["L7", "account_industry"] == "software"
    entities = pd.DataFrame(
        {"lead_id": ["L7"], "as_of": pd.Series([whole.end], dtype="datetime64[ns, UTC]")}
    )
    for crm in (whole, streamed):
        got = crm.accounts.features(entities, None)
        assert got["account_contacts"].tolist() == [1.0]  # L3 (L5, L6 quarantined)
        assert got["account_engagement"][0] > 0  # L3's email, and L7's own (not left out here)
    assert whole.accounts.features(entities, None)["account_engagement"][0] == pytest.approx(
        streamed.accounts.features(entities, None)["account_engagement"][0]
    )


def test_outcomes_from_a_sql_query_and_accounts_keyed_by_their_own_column(tmp_path: Path):
    import sqlite3

    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE deals (lead TEXT, stage TEXT, closed TEXT)")
        db.executemany(
            "INSERT INTO deals VALUES (?, ?, ?)",
            [("L1", "Won", "01-02-2024"), ("L3", "Lost", "01-03-2024")],
        )
    config = _export(tmp_path)
    raw = yaml.safe_load(config.read_text())
    outcomes = raw["data"]["outcomes"]
    del outcomes["path"]
    outcomes["sql"] = {"url": "sqlite:///crm.db", "query": "SELECT * FROM deals"}
    (tmp_path / "accounts.csv").write_text(ACCOUNTS.replace("account_id,", "id,", 1))
    raw["data"]["joins"][0]["table_key"] = "id"
    config.write_text(yaml.safe_dump(raw))
    crm = load_crm(load_settings(config))
    leads = crm.leads.set_index("lead_id")
    assert leads["status"].to_dict() == {
        "L1": "converted",
        "L2": "open",
        "L3": "lost",
        "L4": "open",
        "L7": "open",
    }
    assert leads.loc["L2", "account_industry"] == "retail"


def test_a_join_key_missing_from_the_leads_stops_the_run_naming_it(tmp_path: Path):
    config = _export(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["joins"][0]["key"] = "company"
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError, match=r"accounts\.csv: required column\(s\) \['company'\]"):
        load_crm(load_settings(config))  # the table's key is the leads' unless table_key says
    raw["data"]["joins"][0]["table_key"] = "account_id"
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError, match=r"data\.joins account: key column 'company' missing"):
        load_crm(load_settings(config))
