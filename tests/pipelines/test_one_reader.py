"""One contract reader: the same bad rows get the same reasons on every way in.

The same leads and activities, each bad row with one fault, go through the whole-file
load (``load_crm``), the nightly load that checks them two rows at a time
(``stream_crm``) and the single-lead path of ``POST /v1/score`` (``ContractReader.posted``,
which the route calls, and the route itself where its JSON schema lets the row through).
Every path must quarantine or refuse each bad row for the same reason, in the same words.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from leadscore.features.reader import ContractReader, RefusedError
from leadscore.pipelines.partitioned import stream_crm
from leadscore.pipelines.settings import Settings
from leadscore.pipelines.sources import load_crm
from leadscore.serving.api import ApiConfig, OnDemandScorer, create_app
from leadscore.serving.store import StoreConfig
from tests.conftest import ROOT

NOW = pd.Timestamp("2026-11-22", tz="UTC")
LEAD_COLUMNS = ["lead_id", "created_at", "status", "closed_at", "owner", "industry", "employees"]
LEADS = [
    ["L1", "2026-01-05T10:00:00Z", "open", "", "ann", "software", "50"],
    ["L2", "not a date", "open", "", "ann", "software", "50"],
    ["L3", "2026-01-05T10:00:00Z", "open", "", "bob", "retail", "-5"],
    ["", "2026-01-05T10:00:00Z", "open", "", "bob", "retail", "20"],
    ["L5", "2026-01-06T10:00:00Z", "open", "", "bob", "retail", "many"],
    ["L6", "2026-01-07T10:00:00Z", "open", "", "ann", "software", "70"],
]
LEAD_REASONS = {
    1: "created_at is not a timestamp: 'not a date'",
    2: "employees is outside [0, 1e+07]",
    3: "lead_id is empty",
    4: "employees is not a number: 'many'",
}
ACTIVITY_COLUMNS = ["lead_id", "activity_type", "occurred_at", "value"]
ACTIVITIES: list[list[str | None]] = [  # a missing value is None, as read_csv gives
    ["L1", "page_view", "2026-02-01T00:00:00Z", None],
    ["L1", "carrier_pigeon", "2026-02-02T00:00:00Z", None],  # undeclared: kept, counted
    ["L1", "email_open", "yesterday-ish", None],
    ["NOPE", "page_view", "2026-02-03T00:00:00Z", None],
    ["L1", "page_view", "2025-12-01T00:00:00Z", None],
    ["L6", "email_click", "2026-02-04T00:00:00Z", "2.5"],
]
ACTIVITY_REASONS = {
    2: "occurred_at is not a timestamp: 'yesterday-ish'",
    3: "activity for an unknown or quarantined lead",
    4: "activity before the lead was created",
}


def _settings(tmp_path: Path) -> Settings:
    """The shipped config over two CSV files holding every bad row above."""
    pd.DataFrame(LEADS, columns=LEAD_COLUMNS).to_csv(tmp_path / "leads.csv", index=False)
    activities = pd.DataFrame(ACTIVITIES, columns=ACTIVITY_COLUMNS)
    activities.to_csv(tmp_path / "activities.csv", index=False)
    raw = yaml.safe_load((ROOT / "leadscore.yaml").read_text())
    raw["data"] = {
        "leads": {"path": str(tmp_path / "leads.csv")},
        "activities": {"path": str(tmp_path / "activities.csv")},
        # a handful of rows, most of them bad on purpose: the share limit would stop it
        "validation": {"ranges": {"employees": [0, 1e7]}, "max_bad_row_share": 0.9},
        "chunk_rows": 2,
    }
    raw["features"]["attributes"] = {"categorical": ["industry"], "numeric": ["employees"]}
    raw.pop("routing")  # the demo team routes by country and segment
    raw["rules"]["icp"] = {"industry": {"weight": 1, "values": {"software": 10}}}
    raw["rules"]["penalties"] = []
    return Settings.model_validate(raw)


def _expected(settings: Settings) -> list[tuple[str, int, str]]:
    leads, acts = settings.data.leads.label, settings.data.activities.label
    return [(leads, r, why) for r, why in LEAD_REASONS.items()] + [
        (acts, r, why) for r, why in ACTIVITY_REASONS.items()
    ]


def _rows(quarantine: pd.DataFrame) -> list[tuple[str, int, str]]:
    return [(s, int(r), why) for s, r, why in quarantine[["source", "row", "reason"]].to_numpy()]


def test_the_whole_file_and_the_chunked_load_quarantine_alike(tmp_path: Path):
    settings = _settings(tmp_path)
    whole = load_crm(settings, now=NOW)
    streamed = stream_crm(settings, tmp_path, now=NOW)
    assert _rows(whole.quarantine) == _rows(streamed.quarantine) == _expected(settings)
    assert whole.unknown_activity_types == streamed.unknown_activity_types == 1
    assert sorted(whole.leads["lead_id"]) == ["L1", "L6"]
    assert streamed.n_clean_leads == 2 and streamed.n_leads_in == whole.n_leads_in == 6
    assert streamed.n_activities_in == whole.n_activities_in == len(ACTIVITIES)
    ids = whole.quarantine["lead_id"].fillna("(none)").tolist()
    assert ids == ["L2", "L3", "(none)", "L5", "L1", "NOPE", "L1"]


def _one(row: list[str], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([row], columns=columns)


def test_a_posted_lead_is_refused_for_the_reason_a_file_row_is_quarantined(tmp_path: Path):
    """``ContractReader.posted``, what ``POST /v1/score`` calls, on the very same rows."""
    settings = _settings(tmp_path)
    reader = ContractReader.of(settings.features, settings.data.validation)
    no_activities = pd.DataFrame(columns=ACTIVITY_COLUMNS)
    for row, reason in LEAD_REASONS.items():
        with pytest.raises(RefusedError) as refused:
            reader.posted(_one(LEADS[row], LEAD_COLUMNS), no_activities, NOW)
        assert str(refused.value) == f"lead refused: {reason}"
    good = _one(LEADS[0], LEAD_COLUMNS)
    for row, reason in ACTIVITY_REASONS.items():
        with pytest.raises(RefusedError) as refused:
            reader.posted(good, _one(ACTIVITIES[row], ACTIVITY_COLUMNS), NOW)
        assert str(refused.value) == f"activity 0 refused: {reason}"
    leads, acts = reader.posted(good, pd.DataFrame(ACTIVITIES[:2], columns=ACTIVITY_COLUMNS), NOW)
    assert leads.rows["employees"].tolist() == [50.0]
    assert acts.rows["activity_type"].tolist() == ["page_view", "carrier_pigeon"]
    assert acts.unknown_types == 1  # kept and counted, as in the files
    with pytest.raises(RefusedError, match=r"^lead refused: request.lead: required column"):
        reader.posted(good.drop(columns="status"), no_activities, NOW)


def test_the_score_route_refuses_the_same_rows_with_the_same_words(tmp_path: Path):
    """Through HTTP, every bad row the request schema lets through meets the reader;
    the others (a timestamp that is no timestamp) are refused by the schema itself, and an
    activity cannot name another lead there (it belongs to the posted lead)."""
    settings = _settings(tmp_path)

    def unused_model() -> tuple[None, str]:
        return None, "0"  # every request below is refused before the model is asked

    scorer = OnDemandScorer(
        settings.features, settings.rules, settings.scoring, unused_model, settings.data.validation
    )
    store = StoreConfig(url=f"sqlite:///{tmp_path / 's.db'}")
    client = TestClient(create_app(store, ApiConfig(tokens=["t"]), scorer))

    def post(lead: list[str], activities: list[list[str]]) -> tuple[int, object]:
        row = dict(zip(LEAD_COLUMNS, lead, strict=True))
        text = row["employees"]  # "many" is posted as text, as a CRM would send it
        employees = float(text) if text.lstrip("-").isdigit() else text
        body = {
            "lead": {
                "lead_id": row["lead_id"] or "  ",  # blank after trimming: empty
                "created_at": row["created_at"],
                "owner": row["owner"],
                "attributes": {"industry": row["industry"], "employees": employees},
            },
            "activities": [
                {"activity_type": a[1], "occurred_at": a[2], "value": float(a[3]) if a[3] else None}
                for a in activities
            ],
            "as_of": "2026-11-21T00:00:00Z",
        }
        response = client.post("/v1/score", headers={"Authorization": "Bearer t"}, json=body)
        return response.status_code, response.json()["detail"]

    for row in (2, 3, 4):
        assert post(LEADS[row], []) == (422, f"lead refused: {LEAD_REASONS[row]}")
    assert post(LEADS[0], [ACTIVITIES[4]]) == (
        422,
        f"activity 0 refused: {ACTIVITY_REASONS[4]}",
    )
    status, detail = post(LEADS[1], [])
    assert status == 422 and detail[0]["loc"] == ["body", "lead", "created_at"]
    status, detail = post(LEADS[0], [ACTIVITIES[2]])
    assert status == 422 and detail[0]["loc"][:2] == ["body", "activities"]


def test_every_rule_quarantines_alike_in_the_chunked_vectorised_pass(tmp_path: Path):
    """A dirtier pair of files, with a fault for every rule of both suites (the nightly
    pass evaluates them as column masks, ``features.expectations``), cell faults, ids
    duplicated and activities repeated across chunks: the chunked pass quarantines the same
    rows, for the same reasons, keeps the same activities and counts the same notes."""
    leads = [
        ["L1", "2026-01-05T10:00:00Z", "open", "", "ann", "software", "50"],
        ["L2", "2026-01-05T10:00:00Z", "lost", "", "ann", "software", "50"],  # no closed_at
        ["L3", "2026-01-05T10:00:00Z", "open", "2026-02-01T00:00:00Z", "bob", "retail", "5"],
        ["L4", "2027-01-05T10:00:00Z", "open", "", "bob", "retail", "20"],  # future
        ["L5", "2026-01-06T10:00:00Z", "maybe", "", "bob", "retail", "7"],
        ["L6", "2026-01-07T10:00:00Z", "converted", "2026-01-01T00:00:00Z", "ann", "x", "70"],
        ["L7", "2026-01-07T10:00:00Z", "", "", "ann", "software", "70"],  # status empty
        ["0042", "2026-01-07T10:00:00Z", "open", "", "ann", "soft\x00ware", "70"],
        ["L9", "2026-01-08T10:00:00Z", "open", "", "ann", "software", "70"],
        ["42", "2026-01-08T10:00:00Z", "open", "", "ann", "software", "70"],  # '0042' again
        ["L1", "2026-01-09T10:00:00Z", "open", "", "ann", "software", "70"],  # L1 again
        ["L12", "2026-01-09T10:00:00Z", "converted", "2026-03-01T00:00:00Z", "ann", "x", "1"],
    ]
    acts = [
        ["L9", "page_view", "2026-02-01T00:00:00Z", None],
        ["L9", "page_view", "2026-02-01T00:00:00Z", None],  # a repeat in its chunk
        ["", "page_view", "2026-02-01T00:00:00Z", None],
        ["L9", "", "2026-02-01T00:00:00Z", None],
        ["L9", "page_view", "2027-02-01T00:00:00Z", None],
        ["L9", "page_view", "2025-02-01T00:00:00Z", None],
        ["L12", "email_open", "2026-02-02T00:00:00Z", "1.5"],
        ["L9", "page_view", "2026-02-01T00:00:00Z", None],  # a repeat chunks apart
        ["L2", "page_view", "2026-02-01T00:00:00Z", None],  # a quarantined lead
        ["L12", "email_open", "2026-02-03T00:00:00Z", "inf"],
    ]
    settings = _settings(tmp_path)
    pd.DataFrame(leads, columns=LEAD_COLUMNS).to_csv(tmp_path / "leads.csv", index=False)
    pd.DataFrame(acts, columns=ACTIVITY_COLUMNS).to_csv(tmp_path / "activities.csv", index=False)
    whole = load_crm(settings, now=NOW)
    streamed = stream_crm(settings, tmp_path, now=NOW)
    columns = ["source", "row", "lead_id", "reason"]
    expected = whole.quarantine[columns].astype(str).to_numpy().tolist()
    assert streamed.quarantine[columns].astype(str).to_numpy().tolist() == expected
    reasons = set(whole.quarantine["reason"])
    assert len(reasons) >= 14 and "lead_id is duplicated" in reasons
    assert streamed.notes == whole.notes and whole.notes["duplicate_activities_dropped"] == 2
    assert streamed.n_clean_leads == len(whole.leads)
    spilled = pd.concat([p.load().activities for p in streamed.parts]).astype({"lead_id": str})
    open_ids = whole.leads.loc[whole.leads["status"] == "open", "lead_id"]
    kept = whole.activities[whole.activities["lead_id"].isin(open_ids)]
    assert (
        spilled.reset_index(drop=True).astype(str).equals(kept.reset_index(drop=True).astype(str))
    )
